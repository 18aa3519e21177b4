"""The pure pool rules: which devices back a pool bid, dispatch shares, and what a pool
can offer from its members' availability."""

from __future__ import annotations

from gridflex.rules.pools import Membership, backing_devices, dispatch_shares, pool_offer_w

ZONE, OTHER = b"\x01" * 32, b"\x02" * 32


def member(device: int, joined: int, leave: int | None = None, zone: bytes = ZONE) -> Membership:
    return Membership(7, device, "0xowner", zone, 1_000 * device, joined, leave, leave)


def test_a_device_backs_bids_placed_after_it_joined_and_before_it_asked_to_leave() -> None:
    members = [
        member(1, 100),
        member(2, 200),
        member(3, 100, leave=150),
        member(4, 100, zone=OTHER),
    ]
    assert backing_devices(members, 7, ZONE, 100) == {1: 1_000, 3: 3_000}
    assert backing_devices(members, 7, ZONE, 150) == {1: 1_000}
    assert backing_devices(members, 7, ZONE, 200) == {1: 1_000, 2: 2_000}
    assert backing_devices(members, 8, ZONE, 200) == {}


def test_dispatch_shares_are_pro_rata_to_capacity_and_never_above_it() -> None:
    assert dispatch_shares(4_000, {1: 5_000, 2: 3_000}) == {1: 2_500, 2: 1_500}
    assert dispatch_shares(7_000, {1: 3_000, 2: 3_000, 3: 3_000}) == {1: 2_333, 2: 2_333, 3: 2_333}
    shares = dispatch_shares(9_000, {1: 5_000, 2: 4_000})
    assert all(shares[d] <= cap for d, cap in {1: 5_000, 2: 4_000}.items())


def test_a_pool_offers_what_its_members_can_deliver_at_their_shares() -> None:
    capacities = {1: 5_000, 2: 5_000, 3: 5_000, 4: 5_000}
    # Two devices can give everything, two nothing: each share is P/4 and counts at most
    # that, so the pool delivers P/2 < 80% of P for any P > 0: it offers nothing.
    assert pool_offer_w(capacities, {1: 5_000, 2: 5_000}) == 0
    # Every device can give 2 kW: at P = 10 kW the shares are 2.5 kW, each delivers 2 kW,
    # 8 kW in all = 80% of P; any more and it falls short.
    assert pool_offer_w(capacities, {d: 2_000 for d in capacities}) == 10_000
    offer = pool_offer_w(capacities, {d: 2_000 for d in capacities})
    assert sum(min(2_000, s) for s in dispatch_shares(offer, capacities).values()) * 10 >= offer * 8
    assert pool_offer_w({}, {}) == 0
