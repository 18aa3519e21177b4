"""Three real oracle processes (k = 2 of 3), each with its own SQLite store and committee
key, measure one event of 20 devices from signed readings, agree on one report over HTTP,
post it exactly once, and finalize it after the dispute window; the payouts are what the
per-bid totals imply, to the base unit.

One device under-delivers, one sends no event readings (INSUFFICIENT_DATA, zero
delivery), and the last bid's devices are capped at their share of a partial award.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from support.chain import fresh_protocol, funded_account, wait_for
from support.committee import committee_urls, seat_committee, start_committee
from support.oracle_process import OracleServer
from web3 import Web3

from gridflex.chain.anvil import AnvilProcess, increase_time
from gridflex.chain.compiler import load_artifacts
from gridflex.chain.protocol import Protocol
from gridflex.rules.attestation import MeterUnit, meter_domain_separator, sign_unit
from gridflex.rules.baselines import device_cap_wh
from gridflex.rules.eip712 import ReportPayload, secp256k1_device_key
from gridflex.rules.merkle import verify_proof
from gridflex.rules.reports import (
    DeviceRecord,
    Quality,
    build_report_trees,
    pack_used_readings,
    used_readings_leaf,
)
from gridflex.rules.settlement import BidAward, PricingRule, bond_for, settle_request
from gridflex.rules.types import DeviceKind, RequestSpec, RequestStatus, zone_id

pytestmark = pytest.mark.integration

FLEX = 10**18
EUR = 10**18
ZONE = zone_id("NL-RTM-07")
INTERVAL = 900
EVENT_INTERVALS = 4
CAPACITIES_W = (4_000, 5_000, 6_000, 7_000, 8_000)  # per owner: 30 kW over 5 devices
PRICES = (EUR // 10, 3 * EUR // 25, 3 * EUR // 20, EUR // 5)  # one bid per owner
REQUEST_W = 100_000  # three bids in full, the dearest gets 10 of its 30 kW
REPORT_DELAY_S = 60


@dataclass
class Device:
    device_id: int
    key: bytes
    capacity_w: int
    owner: int

    @property
    def baseline_wh(self) -> int:
        """Steady consumption at 80% of capacity."""
        return self.capacity_w * 8 // 10 * INTERVAL // 3600


@pytest.fixture
def oracle_keys() -> list[LocalAccount]:
    return [Account.create() for _ in range(3)]


@pytest.fixture
def protocol(w3: Web3, tmp_path: Path) -> Protocol:
    """A deployment of this test's own, recorded for the oracle processes."""
    return fresh_protocol(w3, tmp_path / "deployments")


@pytest.fixture
def oracles(
    anvil: AnvilProcess, tmp_path: Path, protocol: Protocol, oracle_keys: list[LocalAccount]
) -> Iterator[list[OracleServer]]:
    """Three committee oracles on chain time, seated with k = 1, 2, 2, peers of each other."""
    seat_committee(protocol, oracle_keys)
    servers = start_committee(
        oracle_keys,
        committee_urls(len(oracle_keys)),
        tmp_path,
        tmp_path / "deployments",
        anvil.url,
        REPORT_DELAY_S,
    )
    yield servers
    for server in servers:
        server.stop()


