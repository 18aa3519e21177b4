"""The read models shared by the HTML pages and the JSON API: one function per page, each
a few indexed queries on the explorer database (never the chain, never an oracle), so a
page costs the same whatever the chain's history.

Token amounts are integers in base units; in JSON they are decimal strings (they exceed
JavaScript's 2^53)."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Annotated

from eth_utils import to_checksum_address
from pydantic import BaseModel, PlainSerializer
from sqlalchemy import func
from sqlmodel import Session, col, select

from explorer.models import (
    AccountStake,
    Bid,
    BidDevice,
    Challenge,
    Device,
    DeviceResult,
    EventInterval,
    IndexedBlock,
    IndexerCursor,
    LedgerEntry,
    Reading,
    Report,
    Request,
)
from gridflex.rules.eip712 import KeyType
from gridflex.rules.reports import Quality
from gridflex.rules.types import BaselineMethod, DeviceKind, Direction

Amount = Annotated[int, PlainSerializer(str, return_type=str, when_used="json")]
"""Token base units; a decimal string in JSON."""

DEVICE_READINGS_SHOWN = 672
"""The device page charts the latest week of 15-minute readings; the API pages through all."""


def _kind(kind: int) -> str:
    return DeviceKind(kind).name.lower().replace("_", " ")


def _key_type(key_type: int) -> str:
    return {KeyType.SECP256K1: "secp256k1", KeyType.P256: "P-256"}.get(
        KeyType(key_type), str(key_type)
    )


# ─── Read models ──────────────────────────────────────────────────────────────────────


class Progress(BaseModel):
    indexed_block: int | None
    chain_head: int | None
    chain_time: int | None
    """Timestamp of the newest indexed block: the clock of countdowns."""


class DeviceSummary(BaseModel):
    device_id: int
    owner: str
    kind: str
    capacity_w: int
    zone: str
    key_type: str
    key_x: str
    key_y: str
    active: bool
    registered_at: int


class CapacityGroup(BaseModel):
    name: str
    devices: int
    capacity_w: int


class TokenTotals(BaseModel):
    token: str
    requests: int
    escrow: Amount
    payouts: Amount
    fees: Amount
    refunds: Amount


class HistoryPoint(BaseModel):
    """Running totals after the requests created or closed at `timestamp`."""

    timestamp: int
    requests: int
    delivered_wh: int
    payouts: Amount
    fees: Amount
    slashed: Amount


class Overview(BaseModel):
    progress: Progress
    devices: int
    capacity_w: int
    by_kind: list[CapacityGroup]
    by_zone: list[CapacityGroup]
    stake_total: Amount
    stake_locked: Amount
    requests_by_status: dict[str, int]
    delivered_wh: int
    tokens: list[TokenTotals]
    slashed_total: Amount
    """Stake slashed (FLEX): providers' bonds for non-delivery, oracles' bonds for voided
    reports, devices' owners for equivocation."""
    history: list[HistoryPoint]


class RequestSummary(BaseModel):
    request_id: int
    status: str
    operator: str
    zone: str
    direction: str
    power_w: int
    awarded_w: int
    window_start: int
    window_end: int
    interval_seconds: int
    gate_closure: int
    baseline_method: str
    pricing_rule: str
    settlement_token: str
    price_cap_per_kwh: Amount
    availability_price_per_kwh: Amount
    escrow: Amount
    clearing_price: Amount
    bid_count: int
    accepted_bids: int
    delivered_wh: int
    payouts: Amount
    fees: Amount
    refund: Amount
    slashed: Amount
    created_at: int
    closed_at: int | None


class RequestList(BaseModel):
    items: list[RequestSummary]
    total: int
    offset: int
    limit: int


class SettledFigures(BaseModel):
    """What `BidSettled` says about one bid (zeros before settlement)."""

    delivered_wh: int
    utilization: Amount
    availability: Amount
    fee: Amount
    payout: Amount
    """utilization + availability - fee: what the bidder can withdraw."""
    slashed: Amount


class BidView(SettledFigures):
    bid_index: int
    sequence: int
    """Order of placement (the merit order's tie-break; a displacing bid reuses a slot)."""
    bidder: str
    power_w: int
    price_per_kwh: Amount
    bond: Amount
    device_ids: list[int]
    awarded_w: int
    reported_wh: int | None
    """Delivery in the standing report, before settlement."""
    settled: bool


