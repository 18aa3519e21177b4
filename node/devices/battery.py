"""A simulated home battery: a night charge, an evening discharge, and dispatch within its
reserve, full mark and rated power."""

from __future__ import annotations

import numpy as np

from gridflex.rules.types import DeviceKind, Direction
from node.devices.base import ComfortBand, Command
from node.devices.simulation import (
    MINUTES_PER_DAY,
    REDUCE,
    SECONDS_PER_DAY,
    STANDBY_W,
    SimulatedDevice,
    minute_of_day,
    minute_window,
)


class HomeBattery(SimulatedDevice):
    """A home battery on its own meter: charges from the grid in the cheap night hours
    (01:00-05:00) and covers the household's evening peak (17:00-22:00) by exporting.

    Energy capacity = 2 h at rated power; state of charge stays within [10 %, 95 %];
    round-trip losses 5 % each way; standby draw 10 W.
    """

    KIND = DeviceKind.BATTERY
    kind_salt = 1
    sheds_at_most_its_draw = False  # it discharges past its own use
    HOURS_OF_STORAGE = 2
    RESERVE = 0.10
    FULL = 0.95
    EFFICIENCY = 0.95
    CHARGE_WINDOW = (1.0, 5.0)
    PEAK_WINDOW = (17.0, 22.0)

    def __init__(self, capacity_w: int, seed: int) -> None:
        super().__init__(capacity_w, seed)
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
        charge_start, charge_end = map(minute_of_day, self.CHARGE_WINDOW)
        peak_start, peak_end = map(minute_of_day, self.PEAK_WINDOW)
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

    @property
    def reserve_wh(self) -> float:
        return self.RESERVE * self.energy_capacity_wh

    @property
    def full_wh(self) -> float:
        return self.FULL * self.energy_capacity_wh

    def stored_before_wh(self, at: int) -> float:
        """The planned stored energy at the start of the minute containing `at` (each day
        starts from the reserve)."""
        if at % SECONDS_PER_DAY < 60:
            return self.reserve_wh
        return self.state_of_charge_wh(at - 60)

    # ─── Availability and dispatch ────────────────────────────────────────────────────

    def _offer_w(self, start: int, end: int, direction: Direction, comfort: ComfortBand) -> int:
        """Reduce = discharge, limited by the energy above the reserve at window start;
        increase = charge, limited by the headroom below the full mark; both within the
        rated power left beside what it does anyway (a battery already discharging 1.6 kW
        into the evening load can add only the rest)."""
        soc = self.state_of_charge_wh(start)
        if direction == REDUCE:
            energy = (soc - self.reserve_wh) * self.EFFICIENCY
        else:
            energy = (self.full_wh - soc) / self.EFFICIENCY
        natural_w = self.mean_power_w(start, end)
        if direction == REDUCE:
            headroom_w = self.capacity_w + natural_w
        else:
            headroom_w = self.capacity_w - natural_w
        return max(0, min(headroom_w, int(energy * 3600 // (end - start))))

    def refusal(self, command: Command) -> str | None:
        if command.direction == REDUCE and self.stored_before_wh(command.start) <= (
            self.reserve_wh + 1
        ):
            return "battery at its reserve"
        return None

    def _commanded_day(
        self, day: int, commands: tuple[Command, ...], comfort: ComfortBand
    ) -> np.ndarray:
        """Reduce = discharge `power_w` more than planned, increase = charge more; never
        beyond its rated power and never below its reserve / above its full mark (the
        planned state of charge plus what the commands moved, with its efficiency)."""
        power = np.array(self.day_power_w(day), dtype=float)
        self.state_of_charge_wh(day * SECONDS_PER_DAY)  # makes sure the SoC is computed
        planned_soc = self._soc[day]
        reserve, full, eff = self.reserve_wh, self.full_wh, self.EFFICIENCY
        moved_wh = 0.0  # stored energy added (+) or taken (-) by commands so far
        wanted = np.zeros((MINUTES_PER_DAY, 2))  # extra W per minute: [discharge, charge]
        for command in commands:
            lo, hi = minute_window(command, day)
            wanted[lo:hi, 0 if command.direction == REDUCE else 1] += command.power_w
        for minute in np.flatnonzero(wanted.any(axis=1)):
            before = (planned_soc[minute - 1] if minute else reserve) + moved_wh
            discharge, charge = wanted[minute]
            net = charge - discharge
            if net < 0:
                room_w = max(0.0, (before - reserve) * 60 * eff)
                delta = -min(-net, power[minute] + self.capacity_w, room_w)
                moved_wh += delta / eff / 60
            else:
                room_w = max(0.0, (full - before) * 60 / eff)
                delta = min(net, self.capacity_w - power[minute], room_w)
                moved_wh += delta * eff / 60
            power[minute] += delta
        return power
