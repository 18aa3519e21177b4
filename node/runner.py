"""The node's one loop: watch and bid, dispatch the awards, attest what the meters show,
send it to the oracles.

Each `NodeRunner.tick()`:

1. polls the `ChainWatcher` (the `AutoBidder` is its handler) and bids on open requests;
2. turns every awarded bid into `DispatchOrder`s for the bid's devices, the awarded power
   split pro rata to the devices' capacities (as the oracle caps each device's delivery),
   and schedules them in the `DispatchController` (idempotent: orders already known stay);
   likewise for an awarded pool bid its devices back: each device's share of the pool's
   award (`gridflex.rules.pools.dispatch_shares`);
3. ticks dispatch at the current chain time (window start: command, window end: restore);
4. attests the completed intervals of the `CommandedDevice`s (whose meters show the
   commands) into the outbox, and sends a round to the oracles.

Restart-safe: the watcher cursor, open requests, own bids, commitments, dispatch orders and
the first attested interval live in the node database (`outbox.sqlite`, with the signed
units, where `gridflex node status` reads the commitments). A new
runner on the same directory resumes where the old one stopped (the dispatch controller
re-applies the active and done commands to the devices, so their meters read the same).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from gridflex.chain.protocol import Protocol
from gridflex.rules.attestation import meter_domain_separator
from gridflex.rules.pools import backing_devices, dispatch_shares
from gridflex.rules.types import Direction
from node.bidder import OwnBid, watch_and_bid
from node.dispatch import CommandedDevice, DispatchController, DispatchOrder, LogEntry
from node.keystore import DevicePrivateKey
from node.meter_loop import MeteredDevice, MeterLoop, floor_to_grid
from node.outbox import Outbox
from node.sender import Sender
from node.strategy import Commitment, DeviceStrategy, availability_for

log = structlog.get_logger(__name__)

RUNNER_SCHEMA = """
CREATE TABLE IF NOT EXISTS runner_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS scheduled_awards (
    request_id TEXT PRIMARY KEY
);
"""


@dataclass(frozen=True)
class NodeDevice:
    """A registered device as the runner drives it."""

    device_id: int
    commanded: CommandedDevice
    signing_key: DevicePrivateKey
    min_price_per_kwh: int = 0
    max_share_bps: int = 10_000

    def strategy(self) -> DeviceStrategy:
        return DeviceStrategy(
            self.device_id, self.commanded.kind, self.commanded.capacity_w,
            self.min_price_per_kwh, self.max_share_bps,
            availability_for(self.commanded.device),
        )  # fmt: skip


@dataclass(frozen=True)
class TickReport:
    now: int
    events: int | None
    bids_placed: int
    orders_scheduled: int
    dispatch: tuple[LogEntry, ...]
    units_signed: int


def pro_rata_orders(
    bid: OwnBid,
    capacities: dict[int, int],
    direction: Direction,
    window_start: int,
    window_end: int,
) -> list[DispatchOrder]:
    """The awarded power of `bid` split over its devices pro rata to capacity (floored)."""
    awarded = bid.awarded_w or 0
    total = sum(capacities[d] for d in bid.device_ids)
    if awarded <= 0 or total <= 0:
        return []
    orders = []
    for device_id in bid.device_ids:
        power = awarded * capacities[device_id] // total
        if power > 0:
            orders.append(
                DispatchOrder(bid.request_id, device_id, direction, power, window_start, window_end)
            )
    return orders


class NodeRunner:
    """Everything a node does, one `tick()` at a time (see the module docstring)."""

    def __init__(
        self,
        protocol: Protocol,
        devices: Sequence[NodeDevice],
        zone: bytes,
        data_dir: Path,
        rpc_url: str,
        oracles: Sequence[str],
        *,
        interval_seconds: int = 900,
        history_intervals: int = 4,
        price_fraction_bps: int = 8_000,
        db_name: str = "outbox.sqlite",
    ) -> None:
        self.protocol = protocol
        self.devices = list(devices)
        self.zone = zone
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.interval_seconds = interval_seconds
        self.watcher, self.bidder = watch_and_bid(
            self.data_dir / db_name, protocol, [d.strategy() for d in self.devices],
            zone, rpc_url, interval_seconds,
        )  # fmt: skip
        self.bidder.price_fraction_bps = price_fraction_bps
        self.db = self.watcher.db
        self.db.executescript(RUNNER_SCHEMA)
        self.dispatch = DispatchController(self.db, {d.device_id: d.commanded for d in devices})
        self.outbox = Outbox(self.data_dir / db_name, list(oracles))
        domain = meter_domain_separator(protocol.client.w3.eth.chain_id, protocol.registry.address)
        self.meter = MeterLoop(
            self.outbox,
            [MeteredDevice(d.device_id, d.commanded, d.signing_key) for d in self.devices],
            domain,
            interval_seconds=interval_seconds,
        )
        self.sender = Sender(self.outbox)
        self.first_start = self._first_start(history_intervals)

    # ─── State ────────────────────────────────────────────────────────────────────────

    def chain_time(self) -> int:
        return int(self.protocol.client.w3.eth.get_block("latest")["timestamp"])

    def _first_start(self, history_intervals: int) -> int:
        row = self.db.execute("SELECT value FROM runner_meta WHERE key = 'first_start'").fetchone()
        if row is not None:
            return int(row[0])
        first = floor_to_grid(self.chain_time(), self.interval_seconds)
        first -= history_intervals * self.interval_seconds
        # No interval before a device's registration: the registry has no key for it then
        # (`deviceAt` reverts), so the oracles refuse such a reading and no dispute could
        # judge it. A longer history needs chain time past it first (the demo does that).
        first = max(first, self._first_interval_after_registration())
        self.db.execute("INSERT INTO runner_meta VALUES ('first_start', ?)", (str(first),))
        return first

    def _first_interval_after_registration(self) -> int:
        """First interval start at or after the latest registration of this node's devices
        (`epochAt(id, 0).since`)."""
        latest = max((self.protocol.registered_at(d.device_id) for d in self.devices), default=0)
        return -(-latest // self.interval_seconds) * self.interval_seconds

    def commitments(self) -> list[Commitment]:
        return self.bidder.commitments.all()

    def claimable(self) -> dict[str, int]:
        """What the owner can withdraw, per settlement token of the requests it won bids in."""
        tokens = {
            self.protocol.request(bid.request_id).settlement_token
            for bid in self.bidder.own_bids()
            if bid.awarded_w
        }
        return {token: self.protocol.claimable(token) for token in sorted(tokens)}

    def close(self) -> None:
        self.sender.close()
        self.outbox.close()
        self.watcher.close()

    # ─── The loop ─────────────────────────────────────────────────────────────────────

    def schedule_awards(self) -> int:
        """Dispatch orders for awarded bids not scheduled yet; returns how many."""
        capacities = {d.device_id: d.commanded.capacity_w for d in self.devices}
        done = {int(r) for (r,) in self.db.execute("SELECT request_id FROM scheduled_awards")}
        scheduled = 0
        for bid in self.bidder.own_bids():
            if bid.awarded_w is None or bid.request_id in done:
                continue
            orders: list[DispatchOrder] = []
            if bid.awarded_w > 0:
                request = self.protocol.request(bid.request_id)
                orders = pro_rata_orders(
                    bid, capacities, request.direction, request.window_start, request.window_end
                )
            self.dispatch.schedule(orders)
            self.db.execute(
                "INSERT OR IGNORE INTO scheduled_awards VALUES (?)", (str(bid.request_id),)
            )
            scheduled += len(orders)
            log.info("awards_scheduled", request_id=bid.request_id, orders=len(orders))
        return scheduled

    def schedule_pool_awards(self) -> int:
        """Dispatch orders for awarded pool bids backed by this node's devices: each device
        is asked for its share of the award, in proportion to capacity over all the pool's
        backing devices (`dispatch_shares`), never more than it can deliver."""
        rows = self.db.execute(
            "SELECT request_id, bid_index, awarded_w FROM foreign_awards WHERE scheduled = 0"
        ).fetchall()
        own = {d.device_id for d in self.devices}
        scheduled = 0
        for request_id, bid_index, awarded_w in rows:
            rid = int(request_id)
            pool_bid = self.protocol.pool_bid_of(rid, bid_index)
            orders: list[DispatchOrder] = []
            if pool_bid.pool_id and awarded_w > 0:
                request = self.protocol.request(rid)
                placed_at = self.protocol.bid_of(rid, bid_index).placed_at
                backing = backing_devices(
                    self.protocol.memberships(pool_bid.pool_id), pool_bid.pool_id,
                    request.zone, placed_at,
                )  # fmt: skip
                shares = dispatch_shares(awarded_w, backing)
                orders = [
                    DispatchOrder(rid, device_id, request.direction, shares[device_id],
                                  request.window_start, request.window_end)
                    for device_id in sorted(own & backing.keys()) if shares[device_id] > 0
                ]  # fmt: skip
                if orders:
                    log.info("pool_award_scheduled", request_id=rid, pool_id=pool_bid.pool_id,
                             orders=len(orders))  # fmt: skip
            self.dispatch.schedule(orders)
            self.db.execute(
                "UPDATE foreign_awards SET scheduled = 1 WHERE request_id = ? AND bid_index = ?",
                (request_id, bid_index),
            )
            scheduled += len(orders)
        return scheduled

    def tick(self, *, send: bool = True) -> TickReport:
        before = len(self.bidder.own_bids())
        events = self.bidder.poll_once(self.watcher)
        placed = len(self.bidder.own_bids()) - before
        scheduled = self.schedule_awards() + self.schedule_pool_awards()
        now = self.chain_time()
        logged = self.dispatch.tick(now)
        signed = self.meter.attest_completed(now, self.first_start)
        if send and self.outbox.oracles:
            self.sender.send_round()
        return TickReport(now, events, placed, scheduled, tuple(logged), signed)

    def drain(self, timeout_s: float = 30.0) -> None:
        """Sends until nothing is pending (or `timeout_s`)."""
        self.sender.drain(timeout_s=timeout_s)
