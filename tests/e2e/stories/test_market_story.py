"""The market story on anvil with a real oracle: two grid operators post overlapping
requests in one zone, three nodes (NodeRunner, in-process, mixed simulated devices) bid
automatically, both requests clear, the nodes dispatch and attest interval by interval as
chain time moves through the window, the oracle measures against MBMA baselines and posts,
and after the dispute window settlement pays the nodes. No device is ever committed beyond
its capacity."""

from __future__ import annotations

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
from gridflex.rules.types import DeviceKind, RequestSpec, RequestStatus, zone_id
from node.devices.simulated import simulated_device
from node.dispatch import CommandedDevice
from node.runner import NodeDevice, NodeRunner
from node.strategy import peak_committed_w

pytestmark = pytest.mark.integration

FLEX = 10**18
EUR = 10**18
ZONE = zone_id("NL-STORY-01")
INTERVAL = 900
STORY_TIME_OF_DAY = 12 * 3600
NODE_DEVICES = (  # (kind, capacity W) per node: mixed
    ((DeviceKind.BATTERY, 5_000), (DeviceKind.INDUSTRIAL_LOAD, 8_000)),
    ((DeviceKind.INDUSTRIAL_LOAD, 10_000), (DeviceKind.BATTERY, 4_000)),
    ((DeviceKind.BATTERY, 6_000), (DeviceKind.INDUSTRIAL_LOAD, 6_000)),
)


def _node(
    w3: Web3, protocol: Protocol, index: int, tmp_path: Path, rpc_url: str, oracle_url: str
) -> tuple[Protocol, list[NodeDevice], NodeRunner]:
    owner, devices = staked_owner(w3, protocol, ZONE, NODE_DEVICES[index], seed=100 * index)
    runner = NodeRunner(
        owner, devices, ZONE, tmp_path / f"node-{index}", rpc_url, [oracle_url],
        price_fraction_bps=6_000 + 1_000 * index,  # node 0 is the cheapest, node 2 the dearest
    )  # fmt: skip
    return owner, devices, runner


def _assert_never_overcommitted(runners: list[NodeRunner]) -> None:
    for runner in runners:
        devices = runner.devices
        commitments = runner.commitments()
        orders = runner.db.execute(
            "SELECT device_id, power_w, window_start, window_end FROM dispatch_orders"
        ).fetchall()
        for device in devices:
            cap = device.commanded.capacity_w
            assert peak_committed_w(commitments, device.device_id, 0, 2**62) <= cap
            ordered = [(s, p) for d, p, s, e in orders if int(d) == device.device_id] + [
                (e, -p) for d, p, s, e in orders if int(d) == device.device_id
            ]
            level = 0
            for _, delta in sorted(ordered, key=lambda change: (change[0], change[1])):
                level += delta
                assert level <= cap


def _node_state(runner: NodeRunner) -> tuple[object, ...]:
    orders = runner.db.execute(
        "SELECT request_id, device_id, power_w, window_start, window_end FROM dispatch_orders "
        "ORDER BY request_id, device_id"
    ).fetchall()
    return runner.commitments(), runner.bidder.own_bids(), orders


def _recreate(
    runner: NodeRunner, devices: list[NodeDevice], rpc_url: str, oracle_url: str
) -> NodeRunner:
    fresh = [
        NodeDevice(
            d.device_id,
            CommandedDevice(
                simulated_device(d.commanded.kind, d.commanded.capacity_w, d.commanded.device.seed)
            ),
            d.signing_key,
        )
        for d in devices
    ]
    return NodeRunner(runner.protocol, fresh, ZONE, runner.data_dir, rpc_url, [oracle_url])


def _tick_all(runners: list[NodeRunner]) -> None:
    for runner in runners:
        runner.tick()


