"""Device adapters: one small interface (`DeviceAdapter`), simulated physics models and a
Modbus TCP / SunSpec meter."""

from node.devices.base import BoundarySampler, DeviceAdapter, MissingSampleError
from node.devices.simulated import SimulatedDevice, simulated_device

__all__ = [
    "BoundarySampler",
    "DeviceAdapter",
    "MissingSampleError",
    "SimulatedDevice",
    "simulated_device",
]