class ReportView(BaseModel):
    round: int
    devices_root: str
    readings_root: str
    delivered_wh: list[int]
    signers: list[str]
    dispute_ends_at: int
    posted_at: int
    tx_hash: str
    voided: bool


class DeviceResultView(BaseModel):
    device_id: int
    round: int
    bid_index: int
    baseline_wh: int
    metered_wh: int
    delivered_wh: int
    quality: str
    source: str


class ChallengeView(BaseModel):
    challenge_id: int
    round: int
    device_id: int
    interval_start: int
    used_energy_wh: int
    signed_energy_wh: int
    challenger: str
    status: str


class RequestDetail(BaseModel):
    request: RequestSummary
    progress: Progress
    bids: list[BidView]
    reports: list[ReportView]
    device_results: list[DeviceResultView]
    challenges: list[ChallengeView]


class IntervalView(BaseModel):
    interval_start: int
    baseline_wh: int
    metered_wh: int
    delivered_wh: int


class DeviceEvent(BaseModel):
    request_id: int
    bid_index: int
    status: str
    window_start: int
    window_end: int
    settlement_token: str
    bid_awarded_w: int
    record: DeviceResultView | None
    intervals: list[IntervalView]
    earnings: Amount
    """The device's share of its bid's payout, pro rata by delivered energy."""


class ReadingView(BaseModel):
    interval_start: int
    energy_wh: int
    unit_digest: str


class DeviceDetail(BaseModel):
    device: DeviceSummary
    readings_total: int
    readings: list[ReadingView]
    """The latest readings, oldest first (at most `DEVICE_READINGS_SHOWN`)."""
    events: list[DeviceEvent]
    earnings_by_token: dict[str, Amount]


class ReadingList(BaseModel):
    device_id: int
    readings: list[ReadingView]
    next_cursor: int | None


class LedgerView(BaseModel):
    kind: str
    amount: Amount
    token: str
    counterparty: str
    request_id: int | None
    timestamp: int
    block_number: int
    tx_hash: str


class StakeView(BaseModel):
    staked: Amount
    locked: Amount
    unbonding: Amount
    unbonding_release_at: int
    as_of_block: int


class AccountBid(BaseModel):
    request_id: int
    bid: BidView


class AccountDetail(BaseModel):
    address: str
    stake: StakeView | None
    devices: list[DeviceSummary]
    bids: list[AccountBid]
    ledger: list[LedgerView]
    payouts_by_token: dict[str, Amount]
    slashed: Amount


class SettlementRow(SettledFigures):
    """One settled bid: the rows of `/api/settlements.csv`."""

    request_id: int
    bid_index: int
    bidder: str
    settlement_token: str
    awarded_w: int
    price_per_kwh: Amount
    clearing_price: Amount
    settled_at: int | None


# ─── Conversions ──────────────────────────────────────────────────────────────────────


def device_summary(device: Device) -> DeviceSummary:
    return DeviceSummary(
        device_id=device.device_id, owner=device.owner, kind=_kind(device.kind),
        capacity_w=device.capacity_w, zone=device.zone, key_type=_key_type(device.key_type),
        key_x=device.key_x, key_y=device.key_y, active=device.active,
        registered_at=device.registered_at,
    )  # fmt: skip


def request_summary(r: Request) -> RequestSummary:
    return RequestSummary(
        request_id=r.request_id, status=r.status, operator=r.operator, zone=r.zone,
        direction=Direction(r.direction).name.lower().replace("_", " "),
        power_w=r.power_w, awarded_w=r.awarded_w, window_start=r.window_start,
        window_end=r.window_end, interval_seconds=r.interval_seconds,
        gate_closure=r.gate_closure,
        baseline_method=BaselineMethod(r.baseline_method).name.replace("_", " "),
        pricing_rule=("pay-as-bid", "uniform")[r.pricing_rule],
        settlement_token=r.settlement_token, price_cap_per_kwh=r.price_cap_per_kwh,
        availability_price_per_kwh=r.availability_price_per_kwh, escrow=r.escrow,
        clearing_price=r.clearing_price, bid_count=r.bid_count, accepted_bids=r.accepted_bids,
        delivered_wh=r.delivered_wh, payouts=r.payouts, fees=r.fees, refund=r.refund,
        slashed=r.slashed, created_at=r.created_at, closed_at=r.closed_at,
    )  # fmt: skip


