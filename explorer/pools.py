"""Read models of pools, from the indexed PoolRegistry and FlexMarket events: a pool's
operator, commission history, members, capacity by zone, bids, payouts and member claims;
and one account's or one device's member payouts. Like `explorer.queries`, they read the
explorer database only (never the chain)."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from pydantic import BaseModel
from sqlmodel import Session, col, select

from explorer.models import Bid, ChainEvent
from explorer.queries import Amount

POOL_EVENTS = (
    "PoolCreated", "CommissionChangeScheduled", "MemberJoined", "LeaveRequested", "MemberLeft",
    "PoolBidPlaced", "PoolBidSettled", "MemberPaid",
)  # fmt: skip


class CommissionView(BaseModel):
    commission_bps: int
    effective_at: int
    """When it applies (creation: at once; a change: after the notice period)."""
    scheduled_at: int


class MemberView(BaseModel):
    device_id: int
    owner: str
    zone: str
    capacity_w: int
    joined_at: int
    leave_requested_at: int | None
    leave_at: int | None
    left: bool


class ZoneCapacity(BaseModel):
    zone: str
    capacity_w: int
    devices: int


class PoolBidView(BaseModel):
    request_id: int
    bid_index: int
    capacity_w: int
    commission_bps: int
    power_w: int | None = None
    awarded_w: int | None = None
    price_per_kwh: Amount | None = None
    payout: Amount | None = None
    commission: Amount | None = None
    member_pot: Amount | None = None
    delivered_wh: int | None = None
    claimed: Amount = 0
    claims: int = 0


class PoolDetail(BaseModel):
    pool_id: int
    name: str
    operator: str
    commissions: list[CommissionView]
    members: list[MemberView]
    capacity_by_zone: list[ZoneCapacity]
    bids: list[PoolBidView]
    owners: int


class MemberPayment(BaseModel):
    request_id: int
    bid_index: int
    device_id: int
    owner: str
    amount: Amount
    tx_hash: str
    timestamp: int


class PoolSummary(BaseModel):
    pool_id: int
    name: str
    operator: str
    commission_bps: int
    members: int


def _events(session: Session, names: tuple[str, ...]) -> list[tuple[ChainEvent, dict[str, Any]]]:
    rows = session.exec(
        select(ChainEvent)
        .where(col(ChainEvent.name).in_(names))
        .order_by(col(ChainEvent.block_number), col(ChainEvent.log_index))
    ).all()
    return [(row, json.loads(row.args)) for row in rows]


def pool_list(session: Session) -> list[PoolSummary]:
    pools: dict[int, PoolSummary] = {}
    for event, args in _events(session, ("PoolCreated", "MemberJoined", "LeaveRequested")):
        pool_id = int(args["poolId"])
        if event.name == "PoolCreated":
            pools[pool_id] = PoolSummary(
                pool_id=pool_id, name=args["name"], operator=args["operator"],
                commission_bps=int(args["commissionBps"]), members=0,
            )  # fmt: skip
        elif pool_id in pools:
            pools[pool_id].members += 1 if event.name == "MemberJoined" else -1
    return sorted(pools.values(), key=lambda p: p.pool_id)


def pool_detail(session: Session, pool_id: int) -> PoolDetail | None:
    events = [(e, a) for e, a in _events(session, POOL_EVENTS) if _pool_of(a) == pool_id]
    created = next((a for e, a in events if e.name == "PoolCreated"), None)
    if created is None:
        return None
    commissions = [CommissionView(
        commission_bps=int(created["commissionBps"]), effective_at=events[0][0].timestamp,
        scheduled_at=events[0][0].timestamp,
    )]  # fmt: skip
    members: dict[int, MemberView] = {}
    bids: dict[tuple[int, int], PoolBidView] = {}
    for event, a in events:
        if event.name == "CommissionChangeScheduled":
            commissions.append(CommissionView(
                commission_bps=int(a["commissionBps"]), effective_at=int(a["effectiveAt"]),
                scheduled_at=event.timestamp,
            ))  # fmt: skip
        elif event.name == "MemberJoined":
            device = int(a["deviceId"])
            members[device] = MemberView(
                device_id=device, owner=a["owner"], zone=a["zone"], capacity_w=int(a["capacityW"]),
                joined_at=int(a["joinedAt"]), leave_requested_at=None, leave_at=None, left=False,
            )  # fmt: skip
        elif event.name == "LeaveRequested" and int(a["deviceId"]) in members:
            m = members[int(a["deviceId"])]
            m.leave_requested_at, m.leave_at = int(a["requestedAt"]), int(a["leaveAt"])
        elif event.name == "MemberLeft" and int(a["deviceId"]) in members:
            members[int(a["deviceId"])].left = True
        elif event.name == "PoolBidPlaced":
            key = (int(a["requestId"]), int(a["bidIndex"]))
            bids[key] = PoolBidView(
                request_id=key[0], bid_index=key[1], capacity_w=int(a["capacityW"]),
                commission_bps=int(a["commissionBps"]),
            )  # fmt: skip
        elif event.name == "PoolBidSettled":
            view = bids.get((int(a["requestId"]), int(a["bidIndex"])))
            if view is not None:
                view.payout, view.commission = int(a["payout"]), int(a["commission"])
                view.member_pot, view.delivered_wh = int(a["memberPot"]), int(a["deliveredWh"])
    _attach_claims(session, bids)
    _attach_market_bids(session, bids)
    active = [m for m in members.values() if m.leave_requested_at is None]
    zones: dict[str, list[MemberView]] = defaultdict(list)
    for m in active:
        zones[m.zone].append(m)
    return PoolDetail(
        pool_id=pool_id, name=created["name"], operator=created["operator"],
        commissions=commissions, members=sorted(members.values(), key=lambda m: m.device_id),
        capacity_by_zone=[
            ZoneCapacity(zone=z, capacity_w=sum(m.capacity_w for m in ms), devices=len(ms))
            for z, ms in sorted(zones.items())
        ],
        bids=sorted(bids.values(), key=lambda b: (b.request_id, b.bid_index), reverse=True),
        owners=len({m.owner for m in active}),
    )  # fmt: skip


def _pool_of(args: dict[str, Any]) -> int | None:
    return int(args["poolId"]) if "poolId" in args else None


def _attach_claims(session: Session, bids: dict[tuple[int, int], PoolBidView]) -> None:
    for _, a in _events(session, ("MemberPaid",)):
        view = bids.get((int(a["requestId"]), int(a["bidIndex"])))
        if view is not None:
            view.claimed += int(a["amount"])
            view.claims += 1


def _attach_market_bids(session: Session, bids: dict[tuple[int, int], PoolBidView]) -> None:
    for (request_id, bid_index), view in bids.items():
        bid = session.exec(
            select(Bid).where(Bid.request_id == request_id, Bid.bid_index == bid_index)
        ).first()
        if bid is not None:
            view.power_w, view.awarded_w, view.price_per_kwh = (
                bid.power_w, bid.awarded_w, bid.price_per_kwh,
            )  # fmt: skip


def member_payments(
    session: Session, *, owner: str | None = None, device_id: int | None = None
) -> list[MemberPayment]:
    """Member payouts (claims of pool shares) of one owner or one device, newest first."""
    payments = []
    for event, a in _events(session, ("MemberPaid",)):
        if owner is not None and a["owner"].lower() != owner.lower():
            continue
        if device_id is not None and int(a["deviceId"]) != device_id:
            continue
        payments.append(MemberPayment(
            request_id=int(a["requestId"]), bid_index=int(a["bidIndex"]),
            device_id=int(a["deviceId"]), owner=a["owner"], amount=int(a["amount"]),
            tx_hash=event.tx_hash, timestamp=event.timestamp,
        ))  # fmt: skip
    return list(reversed(payments))
