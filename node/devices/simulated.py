"""The simulated device models, one per kind (physics in `node.devices.simulation` and one
module per kind). A new kind is one module with its `SimulatedDevice` subclass, its
`DeviceKind` (`gridflex.rules.types`, mirroring `IDeviceRegistry.DeviceKind`) and its entry
in `SIMULATED_MODELS` below."""

from __future__ import annotations

from gridflex.rules.types import DeviceKind
from node.devices.battery import HomeBattery
from node.devices.ev_charger import ChargingSession, EVCharger
from node.devices.industrial import IndustrialLoad
from node.devices.pv import PVInverter
from node.devices.simulation import MINUTES_PER_DAY, SECONDS_PER_DAY, SimulatedDevice
from node.devices.thermal import HVAC, HeatPump, ThermalDevice

__all__ = [
    "HVAC",
    "MINUTES_PER_DAY",
    "SECONDS_PER_DAY",
    "ChargingSession",
    "EVCharger",
    "HeatPump",
    "HomeBattery",
    "IndustrialLoad",
    "PVInverter",
    "SimulatedDevice",
    "ThermalDevice",
    "simulated_device",
]

SIMULATED_MODELS: dict[DeviceKind, type[SimulatedDevice]] = {
    model.KIND: model
    for model in (HomeBattery, EVCharger, HeatPump, HVAC, IndustrialLoad, PVInverter)
}


def simulated_device(kind: DeviceKind, capacity_w: int, seed: int) -> SimulatedDevice:
    """The simulated model of `kind` (OTHER has none: it needs a real meter)."""
    try:
        model = SIMULATED_MODELS[kind]
    except KeyError:
        raise ValueError(f"no simulated model for {kind.name}; use a real meter") from None
    return model(capacity_w, seed)
