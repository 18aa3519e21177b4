"""Simulated device physics: plausible shapes, limits respected, deterministic per seed."""

from __future__ import annotations

import pytest
from node_support import DAY, MONDAY

from gridflex.rules.types import DeviceKind
from node.devices import DeviceAdapter, simulated_device
from node.devices.simulated import (
    EVCharger,
    HeatPump,
    HomeBattery,
    IndustrialLoad,
    PVInverter,
    ThermalDevice,
)

INTERVAL = 900
HOUR = 3600
ALL_KINDS = [
    (DeviceKind.BATTERY, 5_000),
    (DeviceKind.EV_CHARGER, 11_000),
    (DeviceKind.HEAT_PUMP, 3_000),
    (DeviceKind.HVAC, 4_000),
    (DeviceKind.PV_INVERTER, 6_000),
    (DeviceKind.INDUSTRIAL_LOAD, 250_000),
]


def day_readings(device: DeviceAdapter, day_start: int) -> list[int]:
    return [device.read_interval_energy_wh(day_start + i * INTERVAL, INTERVAL) for i in range(96)]


def test_battery_state_of_charge_stays_within_limits_for_a_week() -> None:
    battery = HomeBattery(5_000, seed=7)
    lowest = HomeBattery.RESERVE * battery.energy_capacity_wh
    highest = HomeBattery.FULL * battery.energy_capacity_wh
    for minute in range(0, 7 * DAY, 60):
        assert lowest - 1e-6 <= battery.state_of_charge_wh(MONDAY + minute) <= highest + 1e-6


def test_battery_charges_at_night_and_exports_in_the_evening_peak() -> None:
    battery = HomeBattery(5_000, seed=7)
    readings = day_readings(battery, MONDAY)
    night = readings[4:20]  # 01:00-05:00
    evening = readings[68:88]  # 17:00-22:00
    assert sum(night) > 0.8 * battery.energy_capacity_wh * (HomeBattery.FULL - 0.1)
    assert sum(evening) < 0
    assert all(abs(value) <= 5_000 * INTERVAL / HOUR for value in readings)


def test_pv_is_zero_at_night_and_exports_at_noon() -> None:
    pv = PVInverter(6_000, seed=3)
    for day in range(5):
        start = MONDAY + day * DAY
        assert pv.read_interval_energy_wh(start + 2 * HOUR, INTERVAL) == 0
        assert pv.read_interval_energy_wh(start + 23 * HOUR, INTERVAL) == 0
        assert pv.read_interval_energy_wh(start + 12 * HOUR, INTERVAL) < 0
        assert all(value <= 0 for value in day_readings(pv, start))


def test_ev_charges_only_while_plugged_and_never_more_than_the_car_wants() -> None:
    charger = EVCharger(11_000, seed=5)
    for minute in range(0, 7 * DAY, 60):
        at = MONDAY + minute
        if charger.power_w(at) > 0:
            assert charger.is_plugged(at)
    sessions = [s for day in range(20_003, 20_010) if (s := charger.session(day)) is not None]
    assert sessions, "a week without a single charging session"
    for session in sessions:
        delivered_wh = sum(
            charger.power_w(at) / 60 for at in range(session.plug_in, session.unplug, 60)
        )
        assert delivered_wh <= session.energy_wh + 1
        assert charger.power_w(session.plug_in) > 0.9 * 11_000 * 0.97


@pytest.mark.parametrize("kind", [DeviceKind.HEAT_PUMP, DeviceKind.HVAC])
def test_thermostat_keeps_indoor_temperature_near_setpoint(kind: DeviceKind) -> None:
    device = simulated_device(kind, 3_000 if kind == DeviceKind.HEAT_PUMP else 4_000, seed=11)
    assert isinstance(device, ThermalDevice)
    for hour in range(8, 22):  # daytime setpoint, after the morning recovery
        indoor_c = device.indoor_temperature_c(MONDAY + hour * HOUR)
        assert abs(indoor_c - device.day_setpoint_c) <= 1.5, (hour, indoor_c)
    assert sum(day_readings(device, MONDAY)) > 1_000  # the compressor did run


def test_heat_pump_uses_more_energy_on_a_colder_day() -> None:
    pump = HeatPump(3_000, seed=2)
    by_day = {
        day: (pump.outdoor_temperature_c(day).mean(), sum(day_readings(pump, day * DAY)))
        for day in range(20_003, 20_017)
    }
    coldest = min(by_day.values())
    warmest = max(by_day.values())
    assert coldest[1] > warmest[1]


def test_industrial_load_follows_shifts_on_weekdays_only() -> None:
    factory = IndustrialLoad(250_000, seed=9)
    monday = sum(day_readings(factory, MONDAY))
    saturday = sum(day_readings(factory, MONDAY + 5 * DAY))
    assert monday > 2 * saturday
    assert factory.read_interval_energy_wh(MONDAY + 10 * HOUR, INTERVAL) > (
        3 * factory.read_interval_energy_wh(MONDAY + 3 * HOUR, INTERVAL)
    )


@pytest.mark.parametrize(("kind", "capacity_w"), ALL_KINDS)
def test_readings_are_deterministic_for_a_seed_and_within_capacity(
    kind: DeviceKind, capacity_w: int
) -> None:
    first = simulated_device(kind, capacity_w, seed=42)
    again = simulated_device(kind, capacity_w, seed=42)
    other = simulated_device(kind, capacity_w, seed=43)
    readings = day_readings(first, MONDAY) + day_readings(first, MONDAY + DAY)
    assert readings == day_readings(again, MONDAY) + day_readings(again, MONDAY + DAY)
    assert day_readings(first, MONDAY) == readings[:96]  # a re-read gives the same value
    assert readings != day_readings(other, MONDAY) + day_readings(other, MONDAY + DAY)
    assert all(isinstance(value, int) for value in readings)
    assert max(abs(value) for value in readings) <= capacity_w * INTERVAL // HOUR


def test_hourly_energy_is_the_sum_of_its_quarter_hours_within_rounding() -> None:
    factory = IndustrialLoad(250_000, seed=1)
    start = MONDAY + 9 * HOUR
    hour_wh = factory.read_interval_energy_wh(start, HOUR)
    quarters = [factory.read_interval_energy_wh(start + i * INTERVAL, INTERVAL) for i in range(4)]
    assert abs(hour_wh - sum(quarters)) <= 2


def test_an_interval_across_midnight_is_metered_from_both_days() -> None:
    factory = IndustrialLoad(100_000, seed=1)
    across = factory.read_interval_energy_wh(MONDAY + DAY - INTERVAL, 2 * INTERVAL)
    halves = factory.read_interval_energy_wh(
        MONDAY + DAY - INTERVAL, INTERVAL
    ) + factory.read_interval_energy_wh(MONDAY + DAY, INTERVAL)
    assert abs(across - halves) <= 1


def test_other_kind_has_no_simulation() -> None:
    with pytest.raises(ValueError, match="real meter"):
        simulated_device(DeviceKind.OTHER, 1_000, seed=1)
