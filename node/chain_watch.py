"""Follows the FlexMarket's events from the node's last processed block.

Events are read in block ranges (at most `max_range` blocks) up to a confirmed head
(`latest - confirmations`). For each range, the handler is called for every event in chain
order INSIDE one SQLite transaction that also advances the cursor (`chain_cursor`), so the
effects of a range and "this range is done" are committed together: a crash or restart
neither reprocesses nor misses an event. A handler error rolls the whole range back (the
cursor stays) and propagates; an RPC error (connection refused, timeout, bad answer) is
logged and retried with exponential backoff and full jitter, never raised out of `run`.

The handler receives `(event, db)`; `db` is the watcher's connection, inside the open
transaction, so it can write its effects (commitments, dispatch plans) atomically with the
cursor. The database may be the outbox file (`outbox.sqlite`) or a sibling.

Table: chain_cursor(market TEXT PRIMARY KEY, next_block INTEGER).
"""

from __future__ import annotations

import random
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from gridflex.chain.connect import connect
from gridflex.chain.decode import from_named
from gridflex.chain.deployments import Deployment
from gridflex.chain.logs import DeploymentLogs, LoggedEvent
from gridflex.chain.protocol import ReportSubmission, report_submission
from gridflex.rules.types import Direction

log = structlog.get_logger(__name__)

CURSOR_SCHEMA = """
CREATE TABLE IF NOT EXISTS chain_cursor (
    market TEXT PRIMARY KEY,
    next_block INTEGER NOT NULL            -- first block not yet processed
);
"""


@dataclass(frozen=True)
class EventMeta:
    block_number: int
    log_index: int
    tx_hash: str


@dataclass(frozen=True)
class RequestCreated:
    meta: EventMeta
    request_id: int
    operator: str
    zone: bytes
    direction: Direction
    power_w: int
    window_start: int
    window_end: int
    interval_seconds: int
    price_cap_per_kwh: int
    availability_price_per_kwh: int
    gate_closure: int
    baseline_method: int
    pricing_rule: int
    settlement_token: str
    escrow: int


@dataclass(frozen=True)
class Awarded:
    meta: EventMeta
    request_id: int
    bid_index: int
    bidder: str
    awarded_w: int
    price_per_kwh: int


@dataclass(frozen=True)
class BidDisplaced:
    """A full request took a cheaper bid: `bidder`'s bid in slot `bid_index` is gone (its
    bond released, its devices free), the slot now `by_bidder`'s."""

    meta: EventMeta
    request_id: int
    bid_index: int
    bidder: str
    by_bidder: str


@dataclass(frozen=True)
class RequestCleared:
    meta: EventMeta
    request_id: int
    awarded_w: int
    clearing_price: int
    accepted_bids: int


@dataclass(frozen=True)
class ReportSubmitted:
    meta: EventMeta
    report: ReportSubmission

    @property
    def request_id(self) -> int:
        return self.report.request_id


@dataclass(frozen=True)
class RequestSettled:
    meta: EventMeta
    request_id: int
    payouts: int
    fees: int
    refund: int
    slashed: int


@dataclass(frozen=True)
class RequestCancelled:
    meta: EventMeta
    request_id: int
    refund: int


@dataclass(frozen=True)
class RequestExpired:
    meta: EventMeta
    request_id: int
    refund: int


MarketEvent = (
    RequestCreated
    | Awarded
    | BidDisplaced
    | RequestCleared
    | ReportSubmitted
    | RequestSettled
    | RequestCancelled
    | RequestExpired
)
Handler = Callable[[MarketEvent, sqlite3.Connection], None]


EVENT_TYPES: dict[str, type[MarketEvent]] = {
    "RequestCreated": RequestCreated,
    "Awarded": Awarded,
    "BidDisplaced": BidDisplaced,
    "RequestCleared": RequestCleared,
    "ReportSubmitted": ReportSubmitted,
    "RequestSettled": RequestSettled,
    "RequestCancelled": RequestCancelled,
    "RequestExpired": RequestExpired,
}


