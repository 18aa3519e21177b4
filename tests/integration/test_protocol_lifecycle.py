"""The whole life of one flexibility event on a real anvil, with real compiled contracts:
register devices (secp256k1 and P-256 keys) -> stake -> request -> bid -> clear ->
report signed by 2 of 3 oracles -> dispute window -> finalize -> withdraw. Every balance is
checked to the base unit against the Python settlement mirror."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from eth_account import Account
from web3 import Web3

from gridflex.chain.anvil import anvil_dev_account, increase_time
from gridflex.chain.compiler import Artifact
from gridflex.chain.protocol import Protocol
from gridflex.errors import TransactionReverted
from gridflex.rules.clearing import BidOffer, clear
from gridflex.rules.eip712 import ReportPayload, p256_device_key, secp256k1_device_key, sign_report
from gridflex.rules.settlement import BidAward, PricingRule, settle_request
from gridflex.rules.types import DeviceKind, RequestSpec, RequestStatus, zone_id

pytestmark = pytest.mark.integration

FLEX = 10**18
EUR = 10**18  # the settlement token here is a second 18-decimal ERC20
ZONE = zone_id("NL-AMS-01")


@pytest.fixture(scope="module")
def settlement_token(governance: Protocol, artifacts: dict[str, Artifact]) -> str:
    """Any ERC20 can settle a request; deploy a separate one to stand for a stablecoin."""
    token = governance.client.deploy(artifacts["FlexToken"], governance.address, 10**9 * EUR)
    return token.address


def _actor(governance: Protocol, index: int) -> Protocol:
    return governance.as_account(anvil_dev_account(index))


def test_full_event_lifecycle_settles_every_balance_to_the_unit(
    governance: Protocol, settlement_token: str, w3: Web3
) -> None:
    operator, alice, bob = (_actor(governance, i) for i in (1, 2, 3))
    oracle_accounts = [anvil_dev_account(i) for i in (4, 5, 6)]
    treasury = governance.address

    # Governance seats three bonded oracles (k = 1 of 1, 2 of 2, 2 of 3: each seat sets the
    # threshold for the new size) and admits the grid operator.
    for account, threshold in zip(oracle_accounts, (1, 2, 2), strict=True):
        governance.seat_oracle(account, threshold)
    assert governance.committee.functions.threshold().call() == 2
    governance.grant_grid_operator(operator.address)
    governance.send(
        governance.erc20(settlement_token).functions.transfer(operator.address, 1_000 * EUR)
    )

    # Device owners register devices with proof of possession and stake.
    chain_id, registry = w3.eth.chain_id, governance.registry.address
    alice_battery = alice.register_device(
        DeviceKind.BATTERY, 20_000, ZONE,
        secp256k1_device_key(Account.create().key, alice.address, chain_id, registry),
    )  # fmt: skip
    alice_heat_pump = alice.register_device(
        DeviceKind.HEAT_PUMP, 15_000, ZONE,
        p256_device_key(ec.generate_private_key(ec.SECP256R1()), alice.address, chain_id, registry),
    )  # fmt: skip
    bob_ev = bob.register_device(
        DeviceKind.EV_CHARGER, 40_000, ZONE,
        secp256k1_device_key(Account.create().key, bob.address, chain_id, registry),
    )  # fmt: skip
    assert governance.device(alice_heat_pump).key_type == 1  # P-256 key
    for owner in (alice, bob):
        governance.send(governance.token.functions.transfer(owner.address, 1_000 * FLEX))
        owner.stake(1_000 * FLEX)

    # The grid operator asks for 50 kW over one hour, escrowing the maximum budget.
    now = w3.eth.get_block("latest")["timestamp"]
    window_start = now - now % 900 + 2 * 3600
    spec = RequestSpec(
        zone=ZONE, power_w=50_000, window_start=window_start, window_end=window_start + 3600,
        price_cap_per_kwh=EUR // 4, availability_price_per_kwh=EUR // 100,
        gate_closure=window_start - 3600, settlement_token=settlement_token,
    )  # fmt: skip
    operator_before = operator.balance_of(settlement_token)
    request_id, escrow = operator.create_request(spec)
    created = governance.request(request_id)
    assert created.created_at == w3.eth.get_block("latest")["timestamp"]
    assert created.dispute_ends_at == 0
    # 50 kWh at 0.25 + 50 kW x 1 h at 0.01 = 12.5 + 0.5
    assert escrow == 12 * EUR + EUR // 2 + EUR // 2
    assert operator.balance_of(settlement_token) == operator_before - escrow

    # Bids: bob is cheaper and gets all 30 kW; alice gets the remaining 20 of her 30 kW.
    bond_per_kw = governance.market.functions.bondPerKW().call()
    alice.bid(request_id, 30_000, EUR // 5, [alice_battery, alice_heat_pump])
    bob.bid(request_id, 30_000, 3 * EUR // 20, [bob_ev])
    with pytest.raises(TransactionReverted) as duplicate:
        bob.bid(request_id, 10_000, EUR // 10, [bob_ev])
    assert duplicate.value.error_name == "AlreadyBid"

    increase_time(w3, spec.gate_closure - w3.eth.get_block("latest")["timestamp"])
    governance.clear(request_id)
    offers = [
        BidOffer(0, alice.address, 30_000, EUR // 5, 30 * bond_per_kw),
        BidOffer(1, bob.address, 30_000, 3 * EUR // 20, 30 * bond_per_kw),
    ]
    expected_clearing = clear(50_000, offers, governance.market.functions.minBidW().call())
    assert governance.awarded_w(request_id) == [20_000, 30_000]
    assert [expected_clearing.awarded_w[i] for i in (0, 1)] == [20_000, 30_000]
    alice_stake = governance.staking.functions.accountOf(alice.address).call()
    assert alice_stake[1] == expected_clearing.kept_bond[0] == 20 * bond_per_kw

    # After the window, 2 of 3 oracles sign: bob delivered fully, alice only 40% (slashed).
    increase_time(w3, spec.window_end - w3.eth.get_block("latest")["timestamp"])
    delivered = [8_000, 30_000]
    payload = ReportPayload(
        governance.market.address, request_id, 0, delivered, b"\x01" * 32, b"\x02" * 32
    )
    signatures = sign_report(
        payload, chain_id, governance.committee.address, [a.key for a in oracle_accounts[:2]]
    )
    governance.submit_report(request_id, delivered, b"\x01" * 32, b"\x02" * 32, signatures)
    reported = governance.request(request_id)
    assert reported.status == RequestStatus.REPORTED
    dispute_window = governance.market.functions.disputeWindow().call()
    reported_at = w3.eth.get_block("latest")["timestamp"]
    assert reported.dispute_ends_at == reported_at + dispute_window
    with pytest.raises(TransactionReverted) as too_early:
        governance.finalize(request_id)
    assert too_early.value.error_name == "DisputeWindowOpen"

    increase_time(w3, dispute_window)
    treasury_flex_before = governance.balance_of(governance.token.address, treasury)
    governance.finalize(request_id)

    fee_bps = governance.market.functions.protocolFeeBps().call()
    expected = settle_request(
        escrow=escrow, duration_seconds=3600, pricing_rule=PricingRule.PAY_AS_BID,
        clearing_price=EUR // 5, availability_price_per_kwh=EUR // 100, threshold_bps=5_000,
        fee_bps=fee_bps,
        awards=[BidAward(alice.address, 20_000, EUR // 5, 20 * bond_per_kw),
                BidAward(bob.address, 30_000, 3 * EUR // 20, 30 * bond_per_kw)],
        delivered_wh=delivered,
    )  # fmt: skip
    alice_result, bob_result = expected.bids
    assert alice_result.outcome.utilization == 0 and alice_result.outcome.slashed > 0
    assert expected.payouts + expected.fees + expected.refund == escrow

    state = governance.request(request_id)
    assert state.status == RequestStatus.SETTLED
    assert governance.claimable(settlement_token, alice.address) == alice_result.payout
    assert governance.claimable(settlement_token, bob.address) == bob_result.payout
    assert governance.claimable(settlement_token, operator.address) == expected.refund
    assert governance.claimable(settlement_token, treasury) == expected.fees
    # Non-delivery slash goes to the treasury in FLEX; the rest of alice's bond is unlocked.
    assert governance.balance_of(governance.token.address, treasury) == (
        treasury_flex_before + alice_result.outcome.slashed
    )
    staked, locked, _unbonding, _release = governance.staking.functions.accountOf(
        alice.address
    ).call()
    assert (staked, locked) == (1_000 * FLEX - alice_result.outcome.slashed, 0)
    assert tuple(governance.staking.functions.accountOf(bob.address).call()[:2]) == (
        1_000 * FLEX,
        0,
    )

    # Pull payments: everyone withdraws exactly what was credited, the market keeps nothing.
    for actor, amount in (
        (alice, alice_result.payout),
        (bob, bob_result.payout),
        (operator, expected.refund),
        (governance, expected.fees),
    ):
        before = actor.balance_of(settlement_token)
        assert actor.withdraw(settlement_token) == amount
        assert actor.balance_of(settlement_token) == before + amount
    assert governance.balance_of(settlement_token, governance.market.address) == 0
    assert operator.balance_of(settlement_token) == operator_before - escrow + expected.refund
