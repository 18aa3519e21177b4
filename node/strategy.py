"""Bidding strategy: which open requests the node bids on, with which devices, at what price.

Per device (`DeviceStrategy`): a minimum price per kWh, the maximum share of its capacity
ever offered (basis points), and an availability model giving the power (W) the device can
deliver over a window in a direction (`AvailabilityModel`, built by `availability_for`
from the device model's own `available_w`: an EV charger only defers charging while a car
is plugged in, a battery works within its reserve and full mark, a heat pump within the
comfort band, PV only curtails, an industrial load only sheds; see `node.devices`).

The oracle caps each device's delivery at the bid's award pro rata to registered capacity
(`gridflex.rules.baselines.device_cap_wh`), so a bid is fully deliverable only if every device in
it can give its capacity share. `deliverable_split` therefore picks the devices (best offer
to capacity ratio first) that maximise the deliverable power and commits each to its
capacity share: an idle heat pump is left out rather than dragging the bid below threshold.

`plan_bids` is pure. Revenue stacking without double commitment: a device backs at most one
bid among requests whose windows overlap, as the market enforces (a second bid reverts
`DeviceOvercommitted`: each request's delivery is measured on its own, so a shared device
would be paid twice for one kWh); stacking means requests at different times. A device with
a commitment (existing or planned) overlapping a request's window is not offered in it; a
bid's commitments never exceed the devices' offer limits
(`capacity_w * max_share_bps / 10_000`, never the capacity); requests
are taken by value, highest first, where value = (price cap + availability price) x the
energy the node can offer in the window (kWh), so when two requests compete for the same
capacity the more valuable one gets it. Bid price = max(highest minimum price of the
devices in the bid, price cap x `price_fraction_bps` / 10_000); devices whose minimum
exceeds the cap are left out.

`CommitmentStore` keeps commitments in SQLite (table `commitments`), so a restart keeps
them; it can share the watcher's database and transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from gridflex.rules.types import DeviceKind, Direction
from node.devices.base import ComfortBand, DeviceAdapter

BPS = 10_000
AvailabilityModel = Callable[[int, int, Direction], int]
"""(window_start, window_end, direction) -> power (W) the device can deliver throughout."""


@dataclass(frozen=True)
class DeviceStrategy:
    device_id: int
    kind: DeviceKind
    capacity_w: int
    min_price_per_kwh: int = 0
    max_share_bps: int = BPS
    availability: AvailabilityModel | None = field(default=None, compare=False)

    @property
    def offer_limit_w(self) -> int:
        return self.capacity_w * min(max(self.max_share_bps, 0), BPS) // BPS

    def available_w(self, start: int, end: int, direction: Direction) -> int:
        if self.availability is None:
            return self.offer_limit_w
        return max(0, min(self.offer_limit_w, self.availability(start, end, direction)))


@dataclass(frozen=True)
class OpenRequest:
    """A request the node may bid on: in its zone, of its metering length, not cleared."""

    request_id: int
    zone: bytes
    direction: Direction
    power_w: int
    window_start: int
    window_end: int
    price_cap_per_kwh: int
    availability_price_per_kwh: int
    gate_closure: int


@dataclass(frozen=True)
class Commitment:
    """Power of one device held for one request's window, so that no overlapping request
    is offered it (kept until the request is lost, cancelled, expired or settled)."""

    request_id: int
    device_id: int
    power_w: int
    window_start: int
    window_end: int


@dataclass(frozen=True)
class BidPlan:
    """A bid `plan_bids` chose: its power and price, the devices behind it and their
    commitments, and `value` (what it can earn, by which requests were ranked)."""

    request_id: int
    power_w: int
    price_per_kwh: int
    device_ids: tuple[int, ...]
    commitments: tuple[Commitment, ...]
    value: int


def request_value(request: OpenRequest, power_w: int) -> int:
    """(price cap + availability price) x energy (kWh) of `power_w` over the window, in
    base units of the settlement token."""
    energy_wh = power_w * (request.window_end - request.window_start) // 3600
    return (request.price_cap_per_kwh + request.availability_price_per_kwh) * energy_wh // 1000


def peak_committed_w(
    commitments: Iterable[Commitment], device_id: int, start: int, end: int
) -> int:
    """The highest total power committed for `device_id` at any instant of [start, end)."""
    changes: list[tuple[int, int]] = []
    for c in commitments:
        if c.device_id == device_id and c.window_start < end and start < c.window_end:
            changes.append((max(c.window_start, start), c.power_w))
            changes.append((min(c.window_end, end), -c.power_w))
    peak = level = 0
    for _, delta in sorted(changes, key=lambda change: (change[0], change[1])):
        level += delta  # ends (negative) sort before starts at the same instant
        peak = max(peak, level)
    return peak


def overlaps_commitment(
    commitments: Iterable[Commitment], device_id: int, start: int, end: int
) -> bool:
    """Whether `device_id` backs a bid whose window overlaps [start, end) (even at 0 W kept:
    the market holds every device of a live bid)."""
    return any(
        c.device_id == device_id and c.window_start < end and start < c.window_end
        for c in commitments
    )


def plan_bids(
    requests: Sequence[OpenRequest],
    devices: Sequence[DeviceStrategy],
    commitments: Sequence[Commitment],
    *,
    zone: bytes,
    now: int,
    price_fraction_bps: int = 8_000,
    min_bid_w: int = 1,
) -> list[BidPlan]:
    """What to bid on among `requests` (see the module docstring). Requests outside `zone`,
    past their gate closure, or already holding a commitment of this node are skipped."""
    committed = list(commitments)
    taken = {c.request_id for c in committed}

    def offer(request: OpenRequest) -> list[tuple[DeviceStrategy, int]]:
        """Devices with free power for `request`, given what is committed so far."""
        offers = []
        for device in sorted(devices, key=lambda d: d.device_id):
            if device.min_price_per_kwh > request.price_cap_per_kwh:
                continue
            start, end = request.window_start, request.window_end
            if overlaps_commitment(committed, device.device_id, start, end):
                continue
            power = min(device.offer_limit_w, device.available_w(start, end, request.direction))
            if power > 0:
                offers.append((device, power))
        return offers

    eligible = [
        r
        for r in requests
        if r.zone == zone
        and r.request_id not in taken
        and now < r.gate_closure
        and r.window_start < r.window_end
        and r.power_w > 0
    ]
    # Rank once by what the node could earn with its free capacity before any new plan.
    ranked = sorted(
        eligible,
        key=lambda r: (
            -request_value(r, min(r.power_w, sum(p for _, p in offer(r)))),
            r.request_id,
        ),
    )
    plans: list[BidPlan] = []
    for request in ranked:
        chosen: list[Commitment] = []
        min_prices: list[int] = []
        for device, take in deliverable_split(offer(request), request.power_w):
            chosen.append(
                Commitment(request.request_id, device.device_id, take,
                           request.window_start, request.window_end)
            )  # fmt: skip
            min_prices.append(device.min_price_per_kwh)
        total = sum(c.power_w for c in chosen)
        if total < max(min_bid_w, 1):
            continue
        price = max(max(min_prices), request.price_cap_per_kwh * price_fraction_bps // BPS)
        price = min(price, request.price_cap_per_kwh)
        committed.extend(chosen)
        plans.append(
            BidPlan(
                request_id=request.request_id,
                power_w=total,
                price_per_kwh=price,
                device_ids=tuple(c.device_id for c in chosen),
                commitments=tuple(chosen),
                value=request_value(request, total),
            )
        )
    return plans


def deliverable_split(
    offers: Sequence[tuple[DeviceStrategy, int]], limit_w: int
) -> list[tuple[DeviceStrategy, int]]:
    """(device, committed W) for the bid: the device set whose capacity shares are all
    deliverable and whose total is largest (at most `limit_w`), each device committed to
    its share of that total pro rata to capacity (floored, so the sum never exceeds it)."""
    ranked = sorted(
        (o for o in offers if o[0].capacity_w > 0 and o[1] > 0),
        key=lambda o: (-o[1] / o[0].capacity_w, o[0].device_id),
    )
    best_count, best_w, capacity = 0, 0, 0
    for count, (device, power) in enumerate(ranked, 1):
        capacity += device.capacity_w  # this device has the lowest ratio so far
        deliverable = min(limit_w, capacity * power // device.capacity_w)
        if deliverable > best_w:
            best_count, best_w = count, deliverable
    chosen = sorted(ranked[:best_count], key=lambda o: o[0].device_id)
    total_capacity = sum(device.capacity_w for device, _ in chosen)
    split = [(device, best_w * device.capacity_w // total_capacity) for device, _ in chosen]
    return [(device, power) for device, power in split if power > 0]


# ─── Availability from the device models ─────────────────────────────────────────────────


def availability_for(
    device: DeviceAdapter, *, comfort_min_c: float = 18.0, comfort_max_c: float = 26.0
) -> AvailabilityModel:
    """The availability model of a device: what its own model says it can deliver
    (`DeviceAdapter.available_w`), heat pumps and air conditioning within the comfort band."""
    comfort = ComfortBand(comfort_min_c, comfort_max_c)
    return lambda start, end, direction: device.available_w(start, end, direction, comfort)


# ─── Durable commitments ──────────────────────────────────────────────────────────────────

COMMITMENTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS commitments (
    request_id TEXT NOT NULL,              -- uint256 as decimal text
    device_id TEXT NOT NULL,
    power_w INTEGER NOT NULL,
    window_start INTEGER NOT NULL,
    window_end INTEGER NOT NULL,
    PRIMARY KEY (request_id, device_id)
);
"""