def test_market_story(
    w3: Web3, anvil: AnvilProcess, protocol: Protocol, oracle: OracleServer, tmp_path: Path
) -> None:
    # The simulated devices follow the time of day (an industrial shift, a heat pump's
    # cycle): the story starts at 12:00 UTC chain time so its outcome does not depend on
    # when the suite runs.
    advance_to_time_of_day(w3, STORY_TIME_OF_DAY)
    artifacts = load_artifacts()
    operators, tokens = [], []
    for _ in range(2):
        operator = protocol.as_account(funded_account(w3))
        protocol.grant_grid_operator(operator.address)
        token = operator.client.deploy(artifacts["FlexToken"], operator.address, 10**6 * EUR)
        operators.append(operator)
        tokens.append(token.address)

    built = [_node(w3, protocol, i, tmp_path, anvil.url, oracle.url) for i in range(3)]
    owners = [owner for owner, _, _ in built]
    nodes = [devices for _, devices, _ in built]
    runners = [runner for _, _, runner in built]
    _tick_all(runners)  # catch up with the chain

    # Two overlapping requests, two hours ahead.
    now = int(w3.eth.get_block("latest")["timestamp"])
    start = now - now % INTERVAL + 2 * 3600
    specs = [
        RequestSpec(
            zone=ZONE, power_w=16_000, window_start=start, window_end=start + 3600,
            price_cap_per_kwh=EUR // 4, availability_price_per_kwh=EUR // 100,
            gate_closure=start - 1800, settlement_token=tokens[0],
        ),
        RequestSpec(
            zone=ZONE, power_w=5_000, window_start=start + 1800, window_end=start + 5400,
            price_cap_per_kwh=EUR, gate_closure=start - 1800,
            settlement_token=tokens[1],
        ),
    ]  # fmt: skip
    created = [op.create_request(spec) for op, spec in zip(operators, specs, strict=True)]
    request_ids = [rid for rid, _ in created]
    escrows = [escrow for _, escrow in created]

    _tick_all(runners)
    for owner, runner in zip(owners, runners, strict=True):
        assert runner.bidder.own_bids(), f"node {owner.address} placed no bid"
    for rid in request_ids:
        assert len(protocol.bids(rid)) >= 2
    _assert_never_overcommitted(runners)

    increase_time(w3, specs[0].gate_closure - int(w3.eth.get_block("latest")["timestamp"]))
    for operator, rid in zip(operators, request_ids, strict=True):
        operator.clear(rid)
    _tick_all(runners)
    awards = [{b.request_id: b.awarded_w for b in r.bidder.own_bids()} for r in runners]
    assert all(w is not None for award in awards for w in award.values())
    assert sum(w or 0 for award in awards for w in award.values()) > 0
    _assert_never_overcommitted(runners)
    passed_over = 0
    for rid in request_ids:  # merit order: no bid left out is cheaper than an awarded one
        offers, awarded_w = protocol.bids(rid), protocol.awarded_w(rid)
        awarded_prices = [o.price_per_kwh for o, w in zip(offers, awarded_w, strict=True) if w]
        passed_prices = [o.price_per_kwh for o, w in zip(offers, awarded_w, strict=True) if not w]
        assert awarded_prices and all(p >= max(awarded_prices) for p in passed_prices)
        passed_over += len(passed_prices)
    assert passed_over > 0, "every bid won: the merit-order check above proved nothing"

    # Chain time moves interval by interval through both windows; the nodes dispatch,
    # attest and send at each step.
    # Node 0 (awarded on both) is dropped after the first event interval, stays down for
    # one interval, and is recreated on the same directory with fresh device objects.
    end = specs[1].window_end
    boundary = specs[0].gate_closure
    restarted = False
    while boundary < end + INTERVAL:
        boundary += INTERVAL
        increase_time(w3, boundary + 1 - int(w3.eth.get_block("latest")["timestamp"]))
        if boundary == start + INTERVAL:
            before = _node_state(runners[0])
            runners[0].close()
            down = runners.pop(0)
        _tick_all(runners)
        if boundary == start + 2 * INTERVAL and not restarted:
            runners.insert(0, _recreate(down, nodes[0], anvil.url, oracle.url))
            assert _node_state(runners[0]) == before  # commitments, bids, orders resumed
            runners[0].tick()
            restarted = True
        _assert_never_overcommitted(runners)
    assert restarted
    for runner in runners:
        runner.drain(timeout_s=60)
    commanded = [e for r in runners for e in r.dispatch.log() if e.action == "commanded"]
    assert commanded

    increase_time(w3, REPORT_DELAY_S + 1)
    for rid in request_ids:
        wait_for(
            lambda rid=rid: protocol.request(rid).status == RequestStatus.REPORTED,
            f"the report of {rid}", timeout=60,
        )  # fmt: skip
    dispute_window = int(protocol.market.functions.disputeWindow().call())
    increase_time(w3, dispute_window + 1)
    for rid in request_ids:
        wait_for(
            lambda rid=rid: protocol.request(rid).status == RequestStatus.SETTLED,
            f"settlement of {rid}", timeout=60,
        )  # fmt: skip

    treasury = protocol.market.functions.treasury().call()
    for index, (operator, token, escrow) in enumerate(zip(operators, tokens, escrows, strict=True)):
        payouts = sum(protocol.claimable(token, owner.address) for owner in owners)
        refund = protocol.claimable(token, operator.address)
        fees = protocol.claimable(token, treasury)
        assert payouts > 0, f"request {index} paid no node"
        assert payouts + fees + refund == escrow  # conservation to the base unit
        assert protocol.erc20(token).functions.balanceOf(protocol.market.address).call() == escrow
    for owner, award in zip(owners, awards, strict=True):
        delivered = any(w for w in award.values())
        paid = sum(protocol.claimable(token, owner.address) for token in tokens)
        if delivered:
            assert paid > 0, f"node {owner.address} delivered but was not paid"
    # Node 0 was restarted mid-window and still delivered both of its awards.
    assert all(awards[0].values())
    assert all(protocol.claimable(token, owners[0].address) > 0 for token in tokens)
    # The restarted node missed no chain event: it saw both settlements (its commitments
    # were released) and its watcher is at the chain head.
    _tick_all(runners)
    for runner in runners:
        assert runner.commitments() == []
        assert runner.watcher.next_block == w3.eth.block_number + 1
        runner.close()
