"""A simulated industrial load: two weekday shifts over a base load; dispatch sheds a
process."""

from __future__ import annotations

import numpy as np

from gridflex.rules.types import DeviceKind, Direction
from node.devices.base import ComfortBand, Command
from node.devices.simulation import (
    MINUTES_PER_DAY,
    REDUCE,
    SimulatedDevice,
    is_weekend,
    minute_of_day,
)


class IndustrialLoad(SimulatedDevice):
    """A factory on two shifts on weekdays (06:00-14:00, 14:00-22:00) at 70-85 % of its
    rated power, with a dip at the shift change and the breaks, and a 20 % base load
    (compressed air, lighting, cooling) at night and on weekends."""

    KIND = DeviceKind.INDUSTRIAL_LOAD
    kind_salt = 5
    BASE = 0.20
    SHIFT_HOURS = (6.0, 22.0)
    DIPS = ((9.5, 9.75), (12.0, 12.5), (13.75, 14.25), (18.0, 18.5))

    def _simulate_day(self, day: int) -> np.ndarray:
        rng = self.rng(day)
        level = np.full(MINUTES_PER_DAY, self.BASE)
        if not is_weekend(day):
            start, end = map(minute_of_day, self.SHIFT_HOURS)
            level[start:end] = rng.uniform(0.70, 0.85)
            ramp = 30  # machines start over half an hour
            level[start : start + ramp] = np.linspace(self.BASE, level[start + ramp], ramp)
            for dip_start, dip_end in self.DIPS:
                level[minute_of_day(dip_start) : minute_of_day(dip_end)] *= 0.6
        noise = rng.normal(0, 0.02, MINUTES_PER_DAY)
        return self.capacity_w * np.clip(level + noise, 0.05, 1.0)

    # ─── Availability and dispatch: a process shed, never one added ───────────────────

    def _offer_w(self, start: int, end: int, direction: Direction, comfort: ComfortBand) -> int:
        return self.capacity_w if direction == REDUCE else 0

    def refusal(self, command: Command) -> str | None:
        if command.direction != REDUCE:
            return "industrial load cannot add a process on command"
        return None

    def _command_effect(self, window: np.ndarray, command: Command) -> None:
        """A process shed, up to `power_w`, never below the base load."""
        if command.direction == REDUCE:
            floor = self.BASE * self.capacity_w
            window -= np.clip(window - floor, 0.0, float(command.power_w))
