"""A pool bid's pot after its claim period: members claim for a year after settlement,
then anyone may sweep what is left (unclaimed shares and the split's dust) to the pool's
operator; a late claim is refused with a readable reason. Conservation to the base unit:
member claims + commission + sweep = the bid's payout, and PoolRegistry ends empty."""

from __future__ import annotations

import pytest
from support.chain import fresh_protocol, funded_account
from support.pools import enroll_with_consent, grid_operator_with_token, registered_device
from web3 import Web3

from gridflex.chain.anvil import anvil_dev_account, increase_time
from gridflex.errors import TransactionReverted
from gridflex.errors_text import explain
from gridflex.rules.eip712 import (
    ReportPayload,
    sign_report,
)
from gridflex.rules.merkle import MerkleTree
from gridflex.rules.reports import DeviceRecord, Quality
from gridflex.rules.settlement import member_share, pool_split
from gridflex.rules.types import RequestSpec, zone_id

pytestmark = pytest.mark.integration

FLEX = 10**18
ZONE = zone_id("NL-SWEEP-01")
COMMISSION_BPS = 1_500
DELIVERED_WH = (4_001, 4_700, 4_999)  # three members' 5 kW batteries: 91% of 15 kWh


def test_after_the_claim_period_the_rest_of_the_pot_goes_to_the_operator(w3: Web3) -> None:
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]
    try:
        _serve_claim_and_sweep(w3)
    finally:  # the year jumped here must not reach the session chain's other tests
        w3.provider.make_request("evm_revert", [snapshot])


def _serve_claim_and_sweep(w3: Web3) -> None:
    governance = fresh_protocol(w3)
    oracles = [funded_account(w3) for _ in range(2)]
    for oracle, threshold in zip(oracles, (1, 2), strict=True):
        governance.send(governance.token.functions.transfer(oracle.address, 20_000 * FLEX))
        governance.seat_oracle(oracle, threshold)
    operator = governance.as_account(funded_account(w3))
    governance.send(governance.token.functions.transfer(operator.address, 1_000 * FLEX))
    operator.stake(1_000 * FLEX)
    pool_id = operator.create_pool(COMMISSION_BPS, "sweep street")
    members, devices = [], []
    for _ in DELIVERED_WH:
        member = governance.as_account(funded_account(w3))
        device_id = registered_device(member, ZONE, 5_000)
        enroll_with_consent(operator, pool_id, member, [device_id])
        members.append(member)
        devices.append(device_id)
    increase_time(w3, 2)

    dso, token = grid_operator_with_token(governance)
    now = governance.latest_block_timestamp()
    start = now - now % 900 + 2 * 3600
    spec = RequestSpec(
        zone=ZONE, power_w=15_000, window_start=start, window_end=start + 3600,
        price_cap_per_kwh=FLEX // 4, gate_closure=start - 900, settlement_token=token,
    )  # fmt: skip
    request_id, _ = dso.create_request(spec)
    bid_index = operator.bid_as_pool(request_id, pool_id, 15_000, FLEX // 5)
    increase_time(w3, spec.gate_closure - governance.latest_block_timestamp())
    governance.clear(request_id)

    records = [
        DeviceRecord(device, bid_index, 5_000, 5_000 - wh, wh, Quality.OK)
        for device, wh in zip(devices, DELIVERED_WH, strict=True)
    ]
    tree = MerkleTree.from_leaf_hashes([r.leaf() for r in records])
    delivered = [sum(DELIVERED_WH)]
    readings_root = b"\x02" * 32
    increase_time(w3, spec.window_end - governance.latest_block_timestamp())
    payload = ReportPayload(
        governance.market.address, request_id, 0, delivered, tree.root, readings_root
    )
    signatures = sign_report(
        payload, w3.eth.chain_id, governance.committee.address, [o.key for o in oracles]
    )
    governance.submit_report(request_id, delivered, tree.root, readings_root, signatures)
    increase_time(w3, int(governance.market.functions.disputeWindow().call()) + 1)
    pools_before = governance.balance_of(token, governance.pools.address)
    governance.finalize(request_id)
    bid_payout = governance.balance_of(token, governance.pools.address) - pools_before
    settled_at = governance.latest_block_timestamp()

    # 13,700 Wh at 0.20 /kWh, less the protocol fee: the bid payout (read off the transfer).
    gross = 13_700 * (FLEX // 5) // 1_000  # 2.74 FLEX
    assert governance.market.functions.protocolFeeBps().call() == 100
    assert bid_payout == gross - gross * 100 // 10_000 == 2_712_600_000_000_000_000
    commission, pot = pool_split(bid_payout, COMMISSION_BPS)
    assert commission == bid_payout * 1_500 // 10_000
    assert governance.pool_payout(request_id, bid_index).member_pot == pot
    shares = [member_share(pot, sum(DELIVERED_WH), wh) for wh in DELIVERED_WH]
    # Two members claim; the third never does.
    for member, record, share in zip(members[:2], records[:2], shares[:2], strict=True):
        proof = tree.proof(record.leaf())
        assert member.claim_member_shares(request_id, [record], [proof]) == share

    claim_period = int(governance.pools.functions.CLAIM_PERIOD().call())
    with pytest.raises(TransactionReverted) as early:
        governance.sweep_unclaimed(request_id, bid_index)
    assert early.value.error_name == "ClaimPeriodNotOver"
    increase_time(w3, settled_at + claim_period + 1 - governance.latest_block_timestamp())

    late = members[2]
    with pytest.raises(TransactionReverted) as too_late:
        late.claim_member_shares(request_id, [records[2]], [tree.proof(records[2].leaf())])
    assert too_late.value.error_name == "ClaimPeriodOver"
    assert "the claim period of request" in explain(too_late.value)

    stranger = governance.as_account(anvil_dev_account(9))
    swept = stranger.sweep_unclaimed(request_id, bid_index)
    assert swept == pot - shares[0] - shares[1], "the third share and the dust"
    assert shares[0] + shares[1] + commission + swept == bid_payout, "to the base unit"
    assert governance.pool_withdrawable(token, operator.address) == commission + swept
    assert operator.withdraw_commission(token) == commission + swept
    assert governance.balance_of(token, governance.pools.address) == pools_before
    with pytest.raises(TransactionReverted) as again:
        stranger.sweep_unclaimed(request_id, bid_index)
    assert again.value.error_name == "NothingToSweep"
