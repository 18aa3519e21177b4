"""The base of the simulated devices: plausible physics and seeded noise, for demos, tests
and load. One model per kind, each in its own module (`battery`, `ev_charger`, `thermal`,
`industrial`, `pv`), listed in `node.devices.simulated`.

Each model computes one day of per-minute power (W, + import, - export) from its seed and
the day number alone, so a reading is a pure function of (seed, time): re-reading an
interval gives the same Wh, and a day of history is produced instantly (time
compressed). Days are independent: stateful models (battery state of charge, building
temperature) start each day from a documented state (the battery from its reserve, which
the evening discharge returns it to; buildings from their thermostat setpoint).

Dispatch is part of the model: its meter under commands is the planned day plus the
effect of the commands (`_commanded_day`), a pure function of (seed, time, commands), so a
restart that reloads the schedule reproduces the history.

Times are the site's local time expressed as unix seconds (UTC offset not modelled).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import OrderedDict
from typing import ClassVar

import numpy as np

from gridflex.rules.types import DeviceKind, Direction
from node.devices.base import DEFAULT_COMFORT, NO_COMMANDS, ComfortBand, Command, Schedule

MINUTES_PER_DAY = 1440
SECONDS_PER_DAY = 86_400
CACHED_DAYS = 16
CACHED_COMMANDED_DAYS = 64
STANDBY_W = 10.0
REDUCE = Direction.REDUCE_CONSUMPTION
INCREASE = Direction.INCREASE_CONSUMPTION


def minute_of_day(hour: float) -> int:
    return round(hour * 60)


def is_weekend(day: int) -> bool:
    """1970-01-01 (day 0) was a Thursday."""
    return (day + 3) % 7 >= 5


def minute_window(command: Command, day: int) -> tuple[int, int]:
    """The minutes of `day` covered by `command` (lo >= hi: none)."""
    day_start = day * SECONDS_PER_DAY
    lo = max(command.start - day_start, 0) // 60
    hi = min(command.end - day_start, SECONDS_PER_DAY) // 60
    return max(lo, 0), min(hi, MINUTES_PER_DAY)


class SimulatedDevice(ABC):
    """Base of the simulated models (implements `DeviceAdapter`): per-minute power of a
    day, turned into interval energy (Wh), availability and commanded days."""

    KIND: ClassVar[DeviceKind]
    kind_salt: ClassVar[int] = 0
    sheds_at_most_its_draw: ClassVar[bool] = True
    """A load can shed only what it would have consumed, so its reduction is capped at its
    expected mean draw over the window (a heat pump idle at noon offers nothing)."""

    def __init__(self, capacity_w: int, seed: int) -> None:
        if capacity_w <= 0:
            raise ValueError("capacity_w must be positive")
        self._capacity_w = capacity_w
        self.seed = seed
        self._days: OrderedDict[int, np.ndarray] = OrderedDict()
        self._commanded: dict[tuple[int, tuple[Command, ...], ComfortBand], np.ndarray] = {}

    @property
    def kind(self) -> DeviceKind:
        return self.KIND

    @property
    def capacity_w(self) -> int:
        return self._capacity_w

    def rng(self, day: int) -> np.random.Generator:
        """The day's random stream: same seed and day give the same noise on every read."""
        return np.random.default_rng([self.seed, self.kind_salt, day])

    @abstractmethod
    def _simulate_day(self, day: int) -> np.ndarray:
        """Per-minute power (W) of `day` (days since the unix epoch), 1440 floats."""

    # ─── Metering ─────────────────────────────────────────────────────────────────────

    def day_power_w(self, day: int, schedule: Schedule = NO_COMMANDS) -> np.ndarray:
        """Per-minute metered power of `day` under `schedule`."""
        todays = tuple(
            c for c in schedule.commands if minute_window(c, day)[0] < minute_window(c, day)[1]
        )
        if todays:
            return self._commanded_day_power_w(day, todays, schedule.comfort)
        power = self._days.get(day)
        if power is None:
            power = np.clip(self._simulate_day(day), -self.capacity_w, self.capacity_w)
            power.setflags(write=False)
            self._days[day] = power
            while len(self._days) > CACHED_DAYS:
                self._days.popitem(last=False)
        else:
            self._days.move_to_end(day)
        return power

    def _commanded_day_power_w(
        self, day: int, commands: tuple[Command, ...], comfort: ComfortBand
    ) -> np.ndarray:
        key = (day, commands, comfort)
        power = self._commanded.get(key)
        if power is None:
            power = np.clip(
                self._commanded_day(day, commands, comfort), -self.capacity_w, self.capacity_w
            )
            power.setflags(write=False)
            if len(self._commanded) > CACHED_COMMANDED_DAYS:
                self._commanded.clear()
            self._commanded[key] = power
        return power

    def power_w(self, at: int, schedule: Schedule = NO_COMMANDS) -> float:
        """Mean power in the minute containing `at`."""
        day, second = divmod(at, SECONDS_PER_DAY)
        return float(self.day_power_w(day, schedule)[second // 60])

    def read_interval_energy_wh(
        self, interval_start: int, interval_seconds: int, schedule: Schedule = NO_COMMANDS
    ) -> int:
        if interval_start % 60 or interval_seconds % 60 or interval_seconds <= 0:
            raise ValueError("simulated devices meter whole minutes")
        total_w_minutes = 0.0
        minute = interval_start // 60
        end_minute = minute + interval_seconds // 60
        while minute < end_minute:
            day, minute_of_day = divmod(minute, MINUTES_PER_DAY)
            stop = min(MINUTES_PER_DAY, minute_of_day + end_minute - minute)
            power = self.day_power_w(day, schedule)
            total_w_minutes += float(power[minute_of_day:stop].sum())
            minute += stop - minute_of_day
        return round(total_w_minutes / 60)

    def mean_power_w(self, start: int, end: int) -> int:
        """Planned mean power over [start, end), floored to whole W."""
        return self.read_interval_energy_wh(start, end - start) * 3600 // (end - start)

    # ─── Availability ─────────────────────────────────────────────────────────────────

    def available_w(
        self, start: int, end: int, direction: Direction, comfort: ComfortBand = DEFAULT_COMFORT
    ) -> int:
        offer = self._offer_w(start, end, direction, comfort)
        if not self.sheds_at_most_its_draw or direction != REDUCE or offer <= 0:
            return offer
        return max(0, min(offer, self.mean_power_w(start, end)))

    @abstractmethod
    def _offer_w(self, start: int, end: int, direction: Direction, comfort: ComfortBand) -> int:
        """What the model can do over the window, before the cap at its draw."""

    # ─── Dispatch ─────────────────────────────────────────────────────────────────────

    @abstractmethod
    def refusal(self, command: Command) -> str | None:
        """Why the device cannot carry out `command` now (None: it can)."""

    def _commanded_day(
        self, day: int, commands: tuple[Command, ...], comfort: ComfortBand
    ) -> np.ndarray:
        """Per-minute power of `day` under `commands`: by default the planned day with each
        command's effect on its own minutes (`_command_effect`)."""
        power = np.array(self.day_power_w(day), dtype=float)
        for command in commands:
            lo, hi = minute_window(command, day)
            self._command_effect(power[lo:hi], command)
        return power

    def _command_effect(self, window: np.ndarray, command: Command) -> None:
        """Changes `window` (the command's minutes of planned power) in place; a model
        whose commands interact over the day overrides `_commanded_day` instead."""
        raise NotImplementedError(f"{type(self).__name__} has no per-window command effect")
