"""Fraud proofs on a real anvil. A malicious 2-of-3 committee posts a report whose used
readings were altered; anyone challenges with the device's own signed meter unit; once the
response window passed unrebutted anyone resolves: the report is voided, the signers
slashed (the challenger paid its share), and a corrected round-1 report finalizes. And the
equivocation attack: a device owner signs a second value privately and challenges the
honest report with it; an honest oracle rebuts with the unit the device sent the oracles;
the owner is slashed, the oracles keep their bonds and the report finalizes. Units, leaves
and trees come from the same Python code the node and the oracles use
(gridflex.rules.attestation, gridflex.rules.reports), so this also proves the contract agrees
with it
byte for byte (secp256k1 and P-256 device keys)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from eth_account import Account
from support.chain import fresh_protocol, funded_account
from web3 import Web3

from gridflex.chain.anvil import increase_time
from gridflex.chain.client import ChainClient
from gridflex.chain.compiler import Artifact
from gridflex.chain.deploy import ProtocolParams, deploy_protocol
from gridflex.chain.protocol import Protocol
from gridflex.errors import TransactionReverted
from gridflex.rules.attestation import MeterUnit, meter_domain_separator, sign_unit
from gridflex.rules.eip712 import ReportPayload, p256_device_key, secp256k1_device_key, sign_report
from gridflex.rules.reports import (
    DeviceRecord,
    Quality,
    ReportTrees,
    build_report_trees,
    pack_used_readings,
    used_readings_leaf,
)
from gridflex.rules.settlement import BidAward, PricingRule, settle_request
from gridflex.rules.types import ChallengeStatus, DeviceKind, RequestSpec, RequestStatus, zone_id

pytestmark = pytest.mark.integration

FLEX = 10**18
EUR = 10**18
ZONE = zone_id("NL-RTM-02")
INTERVAL = 900


@pytest.fixture(scope="module")
def protocol(w3: Web3, artifacts: dict[str, Artifact]) -> Protocol:
    """A protocol of its own (a fresh committee), deployed by a fresh governance account."""
    return fresh_protocol(w3, artifacts=artifacts)


def _now(w3: Web3) -> int:
    return int(w3.eth.get_block("latest")["timestamp"])


def _report(
    records: list[DeviceRecord], used: dict[int, bytes], bid_count: int
) -> tuple[ReportTrees, list[int]]:
    trees = build_report_trees(records, used, bid_count)
    return trees, trees.delivered_wh


def test_tampered_reading_is_proven_voided_slashed_and_a_corrected_report_finalizes(
    protocol: Protocol, w3: Web3, artifacts: dict[str, Artifact]
) -> None:
    governance = protocol
    chain_id, registry = w3.eth.chain_id, governance.registry.address
    meter_domain = meter_domain_separator(chain_id, registry)

    # A 2-of-3 committee, a grid operator with a settlement token, two device owners.
    oracle_accounts = [funded_account(w3) for _ in range(3)]
    for account, threshold in zip(oracle_accounts, (1, 2, 2), strict=True):
        # Bond only: these oracles never challenge, and the slash below takes all they have.
        governance.seat_oracle(account, threshold, challenge_bonds=0)
    oracle_bond = int(governance.committee.functions.oracleBond().call())
    settlement_token = governance.client.deploy(
        artifacts["FlexToken"], governance.address, 10**9 * EUR
    ).address
    operator, alice, bob, challenger = (governance.as_account(funded_account(w3)) for _ in range(4))
    governance.grant_grid_operator(operator.address)
    governance.send(
        governance.erc20(settlement_token).functions.transfer(operator.address, 100 * EUR)
    )
    alice_key = Account.create().key
    bob_key = ec.generate_private_key(ec.SECP256R1())
    alice_device = alice.register_device(
        DeviceKind.BATTERY, 20_000, ZONE,
        secp256k1_device_key(alice_key, alice.address, chain_id, registry),
    )  # fmt: skip
    bob_device = bob.register_device(
        DeviceKind.HEAT_PUMP, 20_000, ZONE,
        p256_device_key(bob_key, bob.address, chain_id, registry),
    )  # fmt: skip
    for owner in (alice, bob):
        governance.send(governance.token.functions.transfer(owner.address, 1_000 * FLEX))
        owner.stake(1_000 * FLEX)
    # A challenge locks a bond of free stake (lost if rebutted): room for two.
    challenge_stake = 2 * governance.challenge_bond()
    governance.send(governance.token.functions.transfer(challenger.address, challenge_stake))
    challenger.stake(challenge_stake)

    # 20 kW for one hour (MBMA); each owner is awarded 10 kW.
    now = _now(w3)
    window_start = now - now % INTERVAL + 2 * 3600
    spec = RequestSpec(
        zone=ZONE, power_w=20_000, window_start=window_start, window_end=window_start + 3600,
        price_cap_per_kwh=EUR // 4, gate_closure=window_start - 3600,
        settlement_token=settlement_token,
    )  # fmt: skip
    request_id, escrow = operator.create_request(spec)
    alice.bid(request_id, 10_000, EUR // 5, [alice_device])
    bob.bid(request_id, 10_000, EUR // 5, [bob_device])
    increase_time(w3, spec.gate_closure - _now(w3))
    governance.clear(request_id)
    assert governance.awarded_w(request_id) == [10_000, 10_000]
    increase_time(w3, spec.window_end - _now(w3))

    # What the devices signed: the MBMA baseline interval, then the four event intervals.
    first = window_start - INTERVAL
    alice_unit = sign_unit(
        MeterUnit(alice_device, first, INTERVAL, 17, (3_000, 1_500, 1_500, 1_500, 1_500)),
        meter_domain, alice_key,
    )  # fmt: skip
    bob_unit = sign_unit(
        MeterUnit(bob_device, first, INTERVAL, 9, (2_800, 300, 300, 300, 300)),
        meter_domain, bob_key,
    )  # fmt: skip
    honest_alice = pack_used_readings(
        zip(alice_unit.interval_starts, alice_unit.energy_wh, strict=True)
    )
    bob_used = pack_used_readings(zip(bob_unit.interval_starts, bob_unit.energy_wh, strict=True))
    bob_record = DeviceRecord(bob_device, 1, 11_200, 1_200, 10_000, Quality.OK)

    # The malicious oracles: alice metered 500 Wh (not 1,500) in the second event interval,
    # which inflates her delivery from 6,000 to 7,000 Wh.
    tampered_index = 2
    tampered_start = first + tampered_index * INTERVAL
    tampered = dict(zip(alice_unit.interval_starts, alice_unit.energy_wh, strict=True))
    tampered[tampered_start] = 500
    alice_used = pack_used_readings(tampered.items())
    bad_trees, bad_delivered = _report(
        [DeviceRecord(alice_device, 0, 12_000, 5_000, 7_000, Quality.OK), bob_record],
        {alice_device: alice_used, bob_device: bob_used},
        2,
    )
    assert bad_delivered == [7_000, 10_000]
    payload = ReportPayload(
        governance.market.address, request_id, 0, bad_delivered,
        bad_trees.devices_root, bad_trees.readings_root,
    )  # fmt: skip
    signatures = sign_report(
        payload, chain_id, governance.committee.address, [a.key for a in oracle_accounts[:2]]
    )
    governance.submit_report(
        request_id, bad_delivered, bad_trees.devices_root, bad_trees.readings_root, signatures
    )
    assert governance.request(request_id).status == RequestStatus.REPORTED

    alice_proof = bad_trees.readings_tree.proof(used_readings_leaf(alice_device, alice_used))
    bob_proof = bad_trees.readings_tree.proof(used_readings_leaf(bob_device, bob_used))

    # Readings that agree are no fraud: the P-256 unit signed in Python verifies on-chain
    # (ValuesAgree is checked after the signature), and so does alice's untampered reading.
    with pytest.raises(TransactionReverted) as agree:
        challenger.challenge(request_id, bob_device, bob_used, bob_proof, 2, bob_unit, 2)
    assert agree.value.error_name == "ValuesAgree"
    with pytest.raises(TransactionReverted) as agree:
        challenger.challenge(request_id, alice_device, alice_used, alice_proof, 1, alice_unit, 1)
    assert agree.value.error_name == "ValuesAgree"
    # A unit signed for another deployment's registry does not verify here.
    foreign = sign_unit(
        alice_unit, meter_domain_separator(chain_id, governance.staking.address), alice_key
    )
    with pytest.raises(TransactionReverted) as replay:
        challenger.challenge(
            request_id, alice_device, alice_used, alice_proof, tampered_index, foreign,
            tampered_index,
        )  # fmt: skip
    assert replay.value.error_name == "UnitSignatureInvalid"

    # The fraud proof opens a challenge: nothing is voided or slashed before the deadline.
    treasury = governance.address
    flex = governance.token.address
    treasury_before = governance.balance_of(flex, treasury)
    share_bps = int(governance.dispute.functions.challengerShareBps().call())
    response_window = int(governance.dispute.functions.responseWindow().call())
    result = challenger.challenge(
        request_id, alice_device, alice_used, alice_proof, tampered_index, alice_unit,
        tampered_index,
    )  # fmt: skip
    slashed = 2 * oracle_bond
    assert (result.request_id, result.round, result.device_id) == (request_id, 0, alice_device)
    assert (result.interval_start, result.used_energy_wh, result.signed_energy_wh) == (
        tampered_start, 500, 1_500,
    )  # fmt: skip
    assert result.challenger == challenger.address
    assert result.response_deadline == _now(w3) + response_window
    assert governance.request(request_id).dispute_ends_at == result.dispute_ends_at
    assert result.dispute_ends_at >= result.response_deadline + response_window
    pending = governance.challenge_of(result.challenge_id)
    assert (pending.status, pending.signer_bitmap, pending.device_owner) == (
        ChallengeStatus.PENDING, 0b11, alice.address,
    )  # fmt: skip
    assert governance.request(request_id).status == RequestStatus.REPORTED
    # Challenges run side by side (each locks a bond); resolving waits for the deadline.
    bob_tampered = sign_unit(
        MeterUnit(bob_device, first, INTERVAL, 10, (2_800, 300, 999, 300, 300)),
        meter_domain, bob_key,
    )  # fmt: skip
    second = challenger.challenge(request_id, bob_device, bob_used, bob_proof, 2, bob_tampered, 2)
    assert governance.pending_challenge_count(request_id) == 2
    with pytest.raises(TransactionReverted) as early:
        challenger.resolve_challenge(result.challenge_id)
    assert early.value.error_name == "ResponseWindowOpen"

    # Nobody rebuts (the device never signed 500 Wh): after the deadline anyone resolves.
    increase_time(w3, result.response_deadline - _now(w3))
    resolved = governance.as_account(funded_account(w3)).resolve_challenge(result.challenge_id)
    assert (resolved.request_id, resolved.round) == (request_id, 0)
    assert (resolved.challenger, resolved.slashed_total) == (challenger.address, slashed)
    assert governance.challenge_of(result.challenge_id).status == ChallengeStatus.RESOLVED
    with pytest.raises(TransactionReverted) as twice:
        challenger.resolve_challenge(result.challenge_id)
    assert twice.value.error_name == "ChallengeNotPending"
    # The second challenge's round is voided already: moot, its bond back, nothing slashed.
    increase_time(w3, max(0, second.response_deadline - _now(w3)))
    moot = challenger.resolve_challenge(second.challenge_id)
    assert (moot.moot, moot.slashed_total) == (True, 0)
    assert governance.challenge_of(second.challenge_id).status == ChallengeStatus.MOOT
    assert int(governance.staking.functions.accountOf(challenger.address).call()[1]) == 0

    state = governance.request(request_id)
    assert (state.status, state.report_round, state.signer_bitmap) == (RequestStatus.CLEARED, 1, 0)
    for account in oracle_accounts[:2]:
        staked, locked, unbonding, _ = governance.staking.functions.accountOf(
            account.address
        ).call()
        assert (staked, locked, unbonding) == (0, 0, 0)
        assert governance.committee.functions.oracleOf(account.address).call()[1] is False
    honest = oracle_accounts[2]
    honest_stake = governance.staking.functions.accountOf(honest.address).call()
    assert tuple(honest_stake[:2]) == (oracle_bond, oracle_bond)
    challenger_share = slashed * share_bps // 10_000
    assert challenger.balance_of(flex) == challenger_share
    assert governance.balance_of(flex, treasury) == treasury_before + slashed - challenger_share

    # The same proof again is a replay: the report it contradicts is gone.
    with pytest.raises(TransactionReverted) as again:
        challenger.challenge(
            request_id, alice_device, alice_used, alice_proof, tampered_index, alice_unit,
            tampered_index,
        )  # fmt: skip
    assert again.value.error_name == "NotDisputable"

    # Governance re-seats (the honest oracle plus a new one, k = 2 of 2); they post the
    # corrected round-1 report; nobody can prove it wrong; it finalizes.
    newcomer = funded_account(w3)
    governance.seat_oracle(newcomer, 2)
    good_trees, good_delivered = _report(
        [DeviceRecord(alice_device, 0, 12_000, 6_000, 6_000, Quality.OK), bob_record],
        {alice_device: honest_alice, bob_device: bob_used},
        2,
    )
    assert good_delivered == [6_000, 10_000]
    corrected = ReportPayload(
        governance.market.address, request_id, 1, good_delivered,
        good_trees.devices_root, good_trees.readings_root,
    )  # fmt: skip
    governance.submit_report(
        request_id, good_delivered, good_trees.devices_root, good_trees.readings_root,
        sign_report(corrected, chain_id, governance.committee.address, [honest.key, newcomer.key]),
    )  # fmt: skip
    honest_proof = good_trees.readings_tree.proof(used_readings_leaf(alice_device, honest_alice))
    with pytest.raises(TransactionReverted) as no_fraud:
        challenger.challenge(
            request_id, alice_device, honest_alice, honest_proof, tampered_index, alice_unit,
            tampered_index,
        )  # fmt: skip
    assert no_fraud.value.error_name == "ValuesAgree"

    increase_time(w3, governance.request(request_id).dispute_ends_at - _now(w3))
    governance.finalize(request_id)
    assert governance.request(request_id).status == RequestStatus.SETTLED
    bond_per_kw = int(governance.market.functions.bondPerKW().call())
    expected = settle_request(
        escrow=escrow, duration_seconds=3600, pricing_rule=PricingRule.PAY_AS_BID,
        clearing_price=EUR // 5, availability_price_per_kwh=0, threshold_bps=5_000,
        fee_bps=int(governance.market.functions.protocolFeeBps().call()),
        awards=[BidAward(alice.address, 10_000, EUR // 5, 10 * bond_per_kw),
                BidAward(bob.address, 10_000, EUR // 5, 10 * bond_per_kw)],
        delivered_wh=good_delivered,
    )  # fmt: skip
    alice_result, bob_result = expected.bids
    assert governance.claimable(settlement_token, alice.address) == alice_result.payout
    assert governance.claimable(settlement_token, bob.address) == bob_result.payout
    assert governance.claimable(settlement_token, operator.address) == expected.refund
    assert expected.payouts + expected.fees + expected.refund == escrow


def test_device_equivocation_is_rebutted_owner_slashed_honest_oracles_keep_their_bonds(
    w3: Web3, artifacts: dict[str, Artifact]
) -> None:
    """The attack the two phases exist for: the device owner sends unit A to the oracles,
    keeps unit B (same device, same interval, another value) and challenges the honest report
    that used A. An honest signer rebuts with A: the owner pays, the report stands."""
    client = ChainClient(w3, funded_account(w3), artifacts)
    governance = Protocol(client, deploy_protocol(client, ProtocolParams.local(), artifacts))
    chain_id, registry = w3.eth.chain_id, governance.registry.address
    meter_domain = meter_domain_separator(chain_id, registry)
    oracle_accounts = [funded_account(w3) for _ in range(3)]
    for account, threshold in zip(oracle_accounts, (1, 2, 2), strict=True):
        governance.seat_oracle(account, threshold, challenge_bonds=0)  # they only rebut
    oracle_bond = int(governance.committee.functions.oracleBond().call())
    settlement_token = governance.client.deploy(
        artifacts["FlexToken"], governance.address, 10**9 * EUR
    ).address
    operator, mallory = (governance.as_account(funded_account(w3)) for _ in range(2))
    governance.grant_grid_operator(operator.address)
    governance.send(
        governance.erc20(settlement_token).functions.transfer(operator.address, 100 * EUR)
    )
    device_key = Account.create().key
    device = mallory.register_device(
        DeviceKind.BATTERY, 20_000, ZONE,
        secp256k1_device_key(device_key, mallory.address, chain_id, registry),
    )  # fmt: skip
    governance.send(governance.token.functions.transfer(mallory.address, 3_000 * FLEX))
    mallory.stake(3_000 * FLEX)

    now = _now(w3)
    window_start = now - now % INTERVAL + 2 * 3600
    spec = RequestSpec(
        zone=ZONE, power_w=10_000, window_start=window_start, window_end=window_start + 3600,
        price_cap_per_kwh=EUR // 4, gate_closure=window_start - 3600,
        settlement_token=settlement_token,
    )  # fmt: skip
    request_id, _ = operator.create_request(spec)
    mallory.bid(request_id, 10_000, EUR // 5, [device])
    increase_time(w3, spec.gate_closure - _now(w3))
    governance.clear(request_id)
    increase_time(w3, spec.window_end - _now(w3))

    # A goes to the oracles; B, signed by the same device for the same intervals, is kept.
    first = window_start - INTERVAL
    unit_a = sign_unit(
        MeterUnit(device, first, INTERVAL, 17, (3_000, 1_500, 1_500, 1_500, 1_500)),
        meter_domain, device_key,
    )  # fmt: skip
    disputed = 2
    unit_b = sign_unit(
        MeterUnit(device, first, INTERVAL, 18, (3_000, 1_500, 2_900, 1_500, 1_500)),
        meter_domain, device_key,
    )  # fmt: skip
    used = pack_used_readings(zip(unit_a.interval_starts, unit_a.energy_wh, strict=True))
    trees, delivered = _report(
        [DeviceRecord(device, 0, 12_000, 6_000, 6_000, Quality.OK)], {device: used}, 1
    )
    payload = ReportPayload(
        governance.market.address, request_id, 0, delivered, trees.devices_root,
        trees.readings_root,
    )  # fmt: skip
    governance.submit_report(
        request_id, delivered, trees.devices_root, trees.readings_root,
        sign_report(payload, chain_id, governance.committee.address,
                    [a.key for a in oracle_accounts[:2]]),
    )  # fmt: skip
    proof = trees.readings_tree.proof(used_readings_leaf(device, used))

    # Mallory challenges the honest report with B (it would void it and slash the signers).
    locked_before = int(governance.staking.functions.accountOf(mallory.address).call()[1])
    opened = mallory.challenge(request_id, device, used, proof, disputed, unit_b, disputed)
    assert (opened.used_energy_wh, opened.signed_energy_wh) == (1_500, 2_900)
    extended_end = governance.request(request_id).dispute_ends_at
    assert extended_end == opened.dispute_ends_at >= opened.response_deadline

    # An accused oracle shows A: the device signed 1,500 Wh too. B itself is no rebuttal.
    defender = governance.as_account(oracle_accounts[0])
    with pytest.raises(TransactionReverted) as mismatch:
        defender.rebut(opened.challenge_id, unit_b, disputed)
    assert mismatch.value.error_name == "RebuttalValueMismatch"
    flex = governance.token.address
    share_bps = int(governance.dispute.functions.challengerShareBps().call())
    penalty = int(governance.dispute.functions.equivocationPenalty().call())
    rebutted = defender.rebut(opened.challenge_id, unit_a, disputed)
    assert (rebutted.request_id, rebutted.device_id) == (request_id, device)
    assert (rebutted.rebutter, rebutted.device_owner) == (defender.address, mallory.address)
    assert rebutted.penalty == penalty
    assert governance.challenge_of(opened.challenge_id).status == ChallengeStatus.REBUTTED
    assert governance.dispute.functions.equivocated(device).call() is True

    # The attacker's free stake paid, and her challenge bond (her bid bond untouched); the
    # oracles keep everything.
    bond = governance.challenge_bond()
    assert (rebutted.challenger, rebutted.bond_slashed) == (mallory.address, bond)
    staked, locked, _, _ = governance.staking.functions.accountOf(mallory.address).call()
    assert (staked, locked) == (3_000 * FLEX - penalty - bond, locked_before)
    assert defender.balance_of(flex) == (penalty * share_bps + bond * share_bps) // 10_000
    assert mallory.balance_of(flex) == 0
    for account in oracle_accounts:
        stake = governance.staking.functions.accountOf(account.address).call()
        assert tuple(stake[:2]) == (oracle_bond, oracle_bond)
        assert governance.committee.functions.oracleOf(account.address).call()[1] is True

    # Neither resolving the dismissed challenge nor challenging with the device again works.
    with pytest.raises(TransactionReverted) as dismissed:
        mallory.resolve_challenge(opened.challenge_id)
    assert dismissed.value.error_name == "ChallengeNotPending"
    with pytest.raises(TransactionReverted) as again:
        mallory.challenge(request_id, device, used, proof, disputed, unit_b, disputed)
    assert again.value.error_name == "DeviceEquivocated"

    # The report stands and finalizes after the extended end, not before.
    state = governance.request(request_id)
    assert (state.status, state.report_round, state.dispute_ends_at) == (
        RequestStatus.REPORTED, 0, extended_end,
    )  # fmt: skip
    increase_time(w3, extended_end - 2 - _now(w3))
    with pytest.raises(TransactionReverted) as early:
        governance.finalize(request_id)
    assert early.value.error_name == "DisputeWindowOpen"
    increase_time(w3, extended_end - _now(w3))
    governance.finalize(request_id)
    assert governance.request(request_id).status == RequestStatus.SETTLED
