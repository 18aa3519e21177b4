"""The one interface the meter loop needs from a device: how much energy crossed its meter
in an interval. Simulated physics models and real meters (Modbus/SunSpec) both fit it."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from gridflex.rules.types import DeviceKind


@runtime_checkable
class DeviceAdapter(Protocol):
    """A metered device. Energy is integer Wh: imported positive, exported negative."""

    @property
    def kind(self) -> DeviceKind: ...

    @property
    def capacity_w(self) -> int: ...

    def read_interval_energy_wh(self, interval_start: int, interval_seconds: int) -> int:
        """Energy over [interval_start, interval_start + interval_seconds), unix seconds."""
        ...


@runtime_checkable
class BoundarySampler(Protocol):
    """A device whose meter is an accumulator: it must be sampled at each interval
    boundary (the live loop calls `sample_boundary`) before intervals can be read."""

    def sample_boundary(self, boundary: int) -> None: ...


class MissingSampleError(LookupError):
    """An accumulator meter was not sampled at a boundary of the requested interval."""
