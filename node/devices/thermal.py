"""Simulated heat pumps and air conditioning: a building's thermal mass, the outdoor
temperature and a thermostat; dispatch moves the setpoint within the comfort band."""

from __future__ import annotations

import math

import numpy as np

from gridflex.rules.types import DeviceKind, Direction
from node.devices.base import ComfortBand, Command
from node.devices.simulation import (
    MINUTES_PER_DAY,
    REDUCE,
    SECONDS_PER_DAY,
    SimulatedDevice,
    minute_of_day,
    minute_window,
)


class ThermalDevice(SimulatedDevice):
    """A building heated (heat pump) or cooled (HVAC) by an on/off compressor.

    Indoor temperature follows a first-order RC model: dT/dt = (T_out - T_in)/tau + Q/C,
    C = 5 kWh/K, tau = 30 h. The outdoor temperature follows a daily cosine (coldest at
    03:00, warmest at 15:00) plus a seeded offset per day. A thermostat with +/-0.5 K
    hysteresis switches the compressor (rated electrical power, COP/EER depending on the
    outdoor temperature) around a day setpoint (06:00-22:00) and a night setback.
    Each day starts at the night setpoint with the compressor off.
    """

    THERMAL_CAPACITY_WH_PER_K = 5_000.0
    TIME_CONSTANT_H = 30.0
    HYSTERESIS_K = 0.5
    DAY_HOURS = (6.0, 22.0)

    def __init__(
        self,
        capacity_w: int,
        seed: int,
        *,
        heating: bool,
        outdoor_mean_c: float,
        outdoor_swing_c: float,
        day_setpoint_c: float,
        night_setpoint_c: float,
    ) -> None:
        super().__init__(capacity_w, seed)
        self.heating = heating
        self.outdoor_mean_c = outdoor_mean_c
        self.outdoor_swing_c = outdoor_swing_c
        self.day_setpoint_c = day_setpoint_c
        self.night_setpoint_c = night_setpoint_c
        self._indoor: dict[int, np.ndarray] = {}

    def outdoor_temperature_c(self, day: int) -> np.ndarray:
        hours = np.arange(MINUTES_PER_DAY) / 60
        offset = np.random.default_rng([self.seed, self.kind_salt, day, 2]).normal(0, 2)
        return (
            self.outdoor_mean_c
            + offset
            + self.outdoor_swing_c * np.cos(2 * np.pi * (hours - 15) / 24)
        )

    def _efficiency(self, outdoor_c: float) -> float:
        """COP (heating) or EER (cooling): better when the lift is small."""
        if self.heating:
            return min(max(3.5 + 0.07 * (outdoor_c - 7), 2.0), 5.0)
        return min(max(3.5 - 0.08 * (outdoor_c - 27), 2.0), 5.0)

    def _simulate_day(self, day: int) -> np.ndarray:
        power, indoor = self.simulate_day(day)
        self._indoor[day] = indoor
        return power

    def simulate_day(
        self, day: int, setpoint_shift_k: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-minute (power W, indoor C) of `day`, with the thermostat setpoint shifted by
        `setpoint_shift_k` (K per minute, e.g. a dispatch command) if given. Pure: the
        same day and shifts give the same arrays."""
        rng = self.rng(day)
        outdoor = self.outdoor_temperature_c(day)
        draw_noise = rng.normal(0, 0.02, MINUTES_PER_DAY)
        day_start, day_end = map(minute_of_day, self.DAY_HOURS)
        indoor_c = self.night_setpoint_c
        running = False
        power = np.empty(MINUTES_PER_DAY)
        indoor = np.empty(MINUTES_PER_DAY)
        sign = 1.0 if self.heating else -1.0
        for minute in range(MINUTES_PER_DAY):
            is_day = day_start <= minute < day_end
            setpoint = self.day_setpoint_c if is_day else self.night_setpoint_c
            if setpoint_shift_k is not None:
                setpoint += float(setpoint_shift_k[minute])
            error_k = sign * (setpoint - indoor_c)  # > 0: needs the compressor
            if error_k > self.HYSTERESIS_K:
                running = True
            elif error_k < -self.HYSTERESIS_K:
                running = False
            electric_w = self.capacity_w * (0.95 + draw_noise[minute]) if running else 15.0
            thermal_w = sign * electric_w * self._efficiency(outdoor[minute]) if running else 0
            # Sun through the windows warms the building in the afternoon.
            solar_gain_w = 800.0 * max(0.0, math.sin(math.pi * (minute / 60 - 7) / 12))
            indoor_c += (outdoor[minute] - indoor_c) / (self.TIME_CONSTANT_H * 60) + (
                thermal_w + solar_gain_w
            ) / self.THERMAL_CAPACITY_WH_PER_K / 60
            power[minute] = electric_w
            indoor[minute] = indoor_c
        return power, indoor

    def indoor_temperature_c(self, at: int) -> float:
        day, second = divmod(at, SECONDS_PER_DAY)
        if day not in self._indoor:
            self._simulate_day(day)
        return float(self._indoor[day][second // 60])

    # ─── Availability and dispatch: the thermostat setpoint within the comfort band ──

    def _offer_w(self, start: int, end: int, direction: Direction, comfort: ComfortBand) -> int:
        """Its capacity only if the compressor off (shedding) or on (adding load) for the
        window keeps the building within `comfort`. Off: the indoor temperature drifts
        toward outdoors with the building's time constant. On: it moves by the thermal
        power over the building's heat capacity (losses ignored: conservative)."""
        indoor = self.indoor_temperature_c(start)
        if not comfort.min_c <= indoor <= comfort.max_c:
            return 0
        day, second = divmod(start, SECONDS_PER_DAY)
        outdoor = float(self.outdoor_temperature_c(day)[second // 60])
        hours = (end - start) / 3600
        if direction == REDUCE:
            end_c = indoor + (outdoor - indoor) * hours / self.TIME_CONSTANT_H
        else:
            sign = 1.0 if self.heating else -1.0
            thermal_w = self.capacity_w * self._efficiency(outdoor)
            end_c = indoor + sign * thermal_w * hours / self.THERMAL_CAPACITY_WH_PER_K
        return self.capacity_w if comfort.min_c <= end_c <= comfort.max_c else 0

    def refusal(self, command: Command) -> str | None:
        return None

    def _commanded_day(
        self, day: int, commands: tuple[Command, ...], comfort: ComfortBand
    ) -> np.ndarray:
        """The setpoint moves to the edge of the comfort band (minus the hysteresis) for
        the window, away from the load for reduce, toward it for increase; the building
        model is re-run with the shifted setpoint, so the recovery after the window
        (rebound) is metered too."""
        day_start, day_end = map(minute_of_day, self.DAY_HOURS)
        nominal = np.full(MINUTES_PER_DAY, self.night_setpoint_c)
        nominal[day_start:day_end] = self.day_setpoint_c
        low = comfort.min_c + self.HYSTERESIS_K
        high = comfort.max_c - self.HYSTERESIS_K
        shift = np.zeros(MINUTES_PER_DAY)
        for command in commands:
            lo, hi = minute_window(command, day)
            less_load = command.direction == REDUCE
            # Heating sheds load with a lower setpoint, cooling with a higher one.
            target = low if less_load == self.heating else high
            shift[lo:hi] = target - nominal[lo:hi]
        power, _ = self.simulate_day(day, shift)
        return power


class HeatPump(ThermalDevice):
    """Air-source heat pump in winter: 5 C mean outdoors, 20.5 C by day, 18 C at night."""

    KIND = DeviceKind.HEAT_PUMP
    kind_salt = 3

    def __init__(self, capacity_w: int, seed: int) -> None:
        super().__init__(
            capacity_w, seed, heating=True,
            outdoor_mean_c=5.0, outdoor_swing_c=4.0, day_setpoint_c=20.5, night_setpoint_c=18.0,
        )  # fmt: skip


class HVAC(ThermalDevice):
    """Air conditioning in summer: 27 C mean outdoors, 24 C by day, 26 C at night."""

    KIND = DeviceKind.HVAC
    kind_salt = 4

    def __init__(self, capacity_w: int, seed: int) -> None:
        super().__init__(
            capacity_w, seed, heating=False,
            outdoor_mean_c=27.0, outdoor_swing_c=6.0, day_setpoint_c=24.0, night_setpoint_c=26.0,
        )  # fmt: skip
