"""Dispatch: per device kind, a commanded window meters about the committed power x time
away from the undisturbed model (within physics limits) and the meter is restored after
it; a device that cannot deliver is logged as such with its meter unchanged; the dispatch
log and the command schedule survive a reopen."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from gridflex.rules.types import DeviceKind, Direction
from node.devices.simulated import simulated_device
from node.dispatch import CommandedDevice, DispatchController, DispatchOrder
from node.strategy import Commitment

DAY = 20_000  # a weekday (2024-10-04, a Friday): the factory works, a car plugs in at 18:44
T0 = DAY * 86_400
H = 3600
REDUCE, INCREASE = Direction.REDUCE_CONSUMPTION, Direction.INCREASE_CONSUMPTION

CASES = [
    # kind, capacity W, direction, committed W, window start hour, minimum share delivered
    (DeviceKind.BATTERY, 5_000, REDUCE, 3_000, 6, 0.98),
    (DeviceKind.BATTERY, 5_000, INCREASE, 3_000, 23, 0.98),
    (DeviceKind.EV_CHARGER, 11_000, REDUCE, 10_000, 19, 0.98),
    (DeviceKind.HEAT_PUMP, 3_000, REDUCE, 2_500, 7, 0.9),
    (DeviceKind.HVAC, 3_000, REDUCE, 1_800, 6, 0.9),
    (DeviceKind.INDUSTRIAL_LOAD, 100_000, REDUCE, 20_000, 10, 0.98),
    (DeviceKind.PV_INVERTER, 6_000, INCREASE, 3_000, 11, 0.98),
]


def _controller(db_path: Path, kind: DeviceKind, capacity_w: int, device_id: int = 1):
    db = sqlite3.connect(db_path, isolation_level=None)
    device = CommandedDevice(simulated_device(kind, capacity_w, seed=7))
    return db, device, DispatchController(db, {device_id: device})


@pytest.mark.parametrize(("kind", "capacity", "direction", "power", "hour", "share"), CASES)
def test_commanded_window_delivers_and_is_restored(
    tmp_path: Path, kind, capacity, direction, power, hour, share
) -> None:
    _db, device, controller = _controller(tmp_path / "node.sqlite", kind, capacity)
    baseline = simulated_device(kind, capacity, seed=7)
    start, end = T0 + hour * H, T0 + (hour + 1) * H
    controller.schedule([DispatchOrder(9, 1, direction, power, start, end)])
    assert controller.tick(start - 60) == []
    [commanded] = controller.tick(start)
    assert commanded.action == "commanded" and commanded.reason is None

    delta = device.read_interval_energy_wh(start, H) - baseline.read_interval_energy_wh(start, H)
    sign = -1 if direction == REDUCE else 1
    assert sign * delta >= share * power  # about committed power x 1 h
    assert sign * delta <= 1.15 * power or kind in (DeviceKind.HEAT_PUMP, DeviceKind.HVAC)
    assert commanded.expected_wh == delta  # the log's expectation is what the meter shows
    # Re-reads agree; 15-minute intervals add up to the hour.
    quarters = [device.read_interval_energy_wh(start + q * 900, 900) for q in range(4)]
    assert abs(sum(quarters) - device.read_interval_energy_wh(start, H)) <= 2
    # Before the window the meter is the baseline.
    assert device.read_interval_energy_wh(start - H, H) == baseline.read_interval_energy_wh(
        start - H, H
    )

    [restored] = controller.tick(end)
    assert restored.action == "restored"
    assert controller.tick(end + H) == []
    if kind in (DeviceKind.HEAT_PUMP, DeviceKind.HVAC):
        # Setpoint back: after the recovery the building is back in its thermostat band.
        model = device.device
        shifted = model.simulate_day(DAY, _shift(device, start, end))[1]
        later = (end - T0) // 60 + 180
        setpoint = model.day_setpoint_c
        assert abs(shifted[later] - setpoint) <= model.HYSTERESIS_K + 0.3
    else:
        after = [device.read_interval_energy_wh(end + q * 900, 900) for q in range(4)]
        assert after == [baseline.read_interval_energy_wh(end + q * 900, 900) for q in range(4)]


def _shift(device: CommandedDevice, start: int, end: int):
    model = device.device
    power = device.day_power_w(DAY)
    # Re-derive the commanded setpoint shift the controller used (same formula).
    shift = np.zeros(1440)
    lo, hi = (start - T0) // 60, (end - T0) // 60
    target = (
        device.comfort_min_c + model.HYSTERESIS_K
        if model.heating
        else device.comfort_max_c - model.HYSTERESIS_K
    )
    nominal = model.night_setpoint_c if lo < 360 else model.day_setpoint_c
    shift[lo:hi] = target - nominal
    assert (model.simulate_day(DAY, shift)[0].clip(-3000, 3000) == power).all()
    return shift


def test_battery_reduce_stops_at_reserve(tmp_path: Path) -> None:
    """Asked for more than it holds, the battery delivers what is above its reserve and
    the log says so (partial) instead of pretending."""
    _db, device, controller = _controller(tmp_path / "node.sqlite", DeviceKind.BATTERY, 5_000)
    start = T0 + 6 * H
    controller.schedule([DispatchOrder(3, 1, REDUCE, 5_000, start, start + 3 * H)])
    [entry] = controller.tick(start)
    battery = device.device
    stored = battery.state_of_charge_wh(start - 60) - battery.RESERVE * battery.energy_capacity_wh
    delta = device.read_interval_energy_wh(start, 3 * H) - battery.read_interval_energy_wh(
        start, 3 * H
    )
    assert entry.action == "commanded" and entry.reason.startswith("partial")
    assert -delta <= stored * battery.EFFICIENCY + 1
    assert -delta >= 0.98 * stored * battery.EFFICIENCY
    assert entry.expected_wh == delta


@pytest.mark.parametrize(
    ("kind", "capacity", "direction", "hour", "reason"),
    [
        (DeviceKind.EV_CHARGER, 11_000, REDUCE, 12, "EV not plugged in at window start"),
        (DeviceKind.BATTERY, 5_000, REDUCE, 0, "battery at its reserve"),
        (DeviceKind.PV_INVERTER, 6_000, INCREASE, 23, "no effect"),
        (DeviceKind.INDUSTRIAL_LOAD, 100_000, INCREASE, 10, "cannot add a process"),
    ],
)
def test_undeliverable_is_logged_and_meter_unchanged(
    tmp_path: Path, kind, capacity, direction, hour, reason
) -> None:
    _db, device, controller = _controller(tmp_path / "node.sqlite", kind, capacity)
    start = T0 + hour * H
    before = device.read_interval_energy_wh(start, H)
    controller.schedule([DispatchOrder(4, 1, direction, 2_000, start, start + H)])
    [entry] = controller.tick(start + 30)
    assert entry.action == "undeliverable" and reason in entry.reason
    assert entry.expected_wh is None and entry.committed_wh == (
        -2_000 if direction == REDUCE else 2_000
    )
    assert device.commands == ()
    assert device.read_interval_energy_wh(start, H) == before
    assert controller.tick(start + 2 * H) == []  # nothing to restore


def test_log_and_schedule_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "node.sqlite"
    ev_start, ev_end = T0 + 19 * H, T0 + 20 * H
    db, device, controller = _controller(path, DeviceKind.EV_CHARGER, 11_000, device_id=5)
    orders = [
        DispatchOrder.from_commitment(Commitment(7, 5, 8_000, ev_start, ev_end), REDUCE),
        DispatchOrder(8, 5, REDUCE, 2_000, T0 + 12 * H, T0 + 13 * H),  # unplugged
    ]
    controller.schedule(orders)
    controller.tick(T0 + 12 * H)
    controller.tick(ev_start + 120)  # node came up 2 minutes late: acts from then on
    commanded_reading = device.read_interval_energy_wh(ev_start, H)
    db.close()

    db, device, controller = _controller(path, DeviceKind.EV_CHARGER, 11_000, device_id=5)
    # The active command is reloaded: the meter shows the same delivery after the restart.
    assert device.read_interval_energy_wh(ev_start, H) == commanded_reading
    controller.schedule(orders)  # a replayed award does not dispatch twice
    assert [e.action for e in controller.tick(ev_end)] == ["restored"]
    db.close()

    db, device, controller = _controller(path, DeviceKind.EV_CHARGER, 11_000, device_id=5)
    log = controller.log()
    assert [(e.request_id, e.action) for e in log] == [
        (8, "undeliverable"), (7, "commanded"), (7, "restored")
    ]  # fmt: skip
    assert log[0].reason == "EV not plugged in at window start"
    assert log[1].at == ev_start + 120 and log[1].expected_wh < -0.95 * 8_000 * 58 / 60
    assert controller.log(request_id=7) == log[1:]
    # The finished command still shapes history: re-reading the window agrees.
    assert device.read_interval_energy_wh(ev_start, H) == commanded_reading
    assert controller.tick(ev_end + H) == []
    db.close()
