"""A real meter over Modbus TCP, read with the pymodbus client: SunSpec-style AC meter
registers (model 203, three-phase wye meter; 201/202/204 share the energy points).

Register map (holding registers, 0-based protocol addresses; `SunSpecRegisterMap` lets a
vendor's map differ):

| address | registers | type   | point     | meaning                                       |
|---------|-----------|--------|-----------|-----------------------------------------------|
| 40000   | 2         | string | SunS      | SunSpec marker 0x5375 0x6E53                  |
| 40002   | 1         | uint16 | ID        | model id (203)                                |
| 40003   | 1         | uint16 | L         | model length in registers                     |
| 40020   | 1         | int16  | W         | total real power (W x 10^W_SF), + = import    |
| 40024   | 1         | int16  | W_SF      | power scale factor                            |
| 40040   | 2         | acc32  | TotWhExp  | total energy exported, Wh x 10^TotWh_SF       |
| 40048   | 2         | acc32  | TotWhImp  | total energy imported, Wh x 10^TotWh_SF       |
| 40056   | 1         | int16  | TotWh_SF  | energy scale factor                           |

(Addresses are the model start 40002 plus the SunSpec 203 offsets 18, 22, 38, 46, 54.)
Accumulators are unsigned 32-bit, big-endian word order, and wrap to zero; the node takes
differences modulo 2**32. Interval energy = (import delta - export delta) x 10^TotWh_SF,
so a meter must be sampled at every interval boundary (`sample_boundary`).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from pymodbus.client import ModbusTcpClient
from pymodbus.exceptions import ModbusException

from gridflex.rules.types import DeviceKind, Direction
from node.devices.base import (
    DEFAULT_COMFORT,
    NO_COMMANDS,
    ComfortBand,
    Command,
    MissingSampleError,
    Schedule,
)
from node.errors import NodeError

SUNSPEC_MARKER = (0x5375, 0x6E53)  # "SunS"
ACC32_MODULUS = 2**32
MAX_KEPT_SAMPLES = 1_000  # about ten days of 15-minute boundaries


class ModbusReadError(NodeError):
    """The meter did not answer, answered with a Modbus exception, or is not SunSpec."""


@dataclass(frozen=True)
class SunSpecRegisterMap:
    marker: int = 40000
    model_id: int = 40002
    power_w: int = 40020
    power_scale: int = 40024
    energy_exported: int = 40040
    energy_imported: int = 40048
    energy_scale: int = 40056
    expected_models: tuple[int, ...] = (201, 202, 203, 204)


@dataclass(frozen=True)
class AccumulatorSample:
    """Raw accumulator registers at one boundary (scale applied only to differences)."""

    imported: int
    exported: int
    scale: int


def _int16(register: int) -> int:
    return register - 0x10000 if register & 0x8000 else register


def _scaled(raw: int, scale: int) -> int:
    """raw x 10^scale as an integer (rounded toward zero for negative scales)."""
    if scale >= 0:
        return raw * 10**scale
    quotient = abs(raw) // 10**-scale
    return quotient if raw >= 0 else -quotient


class ModbusMeter:
    """A metered device read over Modbus TCP (implements DeviceAdapter, BoundarySampler).

    A meter only reads: it cannot be commanded (dispatch logs why), its readings are what
    the site did whatever was commanded, and it offers the owner's offer limit."""

    def __init__(
        self,
        host: str,
        port: int = 502,
        *,
        kind: DeviceKind = DeviceKind.OTHER,
        capacity_w: int,
        unit_id: int = 1,
        register_map: SunSpecRegisterMap | None = None,
        timeout_s: float = 3.0,
    ) -> None:
        self._kind = kind
        self._capacity_w = capacity_w
        self.unit_id = unit_id
        self.registers = register_map or SunSpecRegisterMap()
        self.client = ModbusTcpClient(host, port=port, timeout=timeout_s, retries=1)
        self._samples: OrderedDict[int, AccumulatorSample] = OrderedDict()
        self._checked_model = False

    @property
    def kind(self) -> DeviceKind:
        return self._kind

    @property
    def capacity_w(self) -> int:
        return self._capacity_w

    def close(self) -> None:
        self.client.close()

    def _read(self, address: int, count: int) -> list[int]:
        if not self.client.connected and not self.client.connect():
            raise ModbusReadError(f"no Modbus TCP meter answers at {self.client}")
        try:
            response = self.client.read_holding_registers(
                address, count=count, device_id=self.unit_id
            )
        except ModbusException as error:
            raise ModbusReadError(f"reading register {address} failed: {error}") from error
        if response.isError():
            raise ModbusReadError(f"meter refused register {address}: {response}")
        return list(response.registers)

    def _check_model(self) -> None:
        """Refuse a device that is not a SunSpec meter: its registers would mean something
        else, and a wrong reading signed by the device key is worse than none."""
        if self._checked_model:
            return
        marker = tuple(self._read(self.registers.marker, 2))
        (model_id,) = self._read(self.registers.model_id, 1)
        if marker != SUNSPEC_MARKER or model_id not in self.registers.expected_models:
            raise ModbusReadError(
                f"not a SunSpec meter (marker {marker}, model {model_id}); "
                f"expected models {self.registers.expected_models}"
            )
        self._checked_model = True

    def read_accumulators(self) -> AccumulatorSample:
        self._check_model()
        exported = self._read(self.registers.energy_exported, 2)
        imported = self._read(self.registers.energy_imported, 2)
        (scale,) = self._read(self.registers.energy_scale, 1)
        return AccumulatorSample(
            imported=(imported[0] << 16) | imported[1],
            exported=(exported[0] << 16) | exported[1],
            scale=_int16(scale),
        )

    def read_power_w(self) -> int:
        """Instantaneous real power in W (+ import), for dispatch and display."""
        self._check_model()
        (power,) = self._read(self.registers.power_w, 1)
        (scale,) = self._read(self.registers.power_scale, 1)
        return _scaled(_int16(power), _int16(scale))

    def sample_boundary(self, boundary: int) -> None:
        """Record the accumulators at interval boundary `boundary` (unix seconds)."""
        self._samples[boundary] = self.read_accumulators()
        while len(self._samples) > MAX_KEPT_SAMPLES:
            self._samples.popitem(last=False)

    def power_w(self, at: int, schedule: Schedule = NO_COMMANDS) -> float:
        """The meter's power now (`at` is the caller's clock: a meter has no history)."""
        return float(self.read_power_w())

    def available_w(
        self, start: int, end: int, direction: Direction, comfort: ComfortBand = DEFAULT_COMFORT
    ) -> int:
        return self.capacity_w

    def refusal(self, command: Command) -> str | None:
        return f"no dispatch model for {self.kind.name.lower()}: a meter only reads"

    def read_interval_energy_wh(
        self, interval_start: int, interval_seconds: int, schedule: Schedule = NO_COMMANDS
    ) -> int:
        """Energy between the boundary samples (a schedule changes nothing: the meter
        measures what the site did)."""
        interval_end = interval_start + interval_seconds
        try:
            first, last = self._samples[interval_start], self._samples[interval_end]
        except KeyError as missing:
            raise MissingSampleError(
                f"meter not sampled at boundary {missing.args[0]} of interval {interval_start}"
            ) from None
        imported = (last.imported - first.imported) % ACC32_MODULUS
        exported = (last.exported - first.exported) % ACC32_MODULUS
        return _scaled(imported - exported, last.scale)
