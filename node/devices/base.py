"""The one interface the node needs from a device, for metering, availability and dispatch.
Simulated physics models and real meters (Modbus/SunSpec) both implement it, so the meter
loop, the bidding strategy and dispatch never ask which kind of device they hold."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from gridflex.rules.types import DeviceKind, Direction


@dataclass(frozen=True)
class Command:
    """Change the device's consumption by `power_w` over [start, end) (unix s, minutes)."""

    request_id: int
    device_id: int
    direction: Direction
    power_w: int
    start: int
    end: int


@dataclass(frozen=True)
class ComfortBand:
    """The indoor temperatures (C) the occupants accept while a thermal device is
    dispatched: it bounds what heat pumps and air conditioning offer and how far their
    setpoint moves on command."""

    min_c: float = 18.0
    max_c: float = 26.0


DEFAULT_COMFORT = ComfortBand()


@dataclass(frozen=True)
class Schedule:
    """What a device is asked to do: the commands in effect and the comfort band it keeps
    while commanded. A meter reads under a schedule (`NO_COMMANDS`: as planned)."""

    commands: tuple[Command, ...] = ()
    comfort: ComfortBand = DEFAULT_COMFORT


NO_COMMANDS = Schedule()


@runtime_checkable
class DeviceAdapter(Protocol):
    """A metered device. Energy is integer Wh: imported positive, exported negative."""

    @property
    def kind(self) -> DeviceKind: ...

    @property
    def capacity_w(self) -> int: ...

    def read_interval_energy_wh(
        self, interval_start: int, interval_seconds: int, schedule: Schedule = NO_COMMANDS
    ) -> int:
        """Metering: energy over [interval_start, interval_start + interval_seconds), as
        the meter shows it under `schedule` (a real meter: what happened)."""
        ...

    def power_w(self, at: int, schedule: Schedule = NO_COMMANDS) -> float:
        """Mean power (W) in the minute containing `at` (a real meter: its power now)."""
        ...

    def available_w(
        self, start: int, end: int, direction: Direction, comfort: ComfortBand = DEFAULT_COMFORT
    ) -> int:
        """Availability: the power (W) the device can deliver throughout [start, end) in
        `direction` (the bidding strategy offers at most this)."""
        ...

    def refusal(self, command: Command) -> str | None:
        """Dispatch: why the device cannot carry out `command` now (None: it can)."""
        ...


@runtime_checkable
class BoundarySampler(Protocol):
    """A device whose meter is an accumulator: it must be sampled at each interval
    boundary (the live loop calls `sample_boundary`) before intervals can be read."""

    def sample_boundary(self, boundary: int) -> None: ...


class MissingSampleError(LookupError):
    """An accumulator meter was not sampled at a boundary of the requested interval."""
