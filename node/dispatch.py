"""Dispatch: acting on the devices when the node is awarded, and a durable log of it.

Command layer. `CommandedDevice` wraps a device (`node.devices.DeviceAdapter`) and a
schedule of `Command`s (device, window, direction, power). Its meter is what the device
reads with the commands in effect: a simulated model computes that per minute as a pure
function of (seed, time, schedule), so re-reading an interval gives the same Wh and a
restart that reloads the schedule reproduces the history; a real meter reads what the site
did. The effect of a command is the device model's own (`node.devices.<kind>`), as is the
reason it cannot carry one out (`DeviceAdapter.refusal`).

`DispatchController` takes `DispatchOrder`s (from awarded commitments), and on each `tick`
commands the devices whose window started (after checking they can deliver: a car plugged
in and charging, a battery above its reserve, ...) and marks windows that ended as restored.
Everything goes to SQLite in the node database: `dispatch_orders` (the schedule and its
state, reloaded on open so the devices' meters stay the same across restarts) and
`dispatch_log` (what was commanded, when, the expected effect in Wh, or why nothing was).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from gridflex.rules.types import DeviceKind, Direction
from node.devices.base import BoundarySampler, ComfortBand, Command, DeviceAdapter, Schedule
from node.strategy import Commitment, _transaction

INCREASE = Direction.INCREASE_CONSUMPTION


@dataclass(frozen=True)
class DispatchOrder:
    """An awarded commitment with the request's direction."""

    request_id: int
    device_id: int
    direction: Direction
    power_w: int
    window_start: int
    window_end: int

    @classmethod
    def from_commitment(cls, commitment: Commitment, direction: Direction) -> DispatchOrder:
        return cls(commitment.request_id, commitment.device_id, direction,
                   commitment.power_w, commitment.window_start, commitment.window_end)  # fmt: skip


@dataclass(frozen=True)
class LogEntry:
    at: int
    request_id: int
    device_id: int
    action: str  # commanded | restored | undeliverable | missed
    direction: Direction
    power_w: int
    window_start: int
    window_end: int
    expected_wh: int | None  # commanded: metered minus baseline over the window (- = less)
    committed_wh: int
    reason: str | None


# ─── Command layer ───────────────────────────────────────────────────────────────────────


class CommandedDevice:
    """A device whose meter shows what it does under its schedule of commands."""

    def __init__(
        self,
        device: DeviceAdapter,
        *,
        comfort_min_c: float = 18.0,
        comfort_max_c: float = 26.0,
    ) -> None:
        self.device = device
        self.comfort_min_c = comfort_min_c
        self.comfort_max_c = comfort_max_c
        self._commands: list[Command] = []

    @property
    def kind(self) -> DeviceKind:
        return self.device.kind

    @property
    def capacity_w(self) -> int:
        return self.device.capacity_w

    @property
    def comfort(self) -> ComfortBand:
        return ComfortBand(self.comfort_min_c, self.comfort_max_c)

    @property
    def commands(self) -> tuple[Command, ...]:
        return tuple(self._commands)

    def apply(self, command: Command) -> None:
        if command.start % 60 or command.end % 60 or command.end <= command.start:
            raise ValueError("commands cover whole minutes")
        if command not in self._commands:
            self._commands.append(command)
            self._commands.sort(key=lambda c: (c.start, c.request_id, c.end))

    def refusal(self, command: Command) -> str | None:
        return self.device.refusal(command)

    def schedule(self, commands: Iterable[Command] | None = None) -> Schedule:
        """`commands` (default: the applied ones) within this device's comfort band."""
        pool = self._commands if commands is None else commands
        return Schedule(tuple(pool), self.comfort)

    def day_power_w(self, day: int) -> np.ndarray:
        """Per-minute metered power of `day` under the schedule (simulated devices)."""
        return self.device.day_power_w(day, self.schedule())  # type: ignore[attr-defined]

    def power_w(self, at: int) -> float:
        return self.device.power_w(at, self.schedule())

    def read_interval_energy_wh(
        self, interval_start: int, interval_seconds: int, commands: Iterable[Command] | None = None
    ) -> int:
        """What the meter shows under `commands` (default: the schedule)."""
        return self.device.read_interval_energy_wh(
            interval_start, interval_seconds, self.schedule(commands)
        )

    def sample_boundary(self, boundary: int) -> None:
        """Samples an accumulator meter at `boundary` (a simulated device needs none)."""
        if isinstance(self.device, BoundarySampler):
            self.device.sample_boundary(boundary)


