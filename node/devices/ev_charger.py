"""A simulated EV charger (wallbox): charging sessions from seeded arrivals; dispatch
defers charging while a car is plugged in."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gridflex.rules.types import DeviceKind, Direction
from node.devices.base import ComfortBand, Command
from node.devices.simulation import (
    MINUTES_PER_DAY,
    REDUCE,
    SECONDS_PER_DAY,
    SimulatedDevice,
    is_weekend,
)

PLUG_CHECK_SECONDS = 900
"""How often over a window the availability checks that the car is still plugged in."""


@dataclass(frozen=True)
class ChargingSession:
    """A car plugged in from `plug_in` to `unplug` (unix s) wanting `energy_wh`."""

    plug_in: int
    unplug: int
    energy_wh: int


class EVCharger(SimulatedDevice):
    """A wallbox: on most weekday evenings a car arrives (around 17:30) and leaves the next
    morning (around 07:30); on some weekend days it charges around midday. It charges at
    rated power from plug-in until the car has what it needs (4-30 kWh), tapering to half
    power for the last 10 %, and draws nothing while unplugged."""

    KIND = DeviceKind.EV_CHARGER
    kind_salt = 2
    MAX_SESSION_HOURS = 20

    def __init__(self, capacity_w: int, seed: int) -> None:
        super().__init__(capacity_w, seed)

    def session(self, day: int) -> ChargingSession | None:
        """The session starting on `day`, if any (pure function of seed and day)."""
        rng = np.random.default_rng([self.seed, self.kind_salt, day, 1])
        day_start = day * SECONDS_PER_DAY
        energy_wh = int(rng.uniform(4_000, 30_000))
        if is_weekend(day):
            if rng.random() >= 0.5:
                return None
            plug_in = day_start + int(rng.normal(11.0, 1.0) * 3600)
            unplug = plug_in + int(rng.uniform(2, 6) * 3600)
        else:
            if rng.random() >= 0.85:
                return None
            plug_in = day_start + int(np.clip(rng.normal(17.5, 0.75), 15.0, 21.0) * 3600)
            unplug = day_start + SECONDS_PER_DAY + int(rng.normal(7.5, 0.5) * 3600)
        return ChargingSession(plug_in - plug_in % 60, unplug - unplug % 60, energy_wh)

    def is_plugged(self, at: int) -> bool:
        day = at // SECONDS_PER_DAY
        return any(
            s is not None and s.plug_in <= at < s.unplug
            for s in (self.session(day - 1), self.session(day))
        )

    def _session_power(self, session: ChargingSession) -> np.ndarray:
        """Per-minute power from plug-in to unplug."""
        minutes = (session.unplug - session.plug_in) // 60
        power = np.zeros(minutes)
        delivered_wh = 0.0
        taper_from = 0.9 * session.energy_wh
        for minute in range(minutes):
            if delivered_wh >= session.energy_wh:
                break
            rate_w = self.capacity_w * (0.97 if delivered_wh < taper_from else 0.5)
            rate_w = min(rate_w, (session.energy_wh - delivered_wh) * 60)
            power[minute] = rate_w
            delivered_wh += rate_w / 60
        return power

    def _simulate_day(self, day: int) -> np.ndarray:
        power = np.zeros(MINUTES_PER_DAY)
        day_start_minute = day * MINUTES_PER_DAY
        for session in (self.session(day - 1), self.session(day)):
            if session is None:
                continue
            session_power = self._session_power(session)
            offset = session.plug_in // 60 - day_start_minute
            lo, hi = max(offset, 0), min(offset + len(session_power), MINUTES_PER_DAY)
            if lo < hi:
                power[lo:hi] += session_power[lo - offset : hi - offset]
        return power

    # ─── Availability and dispatch: deferring charging only ───────────────────────────

    def _offer_w(self, start: int, end: int, direction: Direction, comfort: ComfortBand) -> int:
        """Its capacity if a car is plugged in the whole window (a car's charge cannot be
        pulled forward on command)."""
        if direction != REDUCE:
            return 0
        checks = [*range(start, end, PLUG_CHECK_SECONDS), end - 1]
        return self.capacity_w if all(self.is_plugged(t) for t in checks) else 0

    def refusal(self, command: Command) -> str | None:
        if command.direction != REDUCE:
            return "an EV charger can only defer charging"
        if not self.is_plugged(command.start):
            return "EV not plugged in at window start"
        return None

    def _command_effect(self, window: np.ndarray, command: Command) -> None:
        """Charging slowed by up to `power_w` (paused at `power_w` >= its draw); the
        deferred energy is not modelled (the session is not extended)."""
        if command.direction == REDUCE:
            window -= np.minimum(float(command.power_w), np.maximum(window, 0.0))
