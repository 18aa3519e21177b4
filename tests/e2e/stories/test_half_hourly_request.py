"""An 1,800 s request end to end on anvil with a real oracle process: a grid operator
posts a half-hourly MBMA request, a node metering at 1,800 s (NodeRunner, in-process, one
simulated home battery) bids, the request clears, the node dispatches and signs 1,800 s
readings as chain time moves through the window, the oracle measures them and posts the
report, and settlement pays the device owner what the rules core says the readings earn.

Fails if the node signs readings of another length: the oracle measures a request only
from readings of its own length, so the device would be missing data and paid nothing."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from e2e_support import REPORT_DELAY_S
from support.chain import advance_to_time_of_day, funded_account, wait_for
from support.nodes import staked_owner
from support.oracle_process import OracleServer
from web3 import Web3

from gridflex.chain.anvil import AnvilProcess, increase_time
from gridflex.chain.compiler import load_artifacts
from gridflex.chain.protocol import Protocol
from gridflex.rules.baselines import delivered_wh, device_cap_wh
from gridflex.rules.settlement import BidAward, PricingRule, settle_request
from gridflex.rules.types import (
    BaselineMethod,
    DeviceKind,
    Direction,
    RequestSpec,
    RequestStatus,
    zone_id,
)
from node.runner import NodeRunner

pytestmark = pytest.mark.integration

EUR = 10**18
ZONE = zone_id("GB-HALF-HOURLY-01")
INTERVAL = 1_800
STORY_TIME_OF_DAY = 12 * 3600
BATTERY_W = 5_000
"""A home battery is idle and full at 14:00 (charged at night, discharges in the evening):
asked to reduce consumption, it discharges whatever the day of the week."""


def oracle_readings(tmp_path: Path, device_id: int) -> dict[int, tuple[int, int]]:
    """{interval start: (interval seconds, Wh)} of `device_id` in the oracle's database."""
    with closing(sqlite3.connect(tmp_path / "oracle" / "oracle.db")) as db:
        rows = db.execute(
            "SELECT interval_start, interval_seconds, energy_wh FROM readings "
            "WHERE device_id = ? ORDER BY interval_start",
            (device_id,),
        ).fetchall()
    return {start: (seconds, energy) for start, seconds, energy in rows}


def test_a_half_hourly_request_is_metered_measured_and_settled_at_1800_s(
    w3: Web3, anvil: AnvilProcess, protocol: Protocol, oracle: OracleServer, tmp_path: Path
) -> None:
    advance_to_time_of_day(w3, STORY_TIME_OF_DAY)
    operator = protocol.as_account(funded_account(w3))
    protocol.grant_grid_operator(operator.address)
    token = operator.client.deploy(load_artifacts()["FlexToken"], operator.address, 10**6 * EUR)
    owner, devices = staked_owner(w3, protocol, ZONE, [(DeviceKind.BATTERY, BATTERY_W)], seed=7)
    (battery,) = devices
    runner = NodeRunner(
        owner, devices, ZONE, tmp_path / "node", anvil.url, [oracle.url],
        interval_seconds=INTERVAL,
    )  # fmt: skip
    runner.tick()

    now = int(w3.eth.get_block("latest")["timestamp"])
    start = now - now % INTERVAL + 2 * 3600
    spec = RequestSpec(
        zone=ZONE, power_w=3_000, window_start=start, window_end=start + 2 * INTERVAL,
        price_cap_per_kwh=EUR // 4, availability_price_per_kwh=EUR // 100,
        gate_closure=start - INTERVAL, settlement_token=token.address,
        interval_seconds=INTERVAL, baseline_method=BaselineMethod.MBMA,
    )  # fmt: skip
    request_id, escrow = operator.create_request(spec)
    runner.tick()
    (bid,) = runner.bidder.own_bids()
    assert bid.device_ids == (battery.device_id,)

    increase_time(w3, spec.gate_closure - int(w3.eth.get_block("latest")["timestamp"]))
    operator.clear(request_id)
    runner.tick()
    (bid,) = runner.bidder.own_bids()
    assert bid.awarded_w == spec.power_w

    boundary = spec.gate_closure
    while boundary < spec.window_end:
        boundary += INTERVAL
        increase_time(w3, boundary + 1 - int(w3.eth.get_block("latest")["timestamp"]))
        runner.tick()
    runner.drain(timeout_s=60)
    (commanded,) = [e for e in runner.dispatch.log() if e.action == "commanded"]
    assert commanded.window_start == start

    readings = oracle_readings(tmp_path, battery.device_id)
    before = start - INTERVAL
    event = [start + i * INTERVAL for i in range(2)]
    assert all(readings[t][0] == INTERVAL for t in (before, *event)), readings
    assert {seconds for seconds, _ in readings.values()} == {INTERVAL}

    increase_time(w3, REPORT_DELAY_S + 1)
    wait_for(
        lambda: protocol.request(request_id).status == RequestStatus.REPORTED,
        "the report", timeout=60,
    )  # fmt: skip
    # MBMA on the node's 1,800 s readings: the interval before the window is the baseline.
    cap = device_cap_wh(bid.awarded_w, BATTERY_W, BATTERY_W, INTERVAL)
    expected_wh = sum(
        delivered_wh(
            Direction.REDUCE_CONSUMPTION,
            [readings[before][1]] * len(event),
            [readings[t][1] for t in event],
            cap,
        )
    )
    assert expected_wh > 0
    assert protocol.reported_delivery(request_id) == [expected_wh]

    increase_time(w3, int(protocol.market.functions.disputeWindow().call()) + 1)
    wait_for(
        lambda: protocol.request(request_id).status == RequestStatus.SETTLED,
        "settlement", timeout=60,
    )  # fmt: skip
    market = protocol.market.functions
    state = protocol.request(request_id)
    (offer,) = protocol.bids(request_id)
    settlement = settle_request(
        escrow=escrow,
        duration_seconds=state.duration_seconds,
        pricing_rule=PricingRule(state.pricing_rule),
        clearing_price=state.clearing_price,
        availability_price_per_kwh=spec.availability_price_per_kwh,
        threshold_bps=int(market.deliveryThresholdBps().call()),
        fee_bps=int(market.protocolFeeBps().call()),
        awards=[BidAward(owner.address, bid.awarded_w, offer.price_per_kwh, offer.bond)],
        delivered_wh=[expected_wh],
    )
    assert settlement.payouts > 0
    assert protocol.claimable(token.address, owner.address) == settlement.payouts
    runner.close()
