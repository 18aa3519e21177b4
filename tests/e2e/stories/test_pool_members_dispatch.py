"""Members' nodes when their pool is awarded: two households' nodes (NodeRunner, one home
battery each) whose batteries are enrolled in a pool do not bid alone on a request in their
zone; the pool's operator bids for them; after clearing, each node dispatches its battery's
share of the pool's award (pro rata to capacity over all the pool's backing devices, never
more than the battery can deliver) in the window, and a third pooled battery that asked to
leave before the bid is not dispatched."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.chain import advance_to_time_of_day, funded_account
from support.nodes import staked_owner
from web3 import Web3

from gridflex.chain.anvil import AnvilProcess, increase_time
from gridflex.chain.compiler import load_artifacts
from gridflex.chain.protocol import Protocol
from gridflex.rules.eip712 import sign_digest_secp256k1
from gridflex.rules.pools import consent_digest
from gridflex.rules.types import BaselineMethod, DeviceKind, RequestSpec, zone_id
from node.runner import NodeRunner

pytestmark = pytest.mark.integration

EUR = 10**18
FLEX = 10**18
ZONE = zone_id("NL-POOL-DISPATCH-01")
INTERVAL = 900
BATTERY_W = (5_000, 3_000, 4_000)
POOL_BID_W = 4_000
UNUSED_ORACLE = "http://127.0.0.1:9"
"""The nodes never send here (`tick(send=False)`): this story is about dispatch."""


def enroll(operator: Protocol, pool_id: int, owner: Protocol, device_ids: list[int]) -> None:
    nonce = owner.consent_nonce(owner.address)
    deadline = owner.latest_block_timestamp() + 86_400
    digest = consent_digest(
        owner.client.chain_id,
        owner.pools.address,
        pool_id,
        owner.address,
        device_ids,
        nonce,
        deadline,
    )
    signature = sign_digest_secp256k1(owner.client.account.key, digest)
    operator.enroll(pool_id, owner.address, device_ids, nonce, deadline, signature)


def test_member_nodes_dispatch_their_share_of_the_pool_award_and_never_bid_alone(
    w3: Web3, anvil: AnvilProcess, protocol: Protocol, tmp_path: Path
) -> None:
    advance_to_time_of_day(w3, 12 * 3600)
    dso = protocol.as_account(funded_account(w3))
    protocol.grant_grid_operator(dso.address)
    token = dso.client.deploy(load_artifacts()["FlexToken"], dso.address, 10**6 * EUR)
    operator, _ = staked_owner(w3, protocol, ZONE, [], seed=0, stake_flex=1_000)
    pool_id = operator.create_pool(1_000, "street battery pool")

    runners = []
    for number, capacity in enumerate(BATTERY_W):
        owner, devices = staked_owner(
            w3, protocol, ZONE, [(DeviceKind.BATTERY, capacity)], seed=10 + number
        )
        enroll(operator, pool_id, owner, [d.device_id for d in devices])
        runners.append(
            NodeRunner(
                owner,
                devices,
                ZONE,
                tmp_path / f"node{number}",
                anvil.url,
                [UNUSED_ORACLE],
                interval_seconds=INTERVAL,
            )
        )
    leaver = runners[2]
    leaver.protocol.request_leave([leaver.devices[0].device_id])
    increase_time(w3, 2)
    for runner in runners:
        runner.tick(send=False)

    now = protocol.latest_block_timestamp()
    start = now - now % INTERVAL + 2 * 3600
    spec = RequestSpec(
        zone=ZONE, power_w=POOL_BID_W, window_start=start, window_end=start + 2 * INTERVAL,
        price_cap_per_kwh=EUR // 4, availability_price_per_kwh=0,
        gate_closure=start - INTERVAL, settlement_token=token.address,
        interval_seconds=INTERVAL, baseline_method=BaselineMethod.MBMA,
    )  # fmt: skip
    request_id, _ = dso.create_request(spec)
    for runner in runners:
        runner.tick(send=False)
    # The leaver's battery is still pooled until its leave is due: no node bids alone.
    assert [runner.bidder.own_bids() for runner in runners] == [[], [], []]
    # ... nor sends a doomed bid (DeviceInPool would mark the request skipped).
    assert all(
        [r.request_id for r in runner.bidder.open_requests()] == [request_id] for runner in runners
    )
    operator.bid_as_pool(request_id, pool_id, POOL_BID_W, EUR // 5)

    increase_time(w3, spec.gate_closure - protocol.latest_block_timestamp())
    dso.clear(request_id)
    for runner in runners:
        runner.tick(send=False)
    increase_time(w3, start + 1 - protocol.latest_block_timestamp())
    for runner in runners:
        runner.tick(send=False)

    # 4 kW over the 8 kW of the two backing batteries: half of each one's capacity.
    commanded = [
        [e for e in r.dispatch.log(request_id) if e.action == "commanded"] for r in runners
    ]
    assert [[(e.device_id, e.power_w) for e in log] for log in commanded] == [
        [(runners[0].devices[0].device_id, 2_500)],
        [(runners[1].devices[0].device_id, 1_500)],
        [],
    ]
    for runner in runners:
        runner.close()