class CommitmentStore:
    """Commitments in SQLite. Writes join the caller's transaction when one is open (e.g.
    the watcher's handler); otherwise each call commits on its own."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.db.executescript(COMMITMENTS_SCHEMA)

    def add(self, commitments: Iterable[Commitment]) -> None:
        rows = [
            (str(c.request_id), str(c.device_id), c.power_w, c.window_start, c.window_end)
            for c in commitments
        ]
        with _transaction(self.db):
            self.db.executemany("INSERT INTO commitments VALUES (?, ?, ?, ?, ?)", rows)

    def release(self, request_id: int, keep_w: int = 0) -> None:
        """Frees the devices of `request_id` (lost, cancelled, expired, settled). With
        `keep_w` > 0 (a partial award), keeps that much, taken device by device, and keeps
        every device's row (at 0 W if need be): the market holds all devices of an awarded
        bid until its request settles, so none of them may bid on an overlapping request."""
        awarded = keep_w > 0
        with _transaction(self.db):
            rows = self.db.execute(
                "SELECT device_id, power_w FROM commitments WHERE request_id = ? "
                "ORDER BY CAST(device_id AS INTEGER)",
                (str(request_id),),
            ).fetchall()
            for device_id, power_w in rows:
                kept = min(power_w, keep_w)
                keep_w -= kept
                if kept or awarded:
                    self.db.execute(
                        "UPDATE commitments SET power_w = ? WHERE request_id = ? AND device_id = ?",
                        (kept, str(request_id), device_id),
                    )
                else:
                    self.db.execute(
                        "DELETE FROM commitments WHERE request_id = ? AND device_id = ?",
                        (str(request_id), device_id),
                    )

    def all(self) -> list[Commitment]:
        rows = self.db.execute(
            "SELECT request_id, device_id, power_w, window_start, window_end FROM commitments "
            "ORDER BY window_start, CAST(request_id AS INTEGER), CAST(device_id AS INTEGER)"
        ).fetchall()
        return [Commitment(int(r), int(d), p, s, e) for r, d, p, s, e in rows]


class _transaction:
    """BEGIN/COMMIT unless the connection is already inside a transaction."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.own = False

    def __enter__(self) -> None:
        if not self.db.in_transaction:
            self.db.execute("BEGIN IMMEDIATE")
            self.own = True

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if self.own:
            self.db.execute("ROLLBACK" if exc_type else "COMMIT")