def market_event(event: LoggedEvent) -> MarketEvent:
    """The node's view of a market event, decoded by ABI name (`ReportSubmitted` by the
    one decoding of posted reports, `gridflex.chain.protocol.report_submission`)."""
    meta = EventMeta(event.block_number, event.log_index, event.tx_hash)
    if event.name == "ReportSubmitted":
        return ReportSubmitted(meta, report_submission(event))
    args = dict(event.args)
    if event.name == "RequestCreated":
        args = {**args.pop("params"), **args}  # the params struct's members, flattened
    return from_named(EVENT_TYPES[event.name], args, meta=meta)


class ChainWatcher:
    """Durable follower of the market's events (see the module docstring)."""

    def __init__(
        self,
        db_path: Path,
        deployment: Deployment,
        rpc_url: str,
        handler: Handler,
        *,
        confirmations: int = 0,
        max_range: int = 2_000,
        backoff_base_s: float = 0.5,
        backoff_cap_s: float = 30.0,
        request_timeout_s: float = 10.0,
    ) -> None:
        self.deployment = deployment
        self.handler = handler
        self.confirmations = confirmations
        self.max_range = max_range
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.request_timeout_s = request_timeout_s
        self.failures = 0
        self.market_address = deployment.address_of("FlexMarket")
        self.use_rpc(rpc_url)
        Path(db_path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(CURSOR_SCHEMA)

    def use_rpc(self, rpc_url: str) -> None:
        """Switch to another RPC endpoint (e.g. a fallback); the cursor is unaffected."""
        self.rpc_url = rpc_url
        self._logs = DeploymentLogs(
            connect(rpc_url, self.request_timeout_s),
            self.deployment,
            contracts={"FlexMarket"},
            events=set(EVENT_TYPES),
        )

    def close(self) -> None:
        self.db.close()

    @property
    def next_block(self) -> int:
        """First block not yet processed (the deployment block before any progress)."""
        row = self.db.execute(
            "SELECT next_block FROM chain_cursor WHERE market = ?", (self.market_address,)
        ).fetchone()
        return self.deployment.deployed_at_block if row is None else int(row[0])

    # ─── One step ─────────────────────────────────────────────────────────────────────

    def _apply(self, events: list[MarketEvent], next_block: int) -> None:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for event in events:
                self.handler(event, self.db)
            self.db.execute(
                "INSERT INTO chain_cursor (market, next_block) VALUES (?, ?) "
                "ON CONFLICT (market) DO UPDATE SET next_block = excluded.next_block",
                (self.market_address, next_block),
            )
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _rpc_error(self, exc: Exception) -> None:
        self.failures += 1
        log.warning(
            "chain_watch_rpc_error", rpc=self.rpc_url, error=repr(exc), failures=self.failures
        )

    def poll_once(self) -> int | None:
        """Processes every confirmed block not yet processed, range by range. Returns the
        number of events handled, or None after an RPC error (ranges done before it stay
        done; `failures` counts consecutive errors for the backoff). Handler errors are not
        RPC errors: they roll their range back and propagate."""
        handled = 0
        try:
            head = self._logs.head() - self.confirmations
        except Exception as exc:  # any transport or JSON-RPC failure: retry later
            self._rpc_error(exc)
            return None
        start = self.next_block
        while start <= head:
            end = min(head, start + self.max_range - 1)
            try:
                logged = self._logs.fetch(start, end)
            except Exception as exc:
                self._rpc_error(exc)
                return None
            events = [market_event(event) for event in logged]
            self._apply(events, end + 1)
            handled += len(events)
            start = end + 1
        self.failures = 0
        return handled

    def backoff_s(self) -> float:
        """Full-jitter exponential backoff after `failures` consecutive RPC errors."""
        if self.failures == 0:
            return 0.0
        cap = min(self.backoff_cap_s, self.backoff_base_s * 2 ** min(self.failures - 1, 30))
        return random.uniform(0, cap)

    def run(self, stop: threading.Event, poll_interval_s: float = 2.0) -> None:
        """Polls until `stop` is set; RPC errors back off, they never end the loop."""
        while not stop.is_set():
            self.poll_once()
            stop.wait(self.backoff_s() if self.failures else poll_interval_s)