def bid_view(bid: Bid, reported_wh: int | None = None) -> BidView:
    return BidView(
        bid_index=bid.bid_index, sequence=bid.sequence, bidder=bid.bidder, power_w=bid.power_w,
        price_per_kwh=bid.price_per_kwh, bond=bid.bond, device_ids=json.loads(bid.device_ids),
        awarded_w=bid.awarded_w, reported_wh=reported_wh, settled=bid.settled,
        delivered_wh=bid.delivered_wh, utilization=bid.utilization,
        availability=bid.availability, fee=bid.fee, payout=bid.payout, slashed=bid.slashed,
    )  # fmt: skip


def result_view(row: DeviceResult) -> DeviceResultView:
    return DeviceResultView(
        device_id=row.device_id, round=row.round, bid_index=row.bid_index,
        baseline_wh=row.baseline_wh, metered_wh=row.metered_wh, delivered_wh=row.delivered_wh,
        quality=Quality(row.quality).name, source=row.source,
    )  # fmt: skip


def report_view(report: Report) -> ReportView:
    return ReportView(
        round=report.round, devices_root=report.devices_root,
        readings_root=report.readings_root, delivered_wh=json.loads(report.delivered_wh),
        signers=json.loads(report.signers), dispute_ends_at=report.dispute_ends_at,
        posted_at=report.posted_at, tx_hash=report.tx_hash, voided=report.voided,
    )  # fmt: skip


# ─── Pages ────────────────────────────────────────────────────────────────────────────


def progress(session: Session) -> Progress:
    cursor = session.get(IndexerCursor, 1)
    chain_time = session.exec(
        select(IndexedBlock.timestamp).order_by(col(IndexedBlock.number).desc()).limit(1)
    ).first()
    if cursor is None:
        return Progress(indexed_block=None, chain_head=None, chain_time=None)
    return Progress(
        indexed_block=cursor.next_block - 1, chain_head=cursor.chain_head, chain_time=chain_time
    )


def _grouped(rows: list[tuple[str, int]]) -> list[CapacityGroup]:
    groups: dict[str, list[int]] = defaultdict(list)
    for name, capacity in rows:
        groups[name].append(capacity)
    return [
        CapacityGroup(name=name, devices=len(caps), capacity_w=sum(caps))
        for name, caps in sorted(groups.items())
    ]


def overview(session: Session) -> Overview:
    devices = session.exec(select(Device.kind, Device.zone, Device.capacity_w)).all()
    requests = session.exec(select(Request).order_by(col(Request.created_at))).all()
    stakes = session.exec(select(AccountStake.staked, AccountStake.locked)).all()
    by_status: dict[str, int] = defaultdict(int)
    tokens: dict[str, TokenTotals] = {}
    changes: list[tuple[int, int, int, int, int, int]] = []
    for r in requests:
        by_status[r.status] += 1
        totals = tokens.setdefault(
            r.settlement_token,
            TokenTotals(
                token=r.settlement_token, requests=0, escrow=0, payouts=0, fees=0, refunds=0
            ),
        )
        totals.requests += 1
        totals.escrow += r.escrow
        totals.payouts += r.payouts
        totals.fees += r.fees
        totals.refunds += r.refund
        changes.append((r.created_at, 1, 0, 0, 0, 0))
        if r.closed_at is not None:
            changes.append((r.closed_at, 0, r.delivered_wh, r.payouts, r.fees, 0))
    slashes = session.exec(
        select(LedgerEntry.timestamp, LedgerEntry.amount).where(LedgerEntry.kind == "slash")
    ).all()
    changes += [(timestamp, 0, 0, 0, 0, amount) for timestamp, amount in slashes]
    history: list[HistoryPoint] = []
    running = [0, 0, 0, 0, 0]
    for timestamp, *deltas in sorted(changes):
        running = [a + b for a, b in zip(running, deltas, strict=True)]
        point = HistoryPoint(
            timestamp=timestamp, requests=running[0], delivered_wh=running[1],
            payouts=running[2], fees=running[3], slashed=running[4],
        )  # fmt: skip
        if history and history[-1].timestamp == timestamp:
            history[-1] = point
        else:
            history.append(point)
    return Overview(
        progress=progress(session),
        devices=len(devices),
        capacity_w=sum(d[2] for d in devices),
        by_kind=_grouped([(_kind(kind), capacity) for kind, _, capacity in devices]),
        by_zone=_grouped([(zone, capacity) for _, zone, capacity in devices]),
        stake_total=sum(s[0] for s in stakes),
        stake_locked=sum(s[1] for s in stakes),
        requests_by_status=dict(by_status),
        delivered_wh=sum(r.delivered_wh for r in requests),
        tokens=list(tokens.values()),
        slashed_total=sum(amount for _, amount in slashes),
        history=history,
    )


