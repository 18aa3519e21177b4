"""From devices to signed units: backfill a day instantly, never re-sign an interval,
units of at most 96 intervals that verify against the device's registered key."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec
from eth_account import Account
from node_support import DAY, DOMAIN, MONDAY, FakeOracle, registered_key

from gridflex.rules.attestation import MeterUnit, verify_unit
from gridflex.rules.types import DeviceKind
from node.devices import simulated_device
from node.meter_loop import MeteredDevice, MeterLoop, run_node
from node.outbox import Outbox
from node.sender import Sender

INTERVAL = 900
ORACLE = "http://oracle"


def fleet() -> list[MeteredDevice]:
    return [
        MeteredDevice(
            1, simulated_device(DeviceKind.BATTERY, 5_000, 1), bytes(Account.create().key)
        ),
        MeteredDevice(
            2,
            simulated_device(DeviceKind.PV_INVERTER, 6_000, 2),
            ec.generate_private_key(ec.SECP256R1()),
        ),
    ]


def test_backfill_of_a_day_signs_one_verifiable_unit_per_device(tmp_path: Path) -> None:
    devices = fleet()
    with Outbox(tmp_path / "outbox.sqlite", [ORACLE]) as outbox:
        loop = MeterLoop(outbox, devices, DOMAIN, interval_seconds=INTERVAL)
        assert loop.backfill(MONDAY, MONDAY + DAY) == 2
        units = [item.unit for item in outbox.pending(ORACLE, 10)]
    for device, unit in zip(devices, units, strict=True):
        assert (unit.device_id, unit.first_interval_start, unit.sequence) == (
            device.device_id, MONDAY, 0
        )  # fmt: skip
        assert len(unit.energy_wh) == 96
        assert list(unit.energy_wh) == [
            device.adapter.read_interval_energy_wh(start, INTERVAL)
            for start in unit.interval_starts
        ]
        verify_unit(unit, DOMAIN, registered_key(device.signing_key))


def test_backfill_resumes_at_the_watermark_and_never_resigns(tmp_path: Path) -> None:
    devices = fleet()[:1]
    with Outbox(tmp_path / "outbox.sqlite", [ORACLE]) as outbox:
        loop = MeterLoop(outbox, devices, DOMAIN, interval_seconds=INTERVAL)
        loop.backfill(MONDAY, MONDAY + 6 * 3600)
        assert loop.backfill(MONDAY, MONDAY + 6 * 3600) == 0
        assert loop.backfill(MONDAY, MONDAY + 36 * 3600) == 2  # 30 h more: 96 + 24 intervals
        units = [item.unit for item in outbox.pending(ORACLE, 10)]
    assert [(u.sequence, u.first_interval_start, len(u.energy_wh)) for u in units] == [
        (0, MONDAY, 24),
        (1, MONDAY + 6 * 3600, 96),
        (2, MONDAY + 30 * 3600, 24),
    ]


def test_backfill_starts_and_ends_on_the_interval_grid(tmp_path: Path) -> None:
    with Outbox(tmp_path / "outbox.sqlite", [ORACLE]) as outbox:
        loop = MeterLoop(outbox, fleet()[:1], DOMAIN, interval_seconds=INTERVAL)
        loop.backfill(MONDAY + 100, MONDAY + 3 * INTERVAL + 899)
        (item,) = outbox.pending(ORACLE, 10)
    assert item.unit.first_interval_start == MONDAY
    assert len(item.unit.energy_wh) == 3


def test_run_node_signs_each_completed_interval_and_delivers_it(
    tmp_path: Path, oracle_server: Callable[[FakeOracle], str]
) -> None:
    oracle = FakeOracle()
    url = oracle_server(oracle)
    started = time.monotonic()

    def compressed_clock() -> float:
        """One real second is one hour of node time."""
        return MONDAY + (time.monotonic() - started) * 3600

    stop = threading.Event()
    with Outbox(tmp_path / "outbox.sqlite", [url]) as outbox:
        loop = MeterLoop(outbox, fleet()[:1], DOMAIN, interval_seconds=INTERVAL)
        sender = Sender(outbox, batch_size=10)
        runner = threading.Thread(
            target=run_node, args=(loop, sender, stop),
            kwargs={"clock": compressed_clock, "max_wait_s": 0.02},
        )  # fmt: skip
        runner.start()
        time.sleep(1.2)
        stop.set()
        runner.join(5)
        sender.drain(timeout_s=10)
        sender.close()
        assert outbox.stored_count() == 0
    units = [MeterUnit.from_json(oracle.stored[key]) for key in sorted(oracle.stored)]
    assert len(units) >= 3
    assert [u.sequence for u in units] == list(range(len(units)))
    assert [u.first_interval_start for u in units] == [
        MONDAY + i * INTERVAL for i in range(len(units))
    ]


def test_a_half_hourly_node_signs_its_history_in_1800_s_intervals(tmp_path: Path) -> None:
    """The metering length is the node's setting, not a fixed 15-minute grid: a day is 48
    readings of 1,800 s, each the device's energy over its half hour."""
    devices = fleet()
    with Outbox(tmp_path / "outbox.sqlite", [ORACLE]) as outbox:
        loop = MeterLoop(outbox, devices, DOMAIN, interval_seconds=1800)
        assert loop.backfill(MONDAY + 600, MONDAY + DAY + 1799) == 2
        units = [item.unit for item in outbox.pending(ORACLE, 10)]
    for device, unit in zip(devices, units, strict=True):
        assert (unit.first_interval_start, unit.interval_seconds) == (MONDAY, 1800)
        assert len(unit.energy_wh) == 48
        assert list(unit.energy_wh) == [
            device.adapter.read_interval_energy_wh(start, 1800) for start in unit.interval_starts
        ]
        verify_unit(unit, DOMAIN, registered_key(device.signing_key))
