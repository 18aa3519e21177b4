"""Automatic bidding: the node's ChainWatcher handler plus the step that places bids.

`AutoBidder` is a `ChainWatcher` handler (`handler(event, db)`) that keeps, in the
watcher's database and inside the watcher's transaction (so together with the cursor):

- `open_requests`: requests created in the node's zone, with the node's metering interval
  length, that are still open (a request of another length is measured only from readings
  of its own length, which this node does not sign: it could deliver and still be measured
  as missing data, so it does not bid);
- `own_bids`: the bids this node placed (request, bid index, power, price, devices, award);
- `commitments` (`CommitmentStore`): the devices' committed power.

Devices enrolled in a pool bid only through it: `bid_open` leaves them out. Another
bidder's `Awarded` in the zone is kept in `foreign_awards`: if it is a pool bid backed by
this node's devices, `NodeRunner.schedule_pool_awards` dispatches their shares.

On `Awarded` for one of its own bids (bidder = owner and the recorded bid index) it keeps only
the awarded power (`CommitmentStore.release(request_id, keep_w=awarded)`); on
`BidDisplaced` of its own bid (a cheaper bid took its slot in a full request),
`RequestCleared` without an award for its bid, `RequestCancelled`, `RequestExpired` and
`RequestSettled` it releases the request's commitments. The market refuses a device in two
live bids with overlapping windows (`DeviceOvercommitted`); the commitments keep the node
from trying, and a refused bid is one `bid_failed` line and the request is skipped.

Bids are placed by `bid_open()` after each poll (`AutoBidder.poll_once(watcher)`), not inside
the handler: all requests created in a range are then known together, so `plan_bids` can
give contested capacity to the more valuable one instead of the first one seen. Each bid is
its own transaction: the bid is sent, then its row and commitments are committed. If the
node dies between the two, the next `bid_open()` finds the owner's bid on-chain (one bid
per bidder per request) and adopts it instead of bidding twice.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

import structlog

from gridflex.chain.protocol import Protocol
from gridflex.errors import TransactionReverted
from gridflex.errors_text import explain
from gridflex.rules.types import DEFAULT_INTERVAL_SECONDS, Direction
from node.chain_watch import (
    Awarded,
    BidDisplaced,
    ChainWatcher,
    MarketEvent,
    RequestCancelled,
    RequestCleared,
    RequestCreated,
    RequestExpired,
    RequestSettled,
)
from node.strategy import BidPlan, CommitmentStore, DeviceStrategy, OpenRequest, plan_bids

log = structlog.get_logger(__name__)

BIDDER_SCHEMA = """
CREATE TABLE IF NOT EXISTS open_requests (
    request_id TEXT PRIMARY KEY,           -- uint256 as decimal text
    zone BLOB NOT NULL,
    direction INTEGER NOT NULL,
    power_w INTEGER NOT NULL,
    window_start INTEGER NOT NULL,
    window_end INTEGER NOT NULL,
    price_cap_per_kwh TEXT NOT NULL,
    availability_price_per_kwh TEXT NOT NULL,
    gate_closure INTEGER NOT NULL,
    bid_state TEXT NOT NULL DEFAULT 'new'  -- new | bid | skipped
);
CREATE TABLE IF NOT EXISTS foreign_awards (  -- other bidders' awards in the zone: pool bids?
    request_id TEXT NOT NULL,
    bid_index INTEGER NOT NULL,
    awarded_w INTEGER NOT NULL,
    scheduled INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (request_id, bid_index)
);
CREATE TABLE IF NOT EXISTS own_bids (
    request_id TEXT PRIMARY KEY,
    bid_index INTEGER NOT NULL,
    power_w INTEGER NOT NULL,
    price_per_kwh TEXT NOT NULL,
    device_ids TEXT NOT NULL,              -- comma-separated
    awarded_w INTEGER                      -- NULL until cleared
);
"""


@dataclass(frozen=True)
class OwnBid:
    request_id: int
    bid_index: int
    power_w: int
    price_per_kwh: int
    device_ids: tuple[int, ...]
    awarded_w: int | None


class AutoBidder:
    """Bids for `protocol`'s account (the devices' owner) with `devices` in `zone`."""

    def __init__(
        self,
        protocol: Protocol,
        devices: Sequence[DeviceStrategy],
        zone: bytes,
        db: sqlite3.Connection,
        *,
        price_fraction_bps: int = 8_000,
        interval_seconds: int = DEFAULT_INTERVAL_SECONDS,
    ) -> None:
        self.protocol = protocol
        self.devices = list(devices)
        self.zone = zone
        self.db = db
        self.price_fraction_bps = price_fraction_bps
        self.interval_seconds = interval_seconds
        """The node's metering interval: only requests of this length are bid on."""
        self.db.executescript(BIDDER_SCHEMA)
        self.commitments = CommitmentStore(db)

    # ─── Handler ──────────────────────────────────────────────────────────────────────

    def __call__(self, event: MarketEvent, db: sqlite3.Connection) -> None:
        store = self.commitments if db is self.db else CommitmentStore(db)
        rid = str(event.request_id)
        if isinstance(event, RequestCreated):
            if event.zone == self.zone and event.interval_seconds != self.interval_seconds:
                log.info(
                    "request skipped: other interval length",
                    request_id=event.request_id,
                    request_interval_seconds=event.interval_seconds,
                    metering_interval_seconds=self.interval_seconds,
                )
            elif event.zone == self.zone:
                db.execute(
                    "INSERT OR IGNORE INTO open_requests VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'new')",
                    (
                        rid, event.zone, int(event.direction), event.power_w, event.window_start,
                        event.window_end, str(event.price_cap_per_kwh),
                        str(event.availability_price_per_kwh), event.gate_closure,
                    ),
                )  # fmt: skip
            return
        if isinstance(event, Awarded):
            own = self._own_bid(db, event.request_id)
            if (
                own is not None
                and own.bid_index == event.bid_index
                and event.bidder.lower() == self.protocol.address.lower()
            ):
                db.execute(
                    "UPDATE own_bids SET awarded_w = ? WHERE request_id = ?",
                    (event.awarded_w, rid),
                )
                store.release(event.request_id, keep_w=event.awarded_w)
                log.info("bid_awarded", request_id=event.request_id, awarded_w=event.awarded_w)
            elif (
                event.bidder.lower() != self.protocol.address.lower()
                and db.execute(
                    "SELECT 1 FROM open_requests WHERE request_id = ?", (rid,)
                ).fetchone()
            ):
                # Maybe a pool bid this node's devices back (NodeRunner.schedule_pool_awards).
                db.execute(
                    "INSERT OR IGNORE INTO foreign_awards VALUES (?, ?, ?, 0)",
                    (rid, event.bid_index, event.awarded_w),
                )
            return
        if isinstance(event, BidDisplaced):
            own = self._own_bid(db, event.request_id)
            if (
                own is not None
                and own.bid_index == event.bid_index
                and own.awarded_w is None
                and event.bidder.lower() == self.protocol.address.lower()
            ):
                db.execute("UPDATE own_bids SET awarded_w = 0 WHERE request_id = ?", (rid,))
                store.release(event.request_id)
                log.info("bid_displaced", request_id=event.request_id, by_bidder=event.by_bidder)
            return
        if isinstance(event, RequestCleared):
            db.execute("DELETE FROM open_requests WHERE request_id = ?", (rid,))
            own = self._own_bid(db, event.request_id)
            if own is not None and own.awarded_w is None:
                db.execute("UPDATE own_bids SET awarded_w = 0 WHERE request_id = ?", (rid,))
                store.release(event.request_id)
                log.info("bid_lost", request_id=event.request_id)
            return
        if isinstance(event, RequestCancelled | RequestExpired | RequestSettled):
            db.execute("DELETE FROM open_requests WHERE request_id = ?", (rid,))
            store.release(event.request_id)

    # ─── Bidding ──────────────────────────────────────────────────────────────────────

    def open_requests(self) -> list[OpenRequest]:
        rows = self.db.execute(
            "SELECT request_id, zone, direction, power_w, window_start, window_end, "
            "price_cap_per_kwh, availability_price_per_kwh, gate_closure FROM open_requests "
            "WHERE bid_state = 'new' ORDER BY CAST(request_id AS INTEGER)"
        ).fetchall()
        return [
            OpenRequest(int(r), bytes(z), Direction(d), p, s, e, int(c), int(a), g)
            for r, z, d, p, s, e, c, a, g in rows
        ]

    def own_bids(self) -> list[OwnBid]:
        rows = self.db.execute("SELECT request_id FROM own_bids").fetchall()
        bids = [self._own_bid(self.db, int(r)) for (r,) in rows]
        return sorted((b for b in bids if b is not None), key=lambda b: b.request_id)

    def _own_bid(self, db: sqlite3.Connection, request_id: int) -> OwnBid | None:
        row = db.execute(
            "SELECT bid_index, power_w, price_per_kwh, device_ids, awarded_w FROM own_bids "
            "WHERE request_id = ?",
            (str(request_id),),
        ).fetchone()
        if row is None:
            return None
        index, power, price, devices, awarded = row
        ids = tuple(int(d) for d in devices.split(",") if d)
        return OwnBid(request_id, index, power, int(price), ids, awarded)

    def _chain_bid_index(self, request_id: int) -> int | None:
        """The index of the owner's bid already on-chain for `request_id`, if any."""
        for offer in self.protocol.bids(request_id):
            if offer.bidder.lower() == self.protocol.address.lower():
                return int(offer.index)
        return None

    def bid_open(self) -> list[OwnBid]:
        """Plans over the open requests not yet bid on and places the bids; returns them."""
        now = int(self.protocol.client.w3.eth.get_block("latest")["timestamp"])
        requests = self.open_requests()
        if not requests:
            return []
        # A pooled device bids through its pool only (the market refuses it alone).
        devices = [d for d in self.devices if not self.protocol.is_pooled(d.device_id)]
        plans = plan_bids(
            requests, devices, self.commitments.all(),
            zone=self.zone, now=now, price_fraction_bps=self.price_fraction_bps,
        )  # fmt: skip
        placed = []
        for plan in plans:
            bid = self._place(plan)
            if bid is not None:
                placed.append(bid)
        return placed

    def _place(self, plan: BidPlan) -> OwnBid | None:
        rid = str(plan.request_id)
        index = self._chain_bid_index(plan.request_id)  # placed before a crash: adopt it
        if index is None:
            try:
                index = self.protocol.bid(
                    plan.request_id, plan.power_w, plan.price_per_kwh, list(plan.device_ids)
                )
            except TransactionReverted as error:
                log.warning("bid_failed", request_id=plan.request_id, error=explain(error))
                self.db.execute(
                    "UPDATE open_requests SET bid_state = 'skipped' WHERE request_id = ?", (rid,)
                )
                return None
        bid = OwnBid(
            plan.request_id, index, plan.power_w, plan.price_per_kwh,
            tuple(sorted(plan.device_ids)), None,
        )  # fmt: skip
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute(
                "INSERT INTO own_bids VALUES (?, ?, ?, ?, ?, NULL)",
                (rid, index, plan.power_w, str(plan.price_per_kwh),
                 ",".join(str(d) for d in bid.device_ids)),
            )  # fmt: skip
            self.commitments.add(plan.commitments)
            self.db.execute(
                "UPDATE open_requests SET bid_state = 'bid' WHERE request_id = ?", (rid,)
            )
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")
        log.info("bid_placed", request_id=plan.request_id, bid_index=index, power_w=plan.power_w)
        return bid

    def poll_once(self, watcher: ChainWatcher) -> int | None:
        """One watcher poll, then bids on whatever is open (only after a successful poll)."""
        handled = watcher.poll_once()
        if handled is not None:
            self.bid_open()
        return handled


def watch_and_bid(
    db_path: object,
    protocol: Protocol,
    devices: Sequence[DeviceStrategy],
    zone: bytes,
    rpc_url: str,
    interval_seconds: int = DEFAULT_INTERVAL_SECONDS,
    **watcher_options: object,
) -> tuple[ChainWatcher, AutoBidder]:
    """A ChainWatcher on `db_path` whose handler is an AutoBidder sharing its connection."""
    from pathlib import Path

    watcher = ChainWatcher(
        Path(str(db_path)), protocol.deployment, rpc_url, lambda event, db: None,
        **watcher_options,  # type: ignore[arg-type]
    )  # fmt: skip
    bidder = AutoBidder(protocol, devices, zone, watcher.db, interval_seconds=interval_seconds)
    watcher.handler = bidder
    return watcher, bidder