def request_list(session: Session, offset: int = 0, limit: int = 50) -> RequestList:
    total = session.exec(select(func.count()).select_from(Request)).one()
    rows = session.exec(
        select(Request).order_by(col(Request.request_id).desc()).offset(offset).limit(limit)
    ).all()
    return RequestList(
        items=[request_summary(r) for r in rows], total=total, offset=offset, limit=limit
    )


def request_detail(session: Session, request_id: int) -> RequestDetail | None:
    request = session.get(Request, request_id)
    if request is None:
        return None
    reports = session.exec(
        select(Report).where(Report.request_id == request_id).order_by(col(Report.round))
    ).all()
    standing = next((r for r in reversed(reports) if not r.voided), None)
    reported = json.loads(standing.delivered_wh) if standing else []
    bids = session.exec(
        select(Bid).where(Bid.request_id == request_id).order_by(col(Bid.bid_index))
    ).all()
    results = session.exec(
        select(DeviceResult)
        .where(DeviceResult.request_id == request_id)
        .order_by(col(DeviceResult.round), col(DeviceResult.bid_index), col(DeviceResult.device_id))
    ).all()
    challenges = session.exec(select(Challenge).where(Challenge.request_id == request_id)).all()
    return RequestDetail(
        request=request_summary(request),
        progress=progress(session),
        bids=[
            bid_view(b, reported[b.bid_index] if b.bid_index < len(reported) else None)
            for b in bids
        ],
        reports=[report_view(r) for r in reports],
        device_results=[result_view(r) for r in results],
        challenges=[ChallengeView(**c.model_dump(exclude={"request_id"})) for c in challenges],
    )


def device_detail(session: Session, device_id: int) -> DeviceDetail | None:
    device = session.get(Device, device_id)
    if device is None:
        return None
    readings_total = session.exec(
        select(func.count()).select_from(Reading).where(Reading.device_id == device_id)
    ).one()
    latest = session.exec(
        select(Reading)
        .where(Reading.device_id == device_id)
        .order_by(col(Reading.interval_start).desc())
        .limit(DEVICE_READINGS_SHOWN)
    ).all()
    memberships = session.exec(
        select(BidDevice, Bid, Request)
        .join(
            Bid, (Bid.request_id == BidDevice.request_id) & (Bid.bid_index == BidDevice.bid_index)
        )  # type: ignore[arg-type]
        .join(Request, Request.request_id == BidDevice.request_id)  # type: ignore[arg-type]
        .where(BidDevice.device_id == device_id)
        .order_by(col(BidDevice.request_id).desc())
    ).all()
    request_ids = [m[0].request_id for m in memberships]
    results = {
        (r.request_id, r.bid_index): r
        for r in session.exec(
            select(DeviceResult)
            .where(
                DeviceResult.device_id == device_id, col(DeviceResult.request_id).in_(request_ids)
            )
            .order_by(col(DeviceResult.round))
        ).all()
    }
    bid_delivered: dict[tuple[int, int], int] = defaultdict(int)
    for request_id, bid_index, delivered in session.exec(
        select(DeviceResult.request_id, DeviceResult.bid_index, DeviceResult.delivered_wh).where(
            col(DeviceResult.request_id).in_(request_ids)
        )
    ).all():
        bid_delivered[(request_id, bid_index)] += max(delivered, 0)
    intervals: dict[int, list[IntervalView]] = defaultdict(list)
    for row in session.exec(
        select(EventInterval)
        .where(EventInterval.device_id == device_id, col(EventInterval.request_id).in_(request_ids))
        .order_by(col(EventInterval.interval_start))
    ).all():
        intervals[row.request_id].append(
            IntervalView(**row.model_dump(exclude={"request_id", "device_id"}))
        )
    events = []
    for _, bid, request in memberships:
        record = results.get((bid.request_id, bid.bid_index))
        share = 0
        if record is not None and bid.settled and bid_delivered[(bid.request_id, bid.bid_index)]:
            share = (
                bid.payout
                * max(record.delivered_wh, 0)
                // bid_delivered[(bid.request_id, bid.bid_index)]
            )
        events.append(
            DeviceEvent(
                request_id=bid.request_id, bid_index=bid.bid_index, status=request.status,
                window_start=request.window_start, window_end=request.window_end,
                settlement_token=request.settlement_token, bid_awarded_w=bid.awarded_w,
                record=None if record is None else result_view(record),
                intervals=intervals.get(bid.request_id, []), earnings=share,
            )
        )  # fmt: skip
    earnings: dict[str, int] = defaultdict(int)
    for item in events:
        earnings[item.settlement_token] += item.earnings
    return DeviceDetail(
        earnings_by_token=dict(earnings),
        device=device_summary(device),
        readings_total=readings_total,
        readings=[
            ReadingView(
                interval_start=r.interval_start, energy_wh=r.energy_wh, unit_digest=r.unit_digest
            )
            for r in reversed(latest)
        ],
        events=events,
    )


