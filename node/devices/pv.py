"""A simulated rooftop PV inverter: a seasonal sun curve with clouds; dispatch curtails."""

from __future__ import annotations

import math

import numpy as np

from gridflex.rules.types import DeviceKind, Direction
from node.devices.base import ComfortBand, Command
from node.devices.simulation import INCREASE, MINUTES_PER_DAY, REDUCE, SimulatedDevice


class PVInverter(SimulatedDevice):
    """A rooftop PV inverter: exports (negative energy) along a sun curve between sunrise
    and sunset, with day length following the season (12 h +/- 4 h, solar noon at 12:00),
    a seeded cloudiness per day and passing clouds per minute; exactly zero at night."""

    KIND = DeviceKind.PV_INVERTER
    kind_salt = 6
    sheds_at_most_its_draw = False  # it has no draw: it cannot reduce at all
    CLEAR_SKY_FRACTION = 0.85  # DC/AC losses, soiling, temperature

    @staticmethod
    def daylight_hours(day: int) -> tuple[float, float]:
        """(sunrise, sunset) in hours of the day; day 0 of the year = 1 January."""
        day_of_year = (day + 0) % 365  # 1970-01-01 is day 0 of its year
        length = 12 + 4 * math.sin(2 * math.pi * (day_of_year - 80) / 365)
        return 12 - length / 2, 12 + length / 2

    def _simulate_day(self, day: int) -> np.ndarray:
        rng = self.rng(day)
        sunrise, sunset = self.daylight_hours(day)
        hours = np.arange(MINUTES_PER_DAY) / 60 + 1 / 120  # minute centres
        sun = np.sin(np.pi * (hours - sunrise) / (sunset - sunrise))
        sun = np.where((hours > sunrise) & (hours < sunset), np.clip(sun, 0, 1) ** 1.2, 0.0)
        clear_sky = rng.beta(5, 2)  # most days fairly sunny, some overcast
        passing_clouds = np.clip(
            1 - np.convolve(rng.exponential(0.15, MINUTES_PER_DAY), np.ones(10) / 10, "same"),
            0.2,
            1.0,
        )
        return -self.capacity_w * self.CLEAR_SKY_FRACTION * clear_sky * passing_clouds * sun

    # ─── Availability and dispatch: curtailment only ──────────────────────────────────

    def _offer_w(self, start: int, end: int, direction: Direction, comfort: ComfortBand) -> int:
        """Nothing to cut; it raises net consumption by curtailing what it would produce
        (its export, negative energy at the meter)."""
        if direction == REDUCE:
            return 0
        produced_w = -self.read_interval_energy_wh(start, end - start) * 3600 // (end - start)
        return max(0, min(self.capacity_w, produced_w))

    def refusal(self, command: Command) -> str | None:
        if command.direction == REDUCE:
            return "PV cannot produce more than the sun gives"
        return None

    def _command_effect(self, window: np.ndarray, command: Command) -> None:
        """Increase (less net export) = curtailment, up to `power_w` and the production."""
        if command.direction == INCREASE:
            window += np.minimum(float(command.power_w), np.maximum(-window, 0.0))