# ─── Controller and durable log ──────────────────────────────────────────────────────────

DISPATCH_SCHEMA = """
CREATE TABLE IF NOT EXISTS dispatch_orders (
    request_id TEXT NOT NULL,              -- uint256 as decimal text
    device_id TEXT NOT NULL,
    direction INTEGER NOT NULL,            -- 0 reduce, 1 increase consumption
    power_w INTEGER NOT NULL,
    window_start INTEGER NOT NULL,
    window_end INTEGER NOT NULL,
    state TEXT NOT NULL,                   -- pending | active | done | undeliverable | missed
    command_start INTEGER,                 -- when the command took effect (active, done)
    PRIMARY KEY (request_id, device_id)
);
CREATE TABLE IF NOT EXISTS dispatch_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,                   -- unix s of the action
    request_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    action TEXT NOT NULL,                  -- commanded | restored | undeliverable | missed
    direction INTEGER NOT NULL,
    power_w INTEGER NOT NULL,
    window_start INTEGER NOT NULL,
    window_end INTEGER NOT NULL,
    expected_wh INTEGER,                   -- metered minus baseline over the window
    committed_wh INTEGER NOT NULL,         -- power_w x window, signed like expected_wh
    reason TEXT
);
"""


def _ceil_minute(t: int) -> int:
    return -(-t // 60) * 60


class DispatchController:
    """Commands the devices for awarded orders at window start, restores them at window
    end, and logs both (or why a device cannot deliver) in the node database. Writes join
    the caller's open transaction (e.g. the chain watcher's handler) when there is one."""

    def __init__(self, db: sqlite3.Connection, devices: Mapping[int, CommandedDevice]) -> None:
        self.db = db
        self.devices = devices
        self.db.executescript(DISPATCH_SCHEMA)
        rows = self.db.execute(
            "SELECT request_id, device_id, direction, power_w, command_start, window_end "
            "FROM dispatch_orders WHERE state IN ('active', 'done')"
        ).fetchall()
        for rid, did, direction, power_w, start, end in rows:
            device = self.devices.get(int(did))
            if device is not None:
                device.apply(Command(int(rid), int(did), Direction(direction), power_w, start, end))

    def schedule(self, orders: Iterable[DispatchOrder]) -> None:
        """Adds awarded orders (an order already known is left as it is)."""
        with _transaction(self.db):
            self.db.executemany(
                "INSERT OR IGNORE INTO dispatch_orders VALUES (?, ?, ?, ?, ?, ?, 'pending', NULL)",
                [(str(o.request_id), str(o.device_id), int(o.direction), o.power_w,
                  o.window_start, o.window_end) for o in orders],
            )  # fmt: skip

    def tick(self, now: int) -> list[LogEntry]:
        """Starts the windows that began by `now`, restores those that ended; returns what
        was logged."""
        logged: list[LogEntry] = []
        with _transaction(self.db):
            rows = self.db.execute(
                "SELECT request_id, device_id, direction, power_w, window_start, window_end, "
                "state FROM dispatch_orders WHERE state IN ('pending', 'active') "
                "AND window_start <= ? ORDER BY window_start, CAST(request_id AS INTEGER), "
                "CAST(device_id AS INTEGER)",
                (now,),
            ).fetchall()
            for rid, did, direction, power_w, start, end, state in rows:
                order = DispatchOrder(int(rid), int(did), Direction(direction), power_w, start, end)
                if state == "pending":
                    logged.append(self._start(order, now))
                    state = self._state(order)
                if state == "active" and end <= now:
                    logged.append(self._restore(order, now))
        return logged

    def _state(self, order: DispatchOrder) -> str:
        return self.db.execute(
            "SELECT state FROM dispatch_orders WHERE request_id = ? AND device_id = ?",
            (str(order.request_id), str(order.device_id)),
        ).fetchone()[0]

    def _set_state(self, order: DispatchOrder, state: str, command_start: int | None) -> None:
        self.db.execute(
            "UPDATE dispatch_orders SET state = ?, command_start = COALESCE(?, command_start) "
            "WHERE request_id = ? AND device_id = ?",
            (state, command_start, str(order.request_id), str(order.device_id)),
        )

    def _start(self, order: DispatchOrder, now: int) -> LogEntry:
        start = _ceil_minute(max(order.window_start, now))
        end = order.window_end - order.window_end % 60
        if start >= end:
            self._set_state(order, "missed", None)
            return self._log(now, order, "missed", None, "window over before the node acted")
        device = self.devices.get(order.device_id)
        if device is None:
            self._set_state(order, "undeliverable", None)
            return self._log(now, order, "undeliverable", None, "unknown device")
        command = Command(order.request_id, order.device_id, order.direction, order.power_w,
                          start, end)  # fmt: skip
        reason = device.refusal(command)
        expected = None
        if reason is None:
            with_command = [*device.commands, command]
            expected = device.read_interval_energy_wh(
                start, end - start, with_command
            ) - device.read_interval_energy_wh(start, end - start)
            if expected == 0 or (expected > 0) != (order.direction == INCREASE):
                reason = "the device's state gives no effect in this direction"
        if reason is not None:
            self._set_state(order, "undeliverable", None)
            return self._log(now, order, "undeliverable", None, reason)
        device.apply(command)
        self._set_state(order, "active", start)
        committed = abs(self._committed_wh(order))
        partial = (
            f"partial: {abs(expected)} of {committed} Wh within the device's limits"
            if abs(expected) < committed * 0.95
            else None
        )
        return self._log(now, order, "commanded", expected, partial)

    def _restore(self, order: DispatchOrder, now: int) -> LogEntry:
        self._set_state(order, "done", None)
        return self._log(now, order, "restored", None, None)

    @staticmethod
    def _committed_wh(order: DispatchOrder) -> int:
        wh = order.power_w * (order.window_end - order.window_start) // 3600
        return wh if order.direction == INCREASE else -wh

    def _log(
        self, now: int, order: DispatchOrder, action: str, expected: int | None, reason: str | None
    ) -> LogEntry:
        entry = LogEntry(now, order.request_id, order.device_id, action, order.direction,
                         order.power_w, order.window_start, order.window_end, expected,
                         self._committed_wh(order), reason)  # fmt: skip
        self.db.execute(
            "INSERT INTO dispatch_log (at, request_id, device_id, action, direction, power_w, "
            "window_start, window_end, expected_wh, committed_wh, reason) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (now, str(order.request_id), str(order.device_id), action, int(order.direction),
             order.power_w, order.window_start, order.window_end, expected,
             entry.committed_wh, reason),
        )  # fmt: skip
        return entry

    def log(self, request_id: int | None = None) -> list[LogEntry]:
        query = (
            "SELECT at, request_id, device_id, action, direction, power_w, window_start, "
            "window_end, expected_wh, committed_wh, reason FROM dispatch_log"
        )
        args: tuple[str, ...] = ()
        if request_id is not None:
            query += " WHERE request_id = ?"
            args = (str(request_id),)
        rows = self.db.execute(query + " ORDER BY id", args).fetchall()
        return [
            LogEntry(at, int(r), int(d), a, Direction(dr), p, s, e, x, c, why)
            for at, r, d, a, dr, p, s, e, x, c, why in rows
        ]