def device_readings(
    session: Session,
    device_id: int,
    start: int | None,
    end: int | None,
    cursor: int | None,
    limit: int,
) -> ReadingList:
    query = select(Reading).where(Reading.device_id == device_id)
    if start is not None:
        query = query.where(Reading.interval_start >= start)
    if end is not None:
        query = query.where(Reading.interval_start < end)
    if cursor is not None:
        query = query.where(Reading.interval_start > cursor)
    rows = session.exec(query.order_by(col(Reading.interval_start)).limit(limit + 1)).all()
    page = rows[:limit]
    return ReadingList(
        device_id=device_id,
        readings=[
            ReadingView(
                interval_start=r.interval_start, energy_wh=r.energy_wh, unit_digest=r.unit_digest
            )
            for r in page
        ],
        next_cursor=page[-1].interval_start if len(rows) > limit else None,
    )


def has_device_record(session: Session, request_id: int, device_id: int) -> bool:
    found = session.exec(
        select(DeviceResult.device_id).where(
            DeviceResult.request_id == request_id, DeviceResult.device_id == device_id
        )
    ).first()
    return found is not None


def device_list(session: Session) -> list[DeviceSummary]:
    return [device_summary(d) for d in session.exec(select(Device).order_by(col(Device.device_id)))]


def account_detail(session: Session, address: str) -> AccountDetail:
    address = to_checksum_address(address)  # events carry checksummed addresses
    stake = session.get(AccountStake, address)
    ledger = session.exec(
        select(LedgerEntry)
        .where(LedgerEntry.account == address)
        .order_by(col(LedgerEntry.timestamp), col(LedgerEntry.id))
    ).all()
    bids = session.exec(
        select(Bid).where(Bid.bidder == address).order_by(col(Bid.request_id).desc())
    ).all()
    payouts: dict[str, int] = defaultdict(int)
    for entry in ledger:
        if entry.kind == "payout":
            payouts[entry.token] += entry.amount
    return AccountDetail(
        address=address,
        stake=None
        if stake is None
        else StakeView(
            staked=stake.staked,
            locked=stake.locked,
            unbonding=stake.unbonding,
            unbonding_release_at=stake.unbonding_release_at,
            as_of_block=stake.block_number,
        ),
        devices=[
            device_summary(d)
            for d in session.exec(
                select(Device).where(Device.owner == address).order_by(col(Device.device_id))
            )
        ],
        bids=[AccountBid(request_id=b.request_id, bid=bid_view(b)) for b in bids],
        ledger=[LedgerView(**e.model_dump(exclude={"id", "account"})) for e in ledger],
        payouts_by_token=dict(payouts),
        slashed=sum(e.amount for e in ledger if e.kind == "slash"),
    )


def settlements(session: Session) -> list[SettlementRow]:
    rows = session.exec(
        select(Bid, Request)
        .join(Request, Request.request_id == Bid.request_id)  # type: ignore[arg-type]
        .where(col(Bid.settled).is_(True))
        .order_by(col(Bid.request_id), col(Bid.bid_index))
    ).all()
    return [
        SettlementRow(
            request_id=bid.request_id, bid_index=bid.bid_index, bidder=bid.bidder,
            settlement_token=request.settlement_token, awarded_w=bid.awarded_w,
            price_per_kwh=bid.price_per_kwh, clearing_price=request.clearing_price,
            delivered_wh=bid.delivered_wh, utilization=bid.utilization,
            availability=bid.availability, fee=bid.fee, payout=bid.payout, slashed=bid.slashed,
            settled_at=request.closed_at,
        )
        for bid, request in rows
    ]  # fmt: skip
