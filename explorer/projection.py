"""The chain tables as functions of `chain_events`: `apply_event` folds one event into
them, `rebuild_projections` recomputes them all from the stored events (after a reorg).
The fold only sets values the event states (status, amounts, awards); the few running
counts (bid count) are recomputed from the rows, so replaying never double counts. A
`BidDisplaced` removes the displaced bid's rows; the `BidPlaced` that follows in the same
transaction fills the slot, with the next placement `sequence`."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from explorer.models import (
    PROJECTION_TABLES,
    Bid,
    BidDevice,
    ChainEvent,
    Challenge,
    Device,
    LedgerEntry,
    Oracle,
    Report,
    Request,
)

FLEX = "FLEX"
"""Ledger token of stake moves (the FlexToken)."""

Handler = Callable[[Session, ChainEvent, dict[str, Any]], None]
HANDLERS: dict[tuple[str, str], Handler] = {}


def handles(contract: str, name: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        HANDLERS[(contract, name)] = handler
        return handler

    return register


def apply_event(session: Session, event: ChainEvent) -> None:
    handler = HANDLERS.get((event.contract, event.name))
    if handler is not None:
        handler(session, event, json.loads(event.args))
        session.flush()


def rebuild_projections(session: Session) -> None:
    for table in PROJECTION_TABLES:
        session.exec(delete(table))  # type: ignore[call-overload]
    events = session.exec(
        select(ChainEvent).order_by(col(ChainEvent.block_number), col(ChainEvent.log_index))
    ).all()
    for event in events:
        apply_event(session, event)


def _ledger(
    session: Session,
    event: ChainEvent,
    account: str,
    kind: str,
    amount: int,
    token: str,
    *,
    counterparty: str = "",
    request_id: int | None = None,
) -> None:
    session.add(
        LedgerEntry(
            account=account, kind=kind, amount=amount, token=token, counterparty=counterparty,
            request_id=request_id, timestamp=event.timestamp, block_number=event.block_number,
            tx_hash=event.tx_hash,
        )
    )  # fmt: skip


def _request(session: Session, request_id: int) -> Request:
    request = session.get(Request, request_id)
    if request is None:
        raise LookupError(f"event for unknown request {request_id}")
    return request


# ─── DeviceRegistry ───────────────────────────────────────────────────────────────────


@handles("DeviceRegistry", "DeviceRegistered")
def _device_registered(session: Session, event: ChainEvent, a: dict[str, Any]) -> None:
    session.add(
        Device(
            device_id=a["deviceId"], owner=a["owner"], kind=a["kind"], capacity_w=a["capacityW"],
            zone=a["zone"], key_type=a["keyType"], key_x=a["keyX"], key_y=a["keyY"],
            registered_at=event.timestamp,
        )
    )  # fmt: skip


@handles("DeviceRegistry", "DeviceUpdated")
def _device_updated(session: Session, event: ChainEvent, a: dict[str, Any]) -> None:
    device = session.get(Device, a["deviceId"])
    if device is not None:
        device.zone, device.capacity_w = a["zone"], a["capacityW"]


@handles("DeviceRegistry", "DeviceKeyRotated")
def _device_key(session: Session, event: ChainEvent, a: dict[str, Any]) -> None:
    device = session.get(Device, a["deviceId"])
    if device is not None:
        device.key_type, device.key_x, device.key_y = a["keyType"], a["keyX"], a["keyY"]


@handles("DeviceRegistry", "DeviceActiveChanged")
def _device_active(session: Session, event: ChainEvent, a: dict[str, Any]) -> None:
    device = session.get(Device, a["deviceId"])
    if device is not None:
        device.active = bool(a["active"])


@handles("DeviceRegistry", "DeviceTransferred")
def _device_transferred(session: Session, event: ChainEvent, a: dict[str, Any]) -> None:
    device = session.get(Device, a["deviceId"])
    if device is not None:
        device.owner = a["to"]


# ─── FlexMarket ───────────────────────────────────────────────────────────────────────


@handles("FlexMarket", "RequestCreated")
def _request_created(session: Session, event: ChainEvent, a: dict[str, Any]) -> None:
    p = a["params"]
    session.add(
        Request(
            request_id=a["requestId"], operator=a["operator"], zone=a["zone"],
            direction=p["direction"], power_w=p["powerW"], window_start=p["windowStart"],
            window_end=p["windowEnd"], interval_seconds=p["intervalSeconds"],
            price_cap_per_kwh=p["priceCapPerKWh"],
            availability_price_per_kwh=p["availabilityPricePerKWh"],
            gate_closure=p["gateClosure"], baseline_method=p["baselineMethod"],
            pricing_rule=p["pricingRule"], settlement_token=p["settlementToken"],
            escrow=a["escrow"], created_at=event.timestamp,
        )
    )  # fmt: skip


def _request_closed(status: str) -> Handler:
    """A cancelled or expired request: the whole escrow goes back to the operator."""

    def handler(session: Session, event: ChainEvent, a: dict[str, Any]) -> None:
        request = _request(session, a["requestId"])
        request.status, request.refund, request.closed_at = status, a["refund"], event.timestamp
        _ledger(session, event, request.operator, "refund", a["refund"],
                request.settlement_token, request_id=request.request_id)  # fmt: skip

    return handler


handles("FlexMarket", "RequestCancelled")(_request_closed("cancelled"))
handles("FlexMarket", "RequestExpired")(_request_closed("expired"))


@handles("FlexMarket", "BidPlaced")
def _bid_placed(session: Session, event: ChainEvent, a: dict[str, Any]) -> None:
    request = _request(session, a["requestId"])
    session.add(
        Bid(
            request_id=a["requestId"], bid_index=a["bidIndex"], bidder=a["bidder"],
            power_w=a["powerW"], price_per_kwh=a["pricePerKWh"], bond=a["bond"],
            device_ids=json.dumps(a["deviceIds"]), placed_at=event.timestamp,
            sequence=request.bids_placed,
        )
    )  # fmt: skip
    request.bids_placed += 1
    for device_id in a["deviceIds"]:
        session.add(
            BidDevice(request_id=a["requestId"], bid_index=a["bidIndex"], device_id=device_id)
        )
    session.flush()
    request.bid_count = session.exec(
        select(func.count()).select_from(Bid).where(Bid.request_id == request.request_id)
    ).one()


@handles("FlexMarket", "BidDisplaced")
def _bid_displaced(session: Session, event: ChainEvent, a: dict[str, Any]) -> None:
    request_id, bid_index = a["requestId"], a["bidIndex"]
    session.exec(
        delete(BidDevice).where(  # type: ignore[call-overload]
            (col(BidDevice.request_id) == request_id) & (col(BidDevice.bid_index) == bid_index)
        )
    )
    bid = session.get(Bid, (request_id, bid_index))
    if bid is not None:
        session.delete(bid)
    session.flush()
    request = _request(session, request_id)
    request.bid_count = session.exec(
        select(func.count()).select_from(Bid).where(Bid.request_id == request_id)
    ).one()


@handles("FlexMarket", "Awarded")
def _awarded(session: Session, event: ChainEvent, a: dict[str, Any]) -> None:
    bid = session.get(Bid, (a["requestId"], a["bidIndex"]))
    if bid is not None:
        bid.awarded_w = a["awardedW"]


@handles("FlexMarket", "RequestCleared")
def _cleared(session: Session, event: ChainEvent, a: dict[str, Any]) -> None:
    request = _request(session, a["requestId"])
    request.status = "cleared"
    request.awarded_w, request.clearing_price = a["awardedW"], a["clearingPrice"]
    request.accepted_bids = a["acceptedBids"]


@handles("FlexMarket", "ReportSubmitted")
def _report_submitted(session: Session, event: ChainEvent, a: dict[str, Any]) -> None:
    request = _request(session, a["requestId"])
    oracles = {o.oracle_id: o.address for o in session.exec(select(Oracle)).all()}
    bitmap = a["signerBitmap"]
    signers = [oracles.get(bit + 1, f"oracle #{bit + 1}") for bit in range(64) if bitmap >> bit & 1]
    report = a["report"]
    session.merge(
        Report(
            request_id=a["requestId"], round=a["round"], devices_root=report["devicesRoot"],
            readings_root=report["readingsRoot"], delivered_wh=json.dumps(a["deliveredWh"]),
            signer_bitmap=bitmap, signers=json.dumps(signers),
            dispute_ends_at=a["disputeEndsAt"], posted_at=event.timestamp,
            tx_hash=event.tx_hash,
        )
    )  # fmt: skip
    request.status, request.report_round = "reported", a["round"]
    request.dispute_ends_at = a["disputeEndsAt"]


@handles("FlexMarket", "ReportVoided")
def _report_voided(session: Session, event: ChainEvent, a: dict[str, Any]) -> None:
    report = session.get(Report, (a["requestId"], a["round"]))
    if report is not None:
        report.voided = True
    request = _request(session, a["requestId"])
    request.status, request.dispute_ends_at = "cleared", event.timestamp


@handles("FlexMarket", "DisputeExtended")
def _dispute_extended(session: Session, event: ChainEvent, a: dict[str, Any]) -> None:
    report = session.get(Report, (a["requestId"], a["round"]))
    if report is not None:
        report.dispute_ends_at = a["disputeEndsAt"]
    _request(session, a["requestId"]).dispute_ends_at = a["disputeEndsAt"]


@handles("FlexMarket", "BidSettled")
def _bid_settled(session: Session, event: ChainEvent, a: dict[str, Any]) -> None:
    bid = session.get(Bid, (a["requestId"], a["bidIndex"]))
    request = _request(session, a["requestId"])
    if bid is None:
        return
    bid.settled = True
    bid.delivered_wh, bid.utilization, bid.availability = (
        a["deliveredWh"], a["utilization"], a["availability"],
    )  # fmt: skip
    bid.fee, bid.slashed = a["fee"], a["slashed"]
    _ledger(session, event, bid.bidder, "payout", bid.payout, request.settlement_token,
            request_id=request.request_id)  # fmt: skip


@handles("FlexMarket", "RequestSettled")
def _request_settled(session: Session, event: ChainEvent, a: dict[str, Any]) -> None:
    request = _request(session, a["requestId"])
    request.status, request.closed_at = "settled", event.timestamp
    request.payouts, request.fees = a["payouts"], a["fees"]
    request.refund, request.slashed = a["refund"], a["slashed"]
    request.delivered_wh = sum(
        bid.delivered_wh
        for bid in session.exec(select(Bid).where(Bid.request_id == request.request_id)).all()
    )
    _ledger(session, event, request.operator, "refund", a["refund"], request.settlement_token,
            request_id=request.request_id)  # fmt: skip


@handles("FlexMarket", "Withdrawn")
def _market_withdrawn(session: Session, event: ChainEvent, a: dict[str, Any]) -> None:
    _ledger(session, event, a["account"], "withdrawal", a["amount"], a["token"])


# ─── Staking ──────────────────────────────────────────────────────────────────────────


def _stake_move(kind: str, account_arg: str = "account") -> Handler:
    def handler(session: Session, event: ChainEvent, a: dict[str, Any]) -> None:
        _ledger(session, event, a[account_arg], kind, a["amount"], FLEX,
                counterparty=a.get("by", ""))  # fmt: skip

    return handler


for _name, _kind in (
    ("Staked", "stake"),
    ("UnstakeRequested", "unstake"),
    ("Withdrawn", "unstake-withdrawal"),
    ("StakeLocked", "lock"),
    ("StakeUnlocked", "unlock"),
    ("Slashed", "slash"),
):
    handles("Staking", _name)(_stake_move(_kind))


# ─── OracleCommittee and DisputeResolver ──────────────────────────────────────────────


@handles("OracleCommittee", "OracleAdded")
def _oracle_added(session: Session, event: ChainEvent, a: dict[str, Any]) -> None:
    session.merge(Oracle(oracle_id=a["id"], address=a["oracle"], active=True))


@handles("OracleCommittee", "OracleRemoved")
def _oracle_removed(session: Session, event: ChainEvent, a: dict[str, Any]) -> None:
    oracle = session.get(Oracle, a["id"])
    if oracle is not None:
        oracle.active = False


@handles("DisputeResolver", "ChallengeOpened")
def _challenge_opened(session: Session, event: ChainEvent, a: dict[str, Any]) -> None:
    session.add(
        Challenge(
            challenge_id=a["challengeId"], request_id=a["requestId"], round=a["round"],
            device_id=a["deviceId"], interval_start=a["intervalStart"],
            used_energy_wh=a["usedEnergyWh"], signed_energy_wh=a["signedEnergyWh"],
            challenger=a["challenger"],
        )
    )  # fmt: skip


@handles("DisputeResolver", "ChallengeRebutted")
def _challenge_rebutted(session: Session, event: ChainEvent, a: dict[str, Any]) -> None:
    challenge = session.get(Challenge, a["challengeId"])
    if challenge is not None:
        challenge.status = "rebutted"


@handles("DisputeResolver", "ChallengeResolved")
def _challenge_resolved(session: Session, event: ChainEvent, a: dict[str, Any]) -> None:
    challenge = session.get(Challenge, a["challengeId"])
    if challenge is not None:
        challenge.status = "resolved"


@handles("DisputeResolver", "ChallengeMooted")
def _challenge_mooted(session: Session, event: ChainEvent, a: dict[str, Any]) -> None:
    """Its round was voided by another challenge (or finalized): the bond came back."""
    challenge = session.get(Challenge, a["challengeId"])
    if challenge is not None:
        challenge.status = "moot"
