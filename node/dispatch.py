"""Dispatch: acting on the devices when the node is awarded, and a durable log of it.

Command layer. `CommandedDevice` wraps a simulated model and a schedule of `Command`s
(device, window, direction, power). Its meter is the baseline model plus the effect of the
commands, computed per minute by a pure function of (seed, time, schedule), so re-reading an
interval gives the same Wh and a restart that reloads the schedule reproduces the history.
Effects per kind:

- Battery: reduce = discharge `power_w` more than planned, increase = charge more; never
  beyond its rated power and never below its reserve / above its full mark (the planned
  state of charge plus what the commands moved, with its efficiency).
- EV charger: reduce = charging slowed by up to `power_w` (paused at `power_w` >= its draw);
  it only delivers while a car is plugged in and charging. Increase is not possible.
- Heat pump / HVAC: the thermostat setpoint moves to the edge of the comfort band (minus
  the hysteresis) for the window, away from the load for reduce, toward it for increase;
  the building model is re-run with the shifted setpoint, so the recovery after the window
  (rebound) is metered too.
- Industrial load: reduce = a process shed, up to `power_w`, never below the base load.
  Increase is not possible.
- PV inverter: increase (less net export) = curtailment, up to `power_w` and the current
  production. Reduce is not possible.

Not modelled: the battery's later schedule after a dispatch (the day ends from its reserve
as planned) and the EV's deferred energy (the session is not extended).

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
from node.devices.simulated import (
    MINUTES_PER_DAY,
    SECONDS_PER_DAY,
    EVCharger,
    HomeBattery,
    IndustrialLoad,
    PVInverter,
    SimulatedDevice,
    ThermalDevice,
)
from node.strategy import Commitment, _transaction

REDUCE = Direction.REDUCE_CONSUMPTION
INCREASE = Direction.INCREASE_CONSUMPTION


@dataclass(frozen=True)
class Command:
    """Change the device's consumption by `power_w` over [start, end) (unix s, minutes)."""

    request_id: int
    device_id: int
    direction: Direction
    power_w: int
    start: int
    end: int


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


# ─── Command layer on the simulated devices ─────────────────────────────────────────────


def _minute_window(command: Command, day: int) -> tuple[int, int]:
    """The minutes of `day` covered by `command` (lo >= hi: none)."""
    day_start = day * SECONDS_PER_DAY
    lo = max(command.start - day_start, 0) // 60
    hi = min(command.end - day_start, SECONDS_PER_DAY) // 60
    return max(lo, 0), min(hi, MINUTES_PER_DAY)


