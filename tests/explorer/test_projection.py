"""The projection on its own, from hand-made events: a report voided by a fraud proof and
posted again settles on the second round; a cancelled request refunds its operator;
replaying the stored events gives the same tables."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from explorer.models import Bid, BidDevice, ChainEvent, Challenge, LedgerEntry, Report, Request
from explorer.projection import apply_event, rebuild_projections

OPERATOR, BIDDER, ORACLE = "0x" + "a" * 40, "0x" + "b" * 40, "0x" + "c" * 40
TOKEN, ZONE = "0x" + "d" * 40, "0x" + "e" * 64


class Chain:
    """Stores and folds events in order, one per block."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.block = 0

    def emit(self, contract: str, name: str, **args: Any) -> None:
        self.block += 1
        event = ChainEvent(
            block_number=self.block, block_hash=f"0x{self.block:064x}", log_index=0,
            tx_hash=f"0x{self.block:064x}", timestamp=1_000 * self.block, contract=contract,
            name=name, args=json.dumps(args),
        )  # fmt: skip
        self.session.add(event)
        apply_event(self.session, event)

    def request(self, request_id: int) -> None:
        params = {
            "zone": ZONE, "direction": 0, "powerW": 10_000, "windowStart": 900_000,
            "windowEnd": 903_600, "intervalSeconds": 900, "priceCapPerKWh": 10**17,
            "availabilityPricePerKWh": 0, "gateClosure": 898_200, "baselineMethod": 0,
            "pricingRule": 1, "settlementToken": TOKEN,
        }  # fmt: skip
        self.emit("FlexMarket", "RequestCreated", requestId=request_id, operator=OPERATOR,
                  zone=ZONE, params=params, escrow=10**18)  # fmt: skip


def _report(chain: Chain, round_: int, root: str) -> None:
    chain.emit("FlexMarket", "ReportSubmitted", requestId=1, round=round_,
               report={"devicesRoot": root, "readingsRoot": root}, deliveredWh=[9_000],
               signerBitmap=1, disputeEndsAt=5_000_000)  # fmt: skip


def test_voided_report_then_second_round_settles(engine: Engine) -> None:
    with Session(engine) as session:
        chain = Chain(session)
        chain.emit("OracleCommittee", "OracleAdded", oracle=ORACLE, id=1, bond=10**21)
        chain.request(1)
        chain.emit("FlexMarket", "BidPlaced", requestId=1, bidIndex=0, bidder=BIDDER,
                   powerW=10_000, pricePerKWh=10**17, bond=10**19, deviceIds=[4, 5])  # fmt: skip
        chain.emit("FlexMarket", "Awarded", requestId=1, bidIndex=0, bidder=BIDDER,
                   awardedW=10_000, pricePerKWh=10**17)  # fmt: skip
        chain.emit("FlexMarket", "RequestCleared", requestId=1, awardedW=10_000,
                   clearingPrice=10**17, acceptedBids=1)  # fmt: skip
        _report(chain, 0, "0x01")
        chain.emit("DisputeResolver", "ChallengeOpened", challengeId=1, requestId=1,
                   deviceId=4, round=0, intervalStart=900_000, usedEnergyWh=10,
                   signedEnergyWh=20, challenger=BIDDER, responseDeadline=0,
                   disputeEndsAt=0)  # fmt: skip
        chain.emit("DisputeResolver", "ChallengeResolved", challengeId=1, requestId=1,
                   round=0, challenger=BIDDER, slashedTotal=10**20)  # fmt: skip
        chain.emit("FlexMarket", "ReportVoided", requestId=1, round=0, signerBitmap=1)
        assert session.get(Request, 1).status == "cleared"  # type: ignore[union-attr]
        _report(chain, 1, "0x02")
        chain.emit("FlexMarket", "BidSettled", requestId=1, bidIndex=0, bidder=BIDDER,
                   deliveredWh=9_000, utilization=9 * 10**17, availability=0, fee=9 * 10**15,
                   slashed=0)  # fmt: skip
        chain.emit("FlexMarket", "RequestSettled", requestId=1, payouts=891 * 10**15,
                   fees=9 * 10**15, refund=10**17, slashed=0)  # fmt: skip
        chain.request(2)
        chain.emit("FlexMarket", "RequestCancelled", requestId=2, refund=10**18)
        session.commit()

        def tables() -> tuple[object, ...]:
            return (
                [r.model_dump() for r in session.exec(select(Request)).all()],
                [r.model_dump() for r in session.exec(select(Report)).all()],
                [c.model_dump() for c in session.exec(select(Challenge)).all()],
                sorted((e.account, e.kind, e.amount) for e in session.exec(select(LedgerEntry))),
            )

        settled, cancelled = session.get(Request, 1), session.get(Request, 2)
        assert settled is not None and cancelled is not None
        assert (settled.status, settled.report_round, settled.delivered_wh) == ("settled", 1, 9_000)
        assert settled.payouts + settled.fees + settled.refund == settled.escrow
        reports = {r.round: r for r in session.exec(select(Report)).all()}
        assert reports[0].voided and not reports[1].voided
        assert json.loads(reports[1].signers) == [ORACLE]
        assert session.get(Challenge, 1).status == "resolved"  # type: ignore[union-attr]
        assert (cancelled.status, cancelled.refund) == ("cancelled", 10**18)
        before = tables()
        rebuild_projections(session)
        session.commit()
        assert tables() == before


def test_displaced_bid_leaves_its_slot_to_the_displacing_one(engine: Engine) -> None:
    """Issue 12 finding 6: `BidDisplaced` then `BidPlaced` on the same slot; the explorer
    shows the bid that holds the slot (not a duplicate key), its devices, and the placement
    sequence that orders the merit chart; a rebuild from the events gives the same rows."""
    rival = "0x" + "cd" * 20
    with Session(engine) as session:
        chain = Chain(session)
        chain.request(1)
        chain.emit("FlexMarket", "BidPlaced", requestId=1, bidIndex=0, bidder=BIDDER,
                   powerW=10_000, pricePerKWh=2 * 10**17, bond=10**19, deviceIds=[4])  # fmt: skip
        chain.emit("FlexMarket", "BidPlaced", requestId=1, bidIndex=1, bidder=OPERATOR,
                   powerW=10_000, pricePerKWh=10**17, bond=10**19, deviceIds=[6])  # fmt: skip
        chain.emit("FlexMarket", "BidDisplaced", requestId=1, bidIndex=0, bidder=BIDDER,
                   byBidder=rival)  # fmt: skip
        chain.emit("FlexMarket", "BidPlaced", requestId=1, bidIndex=0, bidder=rival,
                   powerW=5_000, pricePerKWh=10**17, bond=5 * 10**18, deviceIds=[7])  # fmt: skip
        session.commit()

        def rows() -> tuple[object, ...]:
            bids = session.exec(select(Bid).order_by(col(Bid.bid_index))).all()
            devices = session.exec(select(BidDevice)).all()
            return (
                [(b.bid_index, b.bidder, b.sequence) for b in bids],
                sorted((d.bid_index, d.device_id) for d in devices),
                session.get(Request, 1).bid_count,  # type: ignore[union-attr]
            )

        assert rows() == ([(0, rival, 2), (1, OPERATOR, 1)], [(0, 7), (1, 6)], 2)
        before = rows()
        rebuild_projections(session)
        session.commit()
        assert rows() == before
