"""A SunSpec-style meter served by a real pymodbus TCP server: read, differenced at the
interval boundaries, attested and verified."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from eth_account import Account
from node_support import DOMAIN, MONDAY, registered_key
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from gridflex.chain.anvil import free_port
from gridflex.rules.attestation import verify_unit
from gridflex.rules.types import DeviceKind, Direction
from node.devices import BoundarySampler, DeviceAdapter, MissingSampleError
from node.devices.modbus import ModbusMeter, ModbusReadError, SunSpecRegisterMap
from node.dispatch import CommandedDevice, DispatchController, DispatchOrder
from node.meter_loop import MeteredDevice, MeterLoop
from node.outbox import Outbox
from node.strategy import availability_for

INTERVAL = 900
REGISTERS = SunSpecRegisterMap()


@dataclass
class MeterRegisters:
    """What the simulated meter exposes; the test moves the accumulators."""

    imported_raw: int = 0
    exported_raw: int = 0
    energy_scale: int = 0
    power_raw: int = 0
    model_id: int = 203
    marker: tuple[int, int] = (0x5375, 0x6E53)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def words(self) -> dict[int, int]:
        with self.lock:
            return {
                REGISTERS.marker: self.marker[0],
                REGISTERS.marker + 1: self.marker[1],
                REGISTERS.model_id: self.model_id,
                REGISTERS.model_id + 1: 105,
                REGISTERS.power_w: self.power_raw & 0xFFFF,
                REGISTERS.power_scale: 0,
                REGISTERS.energy_exported: self.exported_raw >> 16,
                REGISTERS.energy_exported + 1: self.exported_raw & 0xFFFF,
                REGISTERS.energy_imported: self.imported_raw >> 16,
                REGISTERS.energy_imported + 1: self.imported_raw & 0xFFFF,
                REGISTERS.energy_scale: self.energy_scale & 0xFFFF,
            }

    def add(self, imported: int = 0, exported: int = 0) -> None:
        with self.lock:
            self.imported_raw = (self.imported_raw + imported) % 2**32
            self.exported_raw = (self.exported_raw + exported) % 2**32


@pytest.fixture
def meter_server() -> Iterator[tuple[MeterRegisters, int]]:
    """A pymodbus TCP server on a free port serving MeterRegisters as holding registers."""
    registers = MeterRegisters()
    port = free_port()

    async def refresh(
        function_code: int, start: int, address: int, count: int,
        current: list[int], set_values: object,
    ) -> None:  # fmt: skip
        for register, value in registers.words().items():
            if 0 <= register - start < len(current):
                current[register - start] = value

    device = SimDevice(
        id=1,
        simdata=[SimData(40000, count=100, values=0, datatype=DataType.REGISTERS)],
        action=refresh,
    )
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict[str, ModbusTcpServer] = {}

    async def serve() -> None:
        server = ModbusTcpServer(device, address=("127.0.0.1", port))
        holder["server"] = server
        started.set()
        await server.serve_forever()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    started.wait(5)
    time.sleep(0.2)  # serve_forever binds after it starts
    yield registers, port
    asyncio.run_coroutine_threadsafe(holder["server"].shutdown(), loop).result(5)
    thread.join(5)


def test_interval_energy_is_the_difference_of_the_accumulators(meter_server) -> None:
    registers, port = meter_server
    registers.add(imported=1_000_000, exported=5_000)
    meter = ModbusMeter("127.0.0.1", port, kind=DeviceKind.HEAT_PUMP, capacity_w=10_000)
    assert isinstance(meter, DeviceAdapter) and isinstance(meter, BoundarySampler)
    try:
        meter.sample_boundary(MONDAY)
        registers.add(imported=1_200, exported=200)
        meter.sample_boundary(MONDAY + INTERVAL)
        registers.add(exported=700)
        meter.sample_boundary(MONDAY + 2 * INTERVAL)

        assert meter.read_interval_energy_wh(MONDAY, INTERVAL) == 1_000
        assert meter.read_interval_energy_wh(MONDAY + INTERVAL, INTERVAL) == -700
        assert meter.read_interval_energy_wh(MONDAY, 2 * INTERVAL) == 300
        with pytest.raises(MissingSampleError):
            meter.read_interval_energy_wh(MONDAY + 2 * INTERVAL, INTERVAL)
    finally:
        meter.close()


def test_accumulator_wraparound_and_scale_factor(meter_server) -> None:
    registers, port = meter_server
    registers.imported_raw = 2**32 - 10
    registers.energy_scale = 1  # one count = 10 Wh
    registers.power_raw = -2_500 & 0xFFFF
    meter = ModbusMeter("127.0.0.1", port, capacity_w=10_000)
    try:
        meter.sample_boundary(MONDAY)
        registers.add(imported=25)  # wraps past 2**32
        meter.sample_boundary(MONDAY + INTERVAL)
        assert meter.read_interval_energy_wh(MONDAY, INTERVAL) == 250
        assert meter.read_power_w() == -2_500
    finally:
        meter.close()


def test_modbus_readings_are_attested_and_verify(meter_server, tmp_path: Path) -> None:
    registers, port = meter_server
    meter = ModbusMeter("127.0.0.1", port, kind=DeviceKind.HEAT_PUMP, capacity_w=10_000)
    key = bytes(Account.create().key)
    with Outbox(tmp_path / "outbox.sqlite", ["http://oracle"]) as outbox:
        loop = MeterLoop(outbox, [MeteredDevice(9, meter, key)], DOMAIN, interval_seconds=INTERVAL)
        for step, energy_wh in enumerate([400, 650, 0]):
            boundary = MONDAY + step * INTERVAL
            loop.attest_completed(boundary + 5, first_start=MONDAY)  # samples this boundary
            registers.add(imported=energy_wh)
        loop.attest_completed(MONDAY + 3 * INTERVAL + 5, first_start=MONDAY)
        units = [item.unit for item in outbox.pending("http://oracle", 10)]
    meter.close()
    assert [(u.first_interval_start, u.energy_wh) for u in units] == [
        (MONDAY, (400,)), (MONDAY + INTERVAL, (650,)), (MONDAY + 2 * INTERVAL, (0,))
    ]  # fmt: skip
    assert [u.sequence for u in units] == [0, 1, 2]
    for unit in units:
        verify_unit(unit, DOMAIN, registered_key(key))


def test_a_missed_boundary_leaves_a_gap_instead_of_a_guess(meter_server, tmp_path: Path) -> None:
    registers, port = meter_server
    meter = ModbusMeter("127.0.0.1", port, capacity_w=10_000)
    key = bytes(Account.create().key)
    with Outbox(tmp_path / "outbox.sqlite", ["http://oracle"]) as outbox:
        loop = MeterLoop(outbox, [MeteredDevice(9, meter, key)], DOMAIN, interval_seconds=INTERVAL)
        loop.attest_completed(MONDAY, first_start=MONDAY)
        registers.add(imported=100)
        loop.attest_completed(MONDAY + INTERVAL, first_start=MONDAY)
        registers.add(imported=200)  # the node is down at MONDAY + 2 * INTERVAL
        registers.add(imported=300)
        loop.attest_completed(MONDAY + 3 * INTERVAL, first_start=MONDAY)
        registers.add(imported=400)
        loop.attest_completed(MONDAY + 4 * INTERVAL, first_start=MONDAY)
        units = [item.unit for item in outbox.pending("http://oracle", 10)]
    meter.close()
    assert [(u.first_interval_start, u.energy_wh) for u in units] == [
        (MONDAY, (100,)), (MONDAY + 3 * INTERVAL, (400,))
    ]  # fmt: skip


def test_a_device_that_is_not_a_sunspec_meter_is_refused(meter_server) -> None:
    registers, port = meter_server
    registers.marker = (0x1234, 0x5678)
    meter = ModbusMeter("127.0.0.1", port, capacity_w=10_000)
    try:
        with pytest.raises(ModbusReadError, match="not a SunSpec meter"):
            meter.sample_boundary(MONDAY)
    finally:
        meter.close()


def test_a_modbus_meter_runs_behind_the_same_dispatch_and_meter_loop(
    meter_server, tmp_path: Path
) -> None:
    """The node drives a real meter through the same interface as a simulated model: the
    meter loop samples it through the command layer, dispatch logs that a meter cannot be
    commanded, and its readings stay what the meter measured."""
    registers, port = meter_server
    meter = ModbusMeter("127.0.0.1", port, kind=DeviceKind.HEAT_PUMP, capacity_w=10_000)
    commanded = CommandedDevice(meter)
    key = bytes(Account.create().key)
    db = sqlite3.connect(tmp_path / "node.sqlite", isolation_level=None)
    controller = DispatchController(db, {9: commanded})
    strategy = availability_for(meter)
    assert strategy(MONDAY, MONDAY + INTERVAL, Direction.REDUCE_CONSUMPTION) == 10_000
    controller.schedule([DispatchOrder(1, 9, Direction.REDUCE_CONSUMPTION, 2_000, MONDAY,
                                       MONDAY + 2 * INTERVAL)])  # fmt: skip
    with Outbox(tmp_path / "outbox.sqlite", ["http://oracle"]) as outbox:
        loop = MeterLoop(
            outbox, [MeteredDevice(9, commanded, key)], DOMAIN, interval_seconds=INTERVAL
        )
        for step, energy_wh in enumerate([400, 650]):
            boundary = MONDAY + step * INTERVAL
            (entry,) = controller.tick(boundary) or (None,)
            if step == 0:
                assert entry is not None and entry.action == "undeliverable"
                assert entry.reason == "no dispatch model for heat_pump: a meter only reads"
            loop.attest_completed(boundary + 5, first_start=MONDAY)
            registers.add(imported=energy_wh)
        loop.attest_completed(MONDAY + 2 * INTERVAL + 5, first_start=MONDAY)
        units = [item.unit for item in outbox.pending("http://oracle", 10)]
    meter.close()
    db.close()
    assert [(u.first_interval_start, u.energy_wh) for u in units] == [
        (MONDAY, (400,)), (MONDAY + INTERVAL, (650,))
    ]  # fmt: skip