def test_three_oracles_post_one_report_and_finalize_pays_the_bid_totals(
    w3: Web3, protocol: Protocol, oracles: list[OracleServer], oracle_keys: list[LocalAccount]
) -> None:
    artifacts = load_artifacts()
    chain_id, registry = w3.eth.chain_id, protocol.registry.address
    domain = meter_domain_separator(chain_id, registry)
    token = protocol.client.deploy(artifacts["FlexToken"], protocol.address, 10**9 * EUR).address
    operator = protocol.as_account(funded_account(w3))
    protocol.grant_grid_operator(operator.address)
    protocol.send(protocol.erc20(token).functions.transfer(operator.address, 10_000 * EUR))

    # Four owners register five batteries each (20 devices) and stake.
    owners = [protocol.as_account(funded_account(w3)) for _ in PRICES]
    devices: list[Device] = []
    for index, owner in enumerate(owners):
        protocol.send(protocol.token.functions.transfer(owner.address, 1_000 * FLEX))
        owner.stake(1_000 * FLEX)
        for capacity in CAPACITIES_W:
            key = bytes(Account.create().key)
            device_key = secp256k1_device_key(key, owner.address, chain_id, registry)
            device_id = owner.register_device(DeviceKind.BATTERY, capacity, ZONE, device_key)
            devices.append(Device(device_id, key, capacity, index))

    # One hour event (MBMA) two hours ahead; every owner bids all its devices.
    now = int(w3.eth.get_block("latest")["timestamp"])
    start = now - now % INTERVAL + 2 * 3600
    end = start + EVENT_INTERVALS * INTERVAL
    spec = RequestSpec(
        zone=ZONE, power_w=REQUEST_W, window_start=start, window_end=end,
        price_cap_per_kwh=EUR // 4, availability_price_per_kwh=EUR // 100,
        gate_closure=start - 3600, settlement_token=token,
    )  # fmt: skip
    request_id, escrow = operator.create_request(spec)
    for index, owner in enumerate(owners):
        owned = [d.device_id for d in devices if d.owner == index]
        assert owner.bid(request_id, sum(CAPACITIES_W), PRICES[index], owned) == index
    increase_time(w3, spec.gate_closure - int(w3.eth.get_block("latest")["timestamp"]))
    protocol.clear(request_id)
    awarded = protocol.awarded_w(request_id)
    assert awarded == [30_000, 30_000, 30_000, 10_000]

    # The window passes. Devices reduce to 20% below zero (they export); device 0
    # delivers only 30% of its capacity; device 6 never sends its event readings.
    increase_time(w3, end + 1 - int(w3.eth.get_block("latest")["timestamp"]))
    under, silent = devices[0], devices[6]
    readings: dict[int, dict[int, int]] = {}
    units: list[MeterUnit] = []
    for device in devices:
        full = device.capacity_w * INTERVAL // 3600
        delivered = full * 3 // 10 if device is under else full
        values = [device.baseline_wh] + [device.baseline_wh - delivered] * EVENT_INTERVALS
        if device is silent:
            values = values[:1]
        unit = MeterUnit(device.device_id, start - INTERVAL, INTERVAL, 0, tuple(values))
        units.append(sign_unit(unit, domain, device.key))
        readings[device.device_id] = dict(zip(unit.interval_starts, values, strict=True))
    for server in oracles:
        answer = httpx.post(
            f"{server.url}/v1/readings", json={"units": [u.to_json() for u in units]}, timeout=30
        )
        assert answer.status_code == 200, answer.text
        assert httpx.get(f"{server.url}/v1/reports/{request_id}").status_code == 425

    # What the report must be, computed here from the same readings.
    expected_records = []
    for device in devices:
        bid_index = device.owner
        cap = device_cap_wh(awarded[bid_index], device.capacity_w, 30_000, INTERVAL)
        series = readings[device.device_id]
        event = [series.get(start + i * INTERVAL) for i in range(EVENT_INTERVALS)]
        baseline = series[start - INTERVAL]
        metered = sum(v for v in event if v is not None)
        if None in event:
            record = DeviceRecord(
                device.device_id, bid_index, baseline * EVENT_INTERVALS, metered, 0,
                Quality.INSUFFICIENT_DATA,
            )  # fmt: skip
        else:
            delivered = sum(min(cap, max(0, baseline - v)) for v in event if v is not None)
            record = DeviceRecord(
                device.device_id, bid_index, baseline * EVENT_INTERVALS, metered, delivered,
                Quality.OK,
            )  # fmt: skip
        expected_records.append(record)
    expected = build_report_trees(
        expected_records,
        {d: pack_used_readings(series.items()) for d, series in sorted(readings.items())},
        len(PRICES),
    )
    payload = ReportPayload(
        protocol.market.address, request_id, 0, expected.delivered_wh,
        expected.devices_root, expected.readings_root,
    )  # fmt: skip
    digest = "0x" + payload.digest(chain_id, protocol.committee.address).hex()

    # After the report delay the committee measures, agrees and posts, exactly once.
    increase_time(w3, REPORT_DELAY_S)
    wait_for(lambda: protocol.request(request_id).status == RequestStatus.REPORTED, "the report")
    time.sleep(1.5)  # time for any late duplicate posts by the other oracles
    submitted = protocol.market.events.ReportSubmitted().get_logs(
        from_block=protocol.deployment.deployed_at_block,
        argument_filters={"requestId": request_id},
    )
    assert len(submitted) == 1
    assert list(submitted[0]["args"]["deliveredWh"]) == expected.delivered_wh
    assert tuple(protocol.market.functions.reportOf(request_id).call())[1:] == (
        expected.devices_root,
        expected.readings_root,
    )
    held_signers = []
    for server, account in zip(oracles, oracle_keys, strict=True):
        body = httpx.get(f"{server.url}/v1/reports/{request_id}").json()
        assert body["digest"] == digest
        assert body["signer"] == account.address
        assert body["records"] == [r.to_json() for r in expected_records]
        held = httpx.get(f"{server.url}/v1/reports/{request_id}/signatures").json()
        held_by = [s["signer"] for s in held["signatures"]]
        assert account.address in held_by
        assert held_by == sorted(held_by, key=lambda address: int(address, 16))
        held_signers.append(held_by)
    assert max(len(held_by) for held_by in held_signers) >= 2  # whoever posted had k
    # Under-delivery (device 0: 30%, bid 0), missing data (device 6, bid 1) and the caps of
    # the partially awarded bid 3 show in the per-bid totals.
    capped = sum(device_cap_wh(10_000, c, 30_000, INTERVAL) for c in CAPACITIES_W)
    assert expected.delivered_wh == [30_000 - 4 * 700, 30_000 - 4 * 1_250, 30_000, 4 * capped]
    proof = httpx.get(f"{oracles[1].url}/v1/reports/{request_id}/devices/{silent.device_id}")
    body = proof.json()
    assert body["record"]["quality"] == Quality.INSUFFICIENT_DATA
    assert body["record"]["deliveredWh"] == 0
    record = DeviceRecord.from_json(body["record"])
    nodes = [bytes.fromhex(n[2:]) for n in body["recordProof"]]
    assert verify_proof(expected.devices_root, record.leaf(), nodes)
    packed = bytes.fromhex(body["usedReadings"][2:])
    leaf = used_readings_leaf(silent.device_id, packed)
    nodes = [bytes.fromhex(n[2:]) for n in body["readingsProof"]]
    assert verify_proof(expected.readings_root, leaf, nodes)
    (unit_json,) = body["units"]
    assert MeterUnit.from_json(unit_json) == units[6]  # the device's own signed unit

    # After the dispute window an oracle finalizes; payouts follow the per-bid totals.
    dispute_window = int(protocol.market.functions.disputeWindow().call())
    increase_time(w3, dispute_window + 1)
    wait_for(lambda: protocol.request(request_id).status == RequestStatus.SETTLED, "finalize")
    state = protocol.request(request_id)
    bond_per_kw = int(protocol.market.functions.bondPerKW().call())
    settlement = settle_request(
        escrow=escrow, duration_seconds=3600, pricing_rule=PricingRule.PAY_AS_BID,
        clearing_price=state.clearing_price, availability_price_per_kwh=EUR // 100,
        threshold_bps=5_000, fee_bps=int(protocol.market.functions.protocolFeeBps().call()),
        awards=[BidAward(owner.address, awarded[i], PRICES[i], bond_for(awarded[i], bond_per_kw))
                for i, owner in enumerate(owners)],
        delivered_wh=expected.delivered_wh,
    )  # fmt: skip
    for owner, outcome in zip(owners, settlement.bids, strict=True):
        assert protocol.claimable(token, owner.address) == outcome.payout
    assert protocol.claimable(token, operator.address) == settlement.refund
    assert settlement.payouts + settlement.fees + settlement.refund == escrow
