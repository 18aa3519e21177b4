"""Pools (an aggregator's virtual power plant, an energy community) as the protocol sees
them, pure: which devices back a pool's bid, the owner's enrolment consent, and what each
member is owed. Mirrors `contracts/PoolRegistry.sol`:

- A device backs its pool's bids placed at or after it joined and before it asked to leave
  (`PoolRegistry.backingPoolAt`); a pool cannot bid in the second of a join or a leave in
  the zone, so the rule never depends on the order of transactions in a block.
- The pool's payout of a bid (after the protocol fee) is split into the operator's
  commission and the members' pot (`settlement.pool_split`); each device gets
  pot * max(delivered, 0) / bid delivered, rounded down (`settlement.member_share`); the
  dust, below one base unit per paid device, stays in PoolRegistry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from eth_utils import to_checksum_address

from gridflex.rules.eip712 import domain, typed_data_digest
from gridflex.rules.reports import DeviceRecord
from gridflex.rules.settlement import member_share

POOLS_DOMAIN_NAME = "GridFlex PoolRegistry"
POOL_CONSENT_TYPES = {
    "PoolConsent": [
        {"name": "poolId", "type": "uint256"},
        {"name": "owner", "type": "address"},
        {"name": "deviceIds", "type": "uint256[]"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ]
}
MAX_DEVICES_PER_CONSENT = 256
"""PoolRegistry.MAX_DEVICES_PER_CONSENT: devices one enrolment (one consent) may carry."""


@dataclass(frozen=True)
class Pool:
    """`IPoolRegistry.Pool`: its operator, the commission in force and a pending change."""

    operator: str
    commission_bps: int
    pending_commission_bps: int
    pending_effective_at: int


@dataclass(frozen=True)
class PoolBid:
    """`IFlexMarket.PoolBid`: the pool behind a bid (0: an individual bid), the commission
    and the pool's capacity in the zone when it was placed."""

    pool_id: int
    commission_bps: int
    capacity_w: int


@dataclass(frozen=True)
class PoolPayout:
    """`IPoolRegistry.PoolPayout`: a settled pool bid's members' pot and what was claimed."""

    member_pot: int
    claimed: int
    pool_id: int
    delivered_wh: int


@dataclass(frozen=True)
class Membership:
    """One membership of a device in a pool, from PoolRegistry's events."""

    pool_id: int
    device_id: int
    owner: str
    zone: bytes
    capacity_w: int
    joined_at: int
    leave_requested_at: int | None = None
    leave_at: int | None = None

    def backs_at(self, timestamp: int) -> bool:
        """Whether the device backs its pool's bids placed at `timestamp`."""
        return self.joined_at <= timestamp and (
            self.leave_requested_at is None or self.leave_requested_at > timestamp
        )


def backing_devices(
    memberships: Iterable[Membership], pool_id: int, zone: bytes, placed_at: int
) -> dict[int, int]:
    """device id -> capacity (W) of the devices behind a pool bid placed at `placed_at` in
    `zone`: what the oracles measure and `DeliveryDispute` accepts. Capacity and zone cannot
    change while a device is pooled, so the capacity at joining is the one at the bid."""
    return {
        m.device_id: m.capacity_w
        for m in memberships
        if m.pool_id == pool_id and m.zone == zone and m.backs_at(placed_at)
    }


def consent_digest(
    chain_id: int,
    pools_contract: str,
    pool_id: int,
    owner: str,
    device_ids: Sequence[int],
    nonce: int,
    deadline: int,
) -> bytes:
    """The EIP-712 `PoolConsent` digest an owner signs to enrol `device_ids` in `pool_id`."""
    return typed_data_digest(
        domain(POOLS_DOMAIN_NAME, chain_id, pools_contract),
        POOL_CONSENT_TYPES,
        {
            "poolId": pool_id,
            "owner": to_checksum_address(owner),
            "deviceIds": list(device_ids),
            "nonce": nonce,
            "deadline": deadline,
        },
    )


@dataclass(frozen=True)
class MemberClaim:
    """What one device is owed from one pool bid."""

    record: DeviceRecord
    share: int


def member_claims(
    records: Iterable[DeviceRecord], payouts: Mapping[int, PoolPayout]
) -> list[MemberClaim]:
    """The shares of every record under a settled pool bid (bid index -> its payout)."""
    claims = []
    for record in records:
        payout = payouts.get(record.bid_index)
        if payout is None:
            continue
        share = member_share(payout.member_pot, payout.delivered_wh, record.delivered_wh)
        claims.append(MemberClaim(record, share))
    return claims


def dispatch_shares(awarded_w: int, capacities: Mapping[int, int]) -> dict[int, int]:
    """device id -> W each backing device is asked for when its pool is awarded `awarded_w`:
    in proportion to capacity, rounded down, so never above what the device can deliver
    (the same proportion as each device's cap in measurement, `device_cap_wh`)."""
    total = sum(capacities.values())
    if total == 0:
        return {device: 0 for device in capacities}
    return {device: awarded_w * cap // total for device, cap in capacities.items()}


def pool_offer_w(
    capacities: Mapping[int, int], available: Mapping[int, int], min_delivery_bps: int = 8_000
) -> int:
    """The most a pool can offer from its members' availability (W, per device, as their
    nodes report it for the window): the largest P whose dispatch shares (pro rata to
    capacity, `dispatch_shares`) its devices can deliver to at least `min_delivery_bps`
    of P, each device counting at most its share (measurement caps it there)."""
    total = sum(capacities.values())
    if total == 0:
        return 0

    def deliverable(power_w: int) -> int:
        return sum(
            min(available.get(device, 0), power_w * cap // total)
            for device, cap in capacities.items()
        )

    low, high = 0, total
    while low < high:  # deliverable(P) * 10_000 >= P * bps holds up to some P, then fails
        mid = (low + high + 1) // 2
        if deliverable(mid) * 10_000 >= mid * min_delivery_bps:
            low = mid
        else:
            high = mid - 1
    return low
