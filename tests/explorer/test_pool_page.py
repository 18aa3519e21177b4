"""The explorer's pool page and members' payouts over a real indexed chain: a pool of two
households (two devices each) whose commission change is pending, one settled pool bid
with a device-record tree, three of four devices claimed. The API and the pages show what
the chain holds: members, capacity by zone, the commission history, the bid's payout split
(commission, members' pot, claimed) and each member's payouts."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account import Account
from explorer_market import EUR, FLEX, ZONE, build_market, explorer_context
from fastapi.testclient import TestClient
from support.chain import fresh_protocol, funded_account
from web3 import Web3

from explorer.app import create_app
from explorer.indexer import Indexer
from gridflex.chain.anvil import increase_time
from gridflex.rules.eip712 import (
    ReportPayload,
    secp256k1_device_key,
    sign_digest_secp256k1,
    sign_report,
)
from gridflex.rules.merkle import MerkleTree
from gridflex.rules.pools import consent_digest
from gridflex.rules.reports import DeviceRecord, Quality
from gridflex.rules.settlement import member_share, pool_split
from gridflex.rules.types import DeviceKind, RequestSpec

pytestmark = pytest.mark.integration

DEVICE_W = 10_000
DELIVERED = (5_000, 7_000, 6_000, 2_000)


def test_the_pool_page_shows_members_commissions_payout_split_and_claims(
    w3: Web3, tmp_path: Path
) -> None:
    market = build_market(w3, fresh_protocol(w3, tmp_path / "deployments"))
    governance = market.governance
    operator = governance.as_account(funded_account(w3))
    governance.send(governance.token.functions.transfer(operator.address, 1_000 * FLEX))
    operator.stake(1_000 * FLEX)
    pool_id = operator.create_pool(2_000, "Buurtbatterij")
    homes = []
    for _ in range(2):
        owner = governance.as_account(funded_account(w3))
        registry = governance.registry.address
        keys = [
            secp256k1_device_key(Account.create().key, owner.address, w3.eth.chain_id, registry)
            for _ in range(2)
        ]
        ids = [owner.register_device(DeviceKind.BATTERY, DEVICE_W, ZONE, key) for key in keys]
        deadline = owner.latest_block_timestamp() + 86_400
        digest = consent_digest(
            w3.eth.chain_id, owner.pools.address, pool_id, owner.address, ids, 0, deadline
        )
        operator.enroll(
            pool_id,
            owner.address,
            ids,
            0,
            deadline,
            sign_digest_secp256k1(owner.client.account.key, digest),
        )
        homes.append((owner, ids))
    operator.set_commission(pool_id, 3_000)
    increase_time(w3, 2)

    now = governance.latest_block_timestamp()
    start = now - now % 900 + 2 * 3600
    spec = RequestSpec(
        zone=ZONE, power_w=20_000, window_start=start, window_end=start + 3600,
        price_cap_per_kwh=EUR // 4, availability_price_per_kwh=0,
        gate_closure=start - 1800, settlement_token=market.token,
    )  # fmt: skip
    request_id, _ = market.operator.create_request(spec)
    bid_index = operator.bid_as_pool(request_id, pool_id, 20_000, EUR // 5)
    increase_time(w3, spec.gate_closure - governance.latest_block_timestamp())
    governance.clear(request_id)
    increase_time(w3, spec.window_end - governance.latest_block_timestamp())
    device_ids = [d for _, ids in homes for d in ids]
    records = [
        DeviceRecord(d, bid_index, 10_000, 10_000 - wh, wh, Quality.OK)
        for d, wh in zip(device_ids, DELIVERED, strict=True)
    ]
    tree = MerkleTree.from_leaf_hashes([r.leaf() for r in records])
    delivered = [sum(DELIVERED)]
    payload = ReportPayload(
        governance.market.address, request_id, 0, delivered, tree.root, b"\x02" * 32
    )
    signatures = sign_report(
        payload, w3.eth.chain_id, governance.committee.address, [a.key for a in market.oracles]
    )
    governance.submit_report(request_id, delivered, tree.root, b"\x02" * 32, signatures)
    increase_time(w3, governance.dispute_window() + 1)
    governance.finalize(request_id)
    (settled,) = governance.bid_settlements(request_id=request_id)
    payout = settled.utilization + settled.availability - settled.fee
    commission, pot = pool_split(payout, 2_000)
    first_owner, first_ids = homes[0]
    first_owner.claim_member_shares(
        request_id, records[:2], [tree.proof(r.leaf()) for r in records[:2]]
    )
    second_owner, _ = homes[1]
    second_owner.claim_member_shares(request_id, records[2:3], [tree.proof(records[2].leaf())])
    shares = [member_share(pot, sum(DELIVERED), wh) for wh in DELIVERED]

    context = explorer_context(w3, market, f"sqlite:///{tmp_path / 'explorer.db'}")
    Indexer(context.engine, w3, context.deployment).sync()
    with TestClient(create_app(context)) as client:
        body = client.get(f"/api/pools/{pool_id}").json()
        assert body["name"] == "Buurtbatterij" and body["operator"] == operator.address
        assert [c["commission_bps"] for c in body["commissions"]] == [2_000, 3_000]
        assert body["owners"] == 2 and len(body["members"]) == 4
        assert body["capacity_by_zone"] == [
            {"zone": "0x" + ZONE.hex(), "capacity_w": 4 * DEVICE_W, "devices": 4}
        ]
        (bid,) = body["bids"]
        assert (bid["request_id"], bid["bid_index"], bid["commission_bps"]) == (
            request_id,
            bid_index,
            2_000,
        )
        assert int(bid["payout"]) == payout and int(bid["commission"]) == commission
        assert int(bid["member_pot"]) == pot and bid["delivered_wh"] == sum(DELIVERED)
        assert int(bid["claimed"]) == sum(shares[:3]) and bid["claims"] == 3

        payments = client.get(f"/api/accounts/{first_owner.address}/member-payments").json()
        assert sorted(int(p["amount"]) for p in payments) == sorted(shares[:2])
        page = client.get(f"/pools/{pool_id}").text
        assert "Buurtbatterij" in page and "members' pot" in page
        assert (
            client.get("/pools").status_code == 200 and "Buurtbatterij" in client.get("/pools").text
        )
        assert "Pool member payouts" in client.get(f"/accounts/{first_owner.address}").text
        assert "Pool member payouts" in client.get(f"/devices/{first_ids[0]}").text
        assert client.get("/api/pools/99").status_code == 404
        assert client.get("/pools/99").status_code == 404
    context.engine.dispose()
