"""Simulated devices with plausible physics and seeded noise, for demos, tests and load.

Each model computes one day of per-minute power (W, + import, - export) from its seed and
the day number alone, so a reading is a pure function of (seed, time): re-reading an
interval gives the same Wh, and a day of history is produced instantly (time
compressed). Days are independent: stateful models (battery state of charge, building
temperature) start each day from a documented state (the battery from its reserve, which
the evening discharge returns it to; buildings from their thermostat setpoint).

Times are the site's local time expressed as unix seconds (UTC offset not modelled).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from gridflex.rules.types import DeviceKind

MINUTES_PER_DAY = 1440
SECONDS_PER_DAY = 86_400
CACHED_DAYS = 16
STANDBY_W = 10.0


def _minute(hour: float) -> int:
    return round(hour * 60)


def _is_weekend(day: int) -> bool:
    """1970-01-01 (day 0) was a Thursday."""
    return (day + 3) % 7 >= 5


class SimulatedDevice(ABC):
    """Base of the simulated models: turns per-minute power into interval energy (Wh)."""

    kind_salt: int = 0

    def __init__(self, kind: DeviceKind, capacity_w: int, seed: int) -> None:
        if capacity_w <= 0:
            raise ValueError("capacity_w must be positive")
        self._kind = kind
        self._capacity_w = capacity_w
        self.seed = seed
        self._days: OrderedDict[int, np.ndarray] = OrderedDict()

    @property
    def kind(self) -> DeviceKind:
        return self._kind

    @property
    def capacity_w(self) -> int:
        return self._capacity_w

    def rng(self, day: int) -> np.random.Generator:
        """The day's random stream: same seed and day give the same noise on every read."""
        return np.random.default_rng([self.seed, self.kind_salt, day])

    @abstractmethod
    def _simulate_day(self, day: int) -> np.ndarray:
        """Per-minute power (W) of `day` (days since the unix epoch), 1440 floats."""

    def day_power_w(self, day: int) -> np.ndarray:
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

    def power_w(self, at: int) -> float:
        """Mean power in the minute containing `at`."""
        day, second = divmod(at, SECONDS_PER_DAY)
        return float(self.day_power_w(day)[second // 60])

    def read_interval_energy_wh(self, interval_start: int, interval_seconds: int) -> int:
        if interval_start % 60 or interval_seconds % 60 or interval_seconds <= 0:
            raise ValueError("simulated devices meter whole minutes")
        total_w_minutes = 0.0
        minute = interval_start // 60
        end_minute = minute + interval_seconds // 60
        while minute < end_minute:
            day, minute_of_day = divmod(minute, MINUTES_PER_DAY)
            stop = min(MINUTES_PER_DAY, minute_of_day + end_minute - minute)
            total_w_minutes += float(self.day_power_w(day)[minute_of_day:stop].sum())
            minute += stop - minute_of_day
        return round(total_w_minutes / 60)


# ─── Home battery ───────────────────────────────────────────────────────────────────────


class HomeBattery(SimulatedDevice):
    """A home battery on its own meter: charges from the grid in the cheap night hours
    (01:00-05:00) and covers the household's evening peak (17:00-22:00) by exporting.

    Energy capacity = 2 h at rated power; state of charge stays within [10 %, 95 %];
    round-trip losses 5 % each way; standby draw 10 W.
    """

    kind_salt = 1
    HOURS_OF_STORAGE = 2
    RESERVE = 0.10
    FULL = 0.95
    EFFICIENCY = 0.95
    CHARGE_WINDOW = (1.0, 5.0)
    PEAK_WINDOW = (17.0, 22.0)

    def __init__(self, capacity_w: int, seed: int) -> None:
        super().__init__(DeviceKind.BATTERY, capacity_w, seed)
        self.energy_capacity_wh = capacity_w * self.HOURS_OF_STORAGE
        self._soc: dict[int, np.ndarray] = {}

    def _simulate_day(self, day: int) -> np.ndarray:
        rng = self.rng(day)
        charge_fraction = rng.uniform(0.85, 1.0)
        household_w = 1_600 + 500 * rng.standard_normal(MINUTES_PER_DAY)
        soc_min = self.RESERVE * self.energy_capacity_wh
        soc_max = self.FULL * self.energy_capacity_wh
        soc_wh = soc_min
        power = np.full(MINUTES_PER_DAY, STANDBY_W)
        soc = np.empty(MINUTES_PER_DAY)
        charge_start, charge_end = map(_minute, self.CHARGE_WINDOW)
        peak_start, peak_end = map(_minute, self.PEAK_WINDOW)
        for minute in range(MINUTES_PER_DAY):
            if charge_start <= minute < charge_end:
                headroom_w = (soc_max - soc_wh) * 60 / self.EFFICIENCY
                charge_w = min(self.capacity_w * charge_fraction, headroom_w)
                power[minute] = max(charge_w, STANDBY_W)
                soc_wh += charge_w * self.EFFICIENCY / 60
            elif peak_start <= minute < peak_end:
                available_w = (soc_wh - soc_min) * 60 * self.EFFICIENCY
                discharge_w = min(max(household_w[minute], 0.0), self.capacity_w, available_w)
                power[minute] = -discharge_w if discharge_w > 0 else STANDBY_W
                soc_wh -= discharge_w / self.EFFICIENCY / 60
            soc[minute] = soc_wh
        self._soc[day] = soc
        return power

    def state_of_charge_wh(self, at: int) -> float:
        """Stored energy at the end of the minute containing `at`."""
        day, second = divmod(at, SECONDS_PER_DAY)
        self.day_power_w(day)
        if day not in self._soc:  # power came from the cache after the SoC was evicted
            self._simulate_day(day)
        return float(self._soc[day][second // 60])


# ─── EV charger ────────────────────────────────────────────────────────────────────────


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

    kind_salt = 2
    MAX_SESSION_HOURS = 20

    def __init__(self, capacity_w: int, seed: int) -> None:
        super().__init__(DeviceKind.EV_CHARGER, capacity_w, seed)

    def session(self, day: int) -> ChargingSession | None:
        """The session starting on `day`, if any (pure function of seed and day)."""
        rng = np.random.default_rng([self.seed, self.kind_salt, day, 1])
        day_start = day * SECONDS_PER_DAY
        energy_wh = int(rng.uniform(4_000, 30_000))
        if _is_weekend(day):
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


# ─── Heat pump and HVAC: thermal mass, outdoor temperature, thermostat ──────────────────


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
        kind: DeviceKind,
        capacity_w: int,
        seed: int,
        *,
        heating: bool,
        outdoor_mean_c: float,
        outdoor_swing_c: float,
        day_setpoint_c: float,
        night_setpoint_c: float,
    ) -> None:
        super().__init__(kind, capacity_w, seed)
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
        day_start, day_end = map(_minute, self.DAY_HOURS)
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


class HeatPump(ThermalDevice):
    """Air-source heat pump in winter: 5 C mean outdoors, 20.5 C by day, 18 C at night."""

    kind_salt = 3

    def __init__(self, capacity_w: int, seed: int) -> None:
        super().__init__(
            DeviceKind.HEAT_PUMP, capacity_w, seed, heating=True,
            outdoor_mean_c=5.0, outdoor_swing_c=4.0, day_setpoint_c=20.5, night_setpoint_c=18.0,
        )  # fmt: skip


class HVAC(ThermalDevice):
    """Air conditioning in summer: 27 C mean outdoors, 24 C by day, 26 C at night."""

    kind_salt = 4

    def __init__(self, capacity_w: int, seed: int) -> None:
        super().__init__(
            DeviceKind.HVAC, capacity_w, seed, heating=False,
            outdoor_mean_c=27.0, outdoor_swing_c=6.0, day_setpoint_c=24.0, night_setpoint_c=26.0,
        )  # fmt: skip


# ─── Industrial load ───────────────────────────────────────────────────────────────────


class IndustrialLoad(SimulatedDevice):
    """A factory on two shifts on weekdays (06:00-14:00, 14:00-22:00) at 70-85 % of its
    rated power, with a dip at the shift change and the breaks, and a 20 % base load
    (compressed air, lighting, cooling) at night and on weekends."""

    kind_salt = 5
    BASE = 0.20
    SHIFT_HOURS = (6.0, 22.0)
    DIPS = ((9.5, 9.75), (12.0, 12.5), (13.75, 14.25), (18.0, 18.5))

    def __init__(self, capacity_w: int, seed: int) -> None:
        super().__init__(DeviceKind.INDUSTRIAL_LOAD, capacity_w, seed)

    def _simulate_day(self, day: int) -> np.ndarray:
        rng = self.rng(day)
        level = np.full(MINUTES_PER_DAY, self.BASE)
        if not _is_weekend(day):
            start, end = map(_minute, self.SHIFT_HOURS)
            level[start:end] = rng.uniform(0.70, 0.85)
            ramp = 30  # machines start over half an hour
            level[start : start + ramp] = np.linspace(self.BASE, level[start + ramp], ramp)
            for dip_start, dip_end in self.DIPS:
                level[_minute(dip_start) : _minute(dip_end)] *= 0.6
        noise = rng.normal(0, 0.02, MINUTES_PER_DAY)
        return self.capacity_w * np.clip(level + noise, 0.05, 1.0)


# ─── PV inverter ───────────────────────────────────────────────────────────────────────


class PVInverter(SimulatedDevice):
    """A rooftop PV inverter: exports (negative energy) along a sun curve between sunrise
    and sunset, with day length following the season (12 h +/- 4 h, solar noon at 12:00),
    a seeded cloudiness per day and passing clouds per minute; exactly zero at night."""

    kind_salt = 6
    CLEAR_SKY_FRACTION = 0.85  # DC/AC losses, soiling, temperature

    def __init__(self, capacity_w: int, seed: int) -> None:
        super().__init__(DeviceKind.PV_INVERTER, capacity_w, seed)

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


SIMULATED_MODELS: dict[DeviceKind, type[SimulatedDevice]] = {
    DeviceKind.BATTERY: HomeBattery,
    DeviceKind.EV_CHARGER: EVCharger,
    DeviceKind.HEAT_PUMP: HeatPump,
    DeviceKind.HVAC: HVAC,
    DeviceKind.INDUSTRIAL_LOAD: IndustrialLoad,
    DeviceKind.PV_INVERTER: PVInverter,
}


def simulated_device(kind: DeviceKind, capacity_w: int, seed: int) -> SimulatedDevice:
    """The simulated model of `kind` (OTHER has none: it needs a real meter)."""
    try:
        model = SIMULATED_MODELS[kind]
    except KeyError:
        raise ValueError(f"no simulated model for {kind.name}; use a real meter") from None
    return model(capacity_w, seed)  # type: ignore[call-arg]
