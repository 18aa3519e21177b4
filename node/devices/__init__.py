"""Device adapters: one interface (`DeviceAdapter`: metering, availability, dispatch), the
simulated physics models (one module per kind) and a Modbus TCP / SunSpec meter."""

from node.devices.base import (
    BoundarySampler,
    ComfortBand,
    Command,
    DeviceAdapter,
    MissingSampleError,
    Schedule,
)
from node.devices.simulated import SimulatedDevice, simulated_device

__all__ = [
    "BoundarySampler",
    "ComfortBand",
    "Command",
    "DeviceAdapter",
    "MissingSampleError",
    "Schedule",
    "SimulatedDevice",
    "simulated_device",
]