class CommandedDevice:
    """A simulated device whose meter shows the baseline model plus its commands."""

    def __init__(
        self,
        device: SimulatedDevice,
        *,
        comfort_min_c: float = 18.0,
        comfort_max_c: float = 26.0,
    ) -> None:
        self.device = device
        self.comfort_min_c = comfort_min_c
        self.comfort_max_c = comfort_max_c
        self._commands: list[Command] = []
        self._cache: dict[tuple[int, tuple[Command, ...]], np.ndarray] = {}

    @property
    def kind(self) -> DeviceKind:
        return self.device.kind

    @property
    def capacity_w(self) -> int:
        return self.device.capacity_w

    @property
    def commands(self) -> tuple[Command, ...]:
        return tuple(self._commands)

    def apply(self, command: Command) -> None:
        if command.start % 60 or command.end % 60 or command.end <= command.start:
            raise ValueError("commands cover whole minutes")
        if command not in self._commands:
            self._commands.append(command)
            self._commands.sort(key=lambda c: (c.start, c.request_id, c.end))

    def day_power_w(self, day: int, commands: Iterable[Command] | None = None) -> np.ndarray:
        """Per-minute metered power of `day` under `commands` (default: the schedule)."""
        pool = self._commands if commands is None else commands
        todays = tuple(c for c in pool if _minute_window(c, day)[0] < _minute_window(c, day)[1])
        if not todays:
            return self.device.day_power_w(day)
        key = (day, todays)
        power = self._cache.get(key)
        if power is None:
            power = np.clip(self._commanded_day(day, todays), -self.capacity_w, self.capacity_w)
            power.setflags(write=False)
            if len(self._cache) > 64:
                self._cache.clear()
            self._cache[key] = power
        return power

    def power_w(self, at: int) -> float:
        day, second = divmod(at, SECONDS_PER_DAY)
        return float(self.day_power_w(day)[second // 60])

    def read_interval_energy_wh(
        self, interval_start: int, interval_seconds: int, commands: Iterable[Command] | None = None
    ) -> int:
        if interval_start % 60 or interval_seconds % 60 or interval_seconds <= 0:
            raise ValueError("simulated devices meter whole minutes")
        pool = None if commands is None else tuple(commands)
        total = 0.0
        minute, end_minute = interval_start // 60, (interval_start + interval_seconds) // 60
        while minute < end_minute:
            day, minute_of_day = divmod(minute, MINUTES_PER_DAY)
            stop = min(MINUTES_PER_DAY, minute_of_day + end_minute - minute)
            total += float(self.day_power_w(day, pool)[minute_of_day:stop].sum())
            minute += stop - minute_of_day
        return round(total / 60)

    # Effects ---------------------------------------------------------------------------

    def _commanded_day(self, day: int, commands: tuple[Command, ...]) -> np.ndarray:
        device = self.device
        if isinstance(device, ThermalDevice):
            return self._thermal_day(device, day, commands)
        power = np.array(device.day_power_w(day), dtype=float)
        if isinstance(device, HomeBattery):
            return self._battery_day(device, day, power, commands)
        for command in commands:
            lo, hi = _minute_window(command, day)
            window = power[lo:hi]
            p = float(command.power_w)
            if isinstance(device, EVCharger) and command.direction == REDUCE:
                window -= np.minimum(p, np.maximum(window, 0.0))
            elif isinstance(device, IndustrialLoad) and command.direction == REDUCE:
                floor = device.BASE * device.capacity_w
                window -= np.clip(window - floor, 0.0, p)
            elif isinstance(device, PVInverter) and command.direction == INCREASE:
                window += np.minimum(p, np.maximum(-window, 0.0))
        return power

    def _battery_day(
        self, battery: HomeBattery, day: int, power: np.ndarray, commands: tuple[Command, ...]
    ) -> np.ndarray:
        battery.state_of_charge_wh(day * SECONDS_PER_DAY)  # makes sure the SoC is computed
        planned_soc = battery._soc[day]
        reserve = battery.RESERVE * battery.energy_capacity_wh
        full = battery.FULL * battery.energy_capacity_wh
        eff = battery.EFFICIENCY
        moved_wh = 0.0  # stored energy added (+) or taken (-) by commands so far
        wanted = np.zeros((MINUTES_PER_DAY, 2))  # extra W per minute: [discharge, charge]
        for command in commands:
            lo, hi = _minute_window(command, day)
            wanted[lo:hi, 0 if command.direction == REDUCE else 1] += command.power_w
        for minute in np.flatnonzero(wanted.any(axis=1)):
            before = (planned_soc[minute - 1] if minute else reserve) + moved_wh
            discharge, charge = wanted[minute]
            net = charge - discharge
            if net < 0:
                room_w = max(0.0, (before - reserve) * 60 * eff)
                delta = -min(-net, power[minute] + battery.capacity_w, room_w)
                moved_wh += delta / eff / 60
            else:
                room_w = max(0.0, (full - before) * 60 / eff)
                delta = min(net, battery.capacity_w - power[minute], room_w)
                moved_wh += delta * eff / 60
            power[minute] += delta
        return power

    def _thermal_day(
        self, device: ThermalDevice, day: int, commands: tuple[Command, ...]
    ) -> np.ndarray:
        day_start, day_end = (round(h * 60) for h in device.DAY_HOURS)
        nominal = np.full(MINUTES_PER_DAY, device.night_setpoint_c)
        nominal[day_start:day_end] = device.day_setpoint_c
        low = self.comfort_min_c + device.HYSTERESIS_K
        high = self.comfort_max_c - device.HYSTERESIS_K
        shift = np.zeros(MINUTES_PER_DAY)
        for command in commands:
            lo, hi = _minute_window(command, day)
            less_load = command.direction == REDUCE
            # Heating sheds load with a lower setpoint, cooling with a higher one.
            target = low if less_load == device.heating else high
            shift[lo:hi] = target - nominal[lo:hi]
        power, _ = device.simulate_day(day, shift)
        return power


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


def _stored_before_wh(battery: HomeBattery, at: int) -> float:
    """The planned stored energy at the start of the minute containing `at` (each day
    starts from the reserve)."""
    if at % SECONDS_PER_DAY < 60:
        return battery.RESERVE * battery.energy_capacity_wh
    return battery.state_of_charge_wh(at - 60)


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
        reason = self._cannot_deliver(device, command)
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
    def _cannot_deliver(device: CommandedDevice, command: Command) -> str | None:
        model = device.device
        kind = model.kind.name.lower()
        if isinstance(model, EVCharger):
            if command.direction == INCREASE:
                return "an EV charger can only defer charging"
            if not model.is_plugged(command.start):
                return "EV not plugged in at window start"
        elif isinstance(model, HomeBattery) and command.direction == REDUCE:
            reserve = model.RESERVE * model.energy_capacity_wh
            if _stored_before_wh(model, command.start) <= reserve + 1:
                return "battery at its reserve"
        elif isinstance(model, IndustrialLoad) and command.direction == INCREASE:
            return "industrial load cannot add a process on command"
        elif isinstance(model, PVInverter) and command.direction == REDUCE:
            return "PV cannot produce more than the sun gives"
        elif not isinstance(model, ThermalDevice | HomeBattery | IndustrialLoad | PVInverter):
            return f"no dispatch model for {kind}"
        return None

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
