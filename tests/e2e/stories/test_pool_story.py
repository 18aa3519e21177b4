"""Micro-flexibility end to end on anvil with a real oracle process: an energy community
(100 households, 200 home batteries) and an aggregator's pool (50 households, 100 heat
pumps) serve one DSO request beside two individual bidders. Each pool bids as one bid; the
members' meters sign their readings (EIP-712 units, as their nodes do) and send them over
HTTP to the oracle; the oracle measures all 302 devices, posts the report and settles; then
every member claims its devices' shares with the proofs the oracle serves.

What must hold, to the base unit: for each pool bid, member claims + commission + dust =
the bid's payout; for the request, payouts + fees + refund = escrow. A member who asked to
leave before the bids is not measured and not paid; a commission raised inside its notice
period does not apply to a bid placed meanwhile."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx
import pytest
from e2e_support import REPORT_DELAY_S
from eth_account import Account
from eth_account.signers.local import LocalAccount
from support.chain import advance_to_time_of_day, funded_account, wait_for
from support.oracle_process import OracleServer
from web3 import Web3

from gridflex.chain.anvil import increase_time
from gridflex.chain.compiler import load_artifacts
from gridflex.chain.protocol import Protocol
from gridflex.rules.attestation import MeterUnit, meter_domain_separator, sign_unit
from gridflex.rules.eip712 import secp256k1_device_key, sign_digest_secp256k1
from gridflex.rules.pools import consent_digest, dispatch_shares
from gridflex.rules.reports import DeviceRecord
from gridflex.rules.settlement import member_share, pool_split
from gridflex.rules.types import (
    BaselineMethod,
    DeviceKind,
    RequestSpec,
    RequestStatus,
    zone_id,
)

pytestmark = pytest.mark.integration

EUR = 10**18
FLEX = 10**18
ZONE = zone_id("NL-ZONNEDORP-01")
INTERVAL = 900
WINDOW_INTERVALS = 4
COMMUNITY_HOMES, COMMUNITY_DEVICE_W = 100, 5_000
VPP_HOMES, VPP_DEVICE_W = 50, 3_000
SOLO_W = 20_000
COMMUNITY_BID_W, VPP_BID_W = 400_000, 150_000
COMMUNITY_COMMISSION, VPP_COMMISSION, VPP_RAISED = 1_500, 1_000, 4_000
BATCH = 40
"""Units per POST (the oracle's batch limit)."""


@dataclass
class Meter:
    device_id: int
    key: bytes
    capacity_w: int


@dataclass
class Household:
    owner: Protocol
    meters: list[Meter]


def register(owner: Protocol, kind: DeviceKind, capacity_w: int, count: int) -> list[Meter]:
    """The owner's devices in one transaction (`registerBatch`), each key proven."""
    keys = [bytes(Account.create().key) for _ in range(count)]
    chain_id, registry = owner.client.chain_id, owner.registry.address
    proofs = [secp256k1_device_key(key, owner.address, chain_id, registry) for key in keys]
    ids = owner.register_devices(kind, capacity_w, ZONE, proofs)
    return [Meter(device_id, key, capacity_w) for device_id, key in zip(ids, keys, strict=True)]


def household(
    w3: Web3, protocol: Protocol, kind: DeviceKind, capacity_w: int, devices: int
) -> Household:
    owner = protocol.as_account(funded_account(w3))
    return Household(owner, register(owner, kind, capacity_w, devices))


def enroll(operator: Protocol, pool_id: int, home: Household, now: int) -> None:
    """The operator accepts the household with the owner's EIP-712 consent."""
    ids = [m.device_id for m in home.meters]
    nonce = home.owner.consent_nonce(home.owner.address)
    deadline = now + 86_400
    digest = consent_digest(
        operator.client.chain_id,
        operator.pools.address,
        pool_id,
        home.owner.address,
        ids,
        nonce,
        deadline,
    )
    signature = sign_digest_secp256k1(home.owner.client.account.key, digest)
    operator.enroll(pool_id, home.owner.address, ids, nonce, deadline, signature)


def staked_operator(w3: Web3, governance: Protocol, flex: int) -> Protocol:
    account: LocalAccount = funded_account(w3)
    governance.send(governance.token.functions.transfer(account.address, flex * FLEX))
    operator = governance.as_account(account)
    operator.stake(flex * FLEX)
    return operator


def readings(baseline_wh: int, asked_w: int, performance_pct: int) -> tuple[int, ...]:
    """The interval before the window (MBMA's baseline) and the window's intervals: the
    device consumes `baseline_wh` per interval and, dispatched, `performance_pct`% of what
    it was asked for less."""
    reduced = asked_w * INTERVAL // 3600 * performance_pct // 100
    return (baseline_wh, *[baseline_wh - reduced] * WINDOW_INTERVALS)


def test_two_pools_and_two_individual_bidders_serve_one_request_and_every_member_claims(
    w3: Web3, protocol: Protocol, oracle: OracleServer
) -> None:
    started = time.monotonic()
    advance_to_time_of_day(w3, 10 * 3600)
    dso = protocol.as_account(funded_account(w3))
    protocol.grant_grid_operator(dso.address)
    token = dso.client.deploy(load_artifacts()["FlexToken"], dso.address, 10**9 * EUR)

    community_operator = staked_operator(w3, protocol, 10_000)
    vpp_operator = staked_operator(w3, protocol, 10_000)
    community = community_operator.create_pool(COMMUNITY_COMMISSION, "Zonnedorp energy community")
    vpp = vpp_operator.create_pool(VPP_COMMISSION, "Voltwise VPP")
    now = protocol.latest_block_timestamp()
    community_homes = [
        household(w3, protocol, DeviceKind.BATTERY, COMMUNITY_DEVICE_W, 2)
        for _ in range(COMMUNITY_HOMES)
    ]
    vpp_homes = [
        household(w3, protocol, DeviceKind.HEAT_PUMP, VPP_DEVICE_W, 2) for _ in range(VPP_HOMES)
    ]
    leaver = household(w3, protocol, DeviceKind.BATTERY, COMMUNITY_DEVICE_W, 1)
    for home in [*community_homes, leaver]:
        enroll(community_operator, community, home, now)
    for home in vpp_homes:
        enroll(vpp_operator, vpp, home, now)
    leaver.owner.request_leave([m.device_id for m in leaver.meters])
    vpp_operator.set_commission(vpp, VPP_RAISED)
    assert protocol.pool_capacity(community, ZONE) == COMMUNITY_HOMES * 2 * COMMUNITY_DEVICE_W
    assert protocol.pool_capacity(vpp, ZONE) == VPP_HOMES * 2 * VPP_DEVICE_W

    solos = []
    for _ in range(2):
        solo = staked_operator(w3, protocol, 1_000)
        solos.append(Household(solo, register(solo, DeviceKind.BATTERY, SOLO_W, 1)))
    increase_time(w3, 2)  # a pool bids in a later second than its last join or leave

    now = protocol.latest_block_timestamp()
    start = now - now % INTERVAL + 2 * 3600
    spec = RequestSpec(
        zone=ZONE, power_w=600_000, window_start=start,
        window_end=start + WINDOW_INTERVALS * INTERVAL, price_cap_per_kwh=3 * EUR // 10,
        availability_price_per_kwh=0, gate_closure=start - INTERVAL,
        settlement_token=token.address, interval_seconds=INTERVAL,
        baseline_method=BaselineMethod.MBMA,
    )  # fmt: skip
    request_id, escrow = dso.create_request(spec)
    community_bid = community_operator.bid_as_pool(
        request_id, community, COMMUNITY_BID_W, 2 * EUR // 10
    )
    vpp_bid = vpp_operator.bid_as_pool(request_id, vpp, VPP_BID_W, 22 * EUR // 100)
    solo_bids = [
        s.owner.bid(request_id, SOLO_W, 25 * EUR // 100, [s.meters[0].device_id]) for s in solos
    ]
    assert protocol.pool_bid_of(request_id, vpp_bid).commission_bps == VPP_COMMISSION, (
        "raise not in force"
    )

    increase_time(w3, spec.gate_closure - protocol.latest_block_timestamp())
    dso.clear(request_id)
    awarded = protocol.awarded_w(request_id)
    assert awarded[community_bid] == COMMUNITY_BID_W and awarded[vpp_bid] == VPP_BID_W

    # Each member's node dispatches its pool's award in proportion to capacity, then signs
    # the interval before the window and the window; performance varies by household.
    increase_time(w3, spec.window_end + 1 - protocol.latest_block_timestamp())
    units = []
    domain = meter_domain_separator(protocol.client.chain_id, protocol.registry.address)

    def meter_units(homes: list[Household], bid_w: int, baseline_wh: int) -> None:
        capacities = {m.device_id: m.capacity_w for h in homes for m in h.meters}
        asked = dispatch_shares(bid_w, capacities)
        for number, home in enumerate(homes):
            for meter in home.meters:
                assert asked[meter.device_id] <= meter.capacity_w
                energy = readings(baseline_wh, asked[meter.device_id], 80 + number % 25)
                unit = MeterUnit(meter.device_id, start - INTERVAL, INTERVAL, 1, energy)
                units.append(sign_unit(unit, domain, meter.key))

    meter_units(community_homes, COMMUNITY_BID_W, 1_000)
    meter_units(vpp_homes, VPP_BID_W, 700)
    meter_units([leaver], COMMUNITY_BID_W // 200, 1_000)
    for solo in solos:
        meter_units([solo], SOLO_W, 5_000)
    for i in range(0, len(units), BATCH):
        response = httpx.post(
            oracle.url + "/v1/readings",
            json={"units": [u.to_json() for u in units[i : i + BATCH]]},
            timeout=60,
        )
        assert response.status_code == 200, response.text

    increase_time(w3, REPORT_DELAY_S + 1)
    wait_for(
        lambda: protocol.request(request_id).status == RequestStatus.REPORTED,
        "the report",
        timeout=120,
    )
    increase_time(w3, protocol.dispute_window() + 1)
    wait_for(
        lambda: protocol.request(request_id).status == RequestStatus.SETTLED,
        "settlement",
        timeout=120,
    )

    # The request: payouts + fees + refund = escrow.
    settlement = protocol.settlement(request_id)
    assert settlement is not None
    assert settlement.payouts + settlement.fees + settlement.refund == escrow
    bid_payouts = {
        s.bid_index: s.utilization + s.availability - s.fee
        for s in protocol.bid_settlements(request_id=request_id)
    }
    for index, solo_bid in enumerate(solo_bids):
        assert (
            protocol.claimable(token.address, solos[index].owner.address)
            == bid_payouts[solo_bid]
            > 0
        )

    # The leaver's device backs no bid: the oracle has no record of it.
    (leaving,) = leaver.meters
    assert (
        httpx.get(f"{oracle.url}/v1/reports/{request_id}/devices/{leaving.device_id}").status_code
        == 404
    )

    def claim_all(
        homes: list[Household], bid_index: int, commission_bps: int, operator: Protocol
    ) -> None:
        payout = protocol.pool_payout(request_id, bid_index)
        commission, pot = pool_split(bid_payouts[bid_index], commission_bps)
        assert payout.member_pot == pot > 0
        assert protocol.pool_withdrawable(token.address, operator.address) == commission
        claimed = 0
        for home in homes:
            records, proofs, expected = [], [], 0
            for meter in home.meters:
                proof = httpx.get(
                    f"{oracle.url}/v1/reports/{request_id}/devices/{meter.device_id}"
                ).json()
                record = DeviceRecord.from_json(proof["record"])
                assert record.bid_index == bid_index
                records.append(record)
                proofs.append([bytes.fromhex(node[2:]) for node in proof["recordProof"]])
                expected += member_share(pot, payout.delivered_wh, record.delivered_wh)
            before = protocol.balance_of(token.address, home.owner.address)
            assert home.owner.claim_member_shares(request_id, records, proofs) == expected > 0
            assert protocol.balance_of(token.address, home.owner.address) - before == expected
            claimed += expected
        dust = pot - claimed
        assert 0 <= dust < sum(len(h.meters) for h in homes)
        assert claimed + commission + dust == bid_payouts[bid_index], (
            "claims + commission + dust = payout"
        )
        assert protocol.pool_payout(request_id, bid_index).claimed == claimed

    claim_all(community_homes, community_bid, COMMUNITY_COMMISSION, community_operator)
    claim_all(vpp_homes, vpp_bid, VPP_COMMISSION, vpp_operator)
    assert not protocol.member_claimed(request_id, leaving.device_id)
    print(f"pool story: {time.monotonic() - started:.0f} s")
