"""A device's registry history (`DeviceRegistry.epochCount` + `epochAt`): every state it
was in, oldest first. A unit is judged by the epoch in force at its first interval and must
end within it, as `DisputeResolver` does (`deviceAt`, `UnitSpansDeviceEpochs`): the oracle's
ingest (`oracle.registry_cache`) and the public re-check (`gridflex.verify`) share this
history (read by `Protocol.device_history`), so they cannot disagree with each other or
with the contract.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from gridflex.rules.attestation import DeviceSigningKey, MeterUnit
from gridflex.rules.eip712 import KeyType
from gridflex.rules.types import DeviceEpoch


@dataclass(frozen=True)
class RegisteredDevice:
    """One device as it stood during one registry epoch: what ingest needs to judge a unit
    of intervals in [since, until)."""

    device_id: int
    key: DeviceSigningKey
    signer_address: str | None
    """Checksummed signer address for secp256k1 keys, computed once per key."""
    capacity_w: int
    active: bool
    owner: str | None = None
    since: int = 0
    """Start of this epoch (unix seconds, the owner action's block time)."""
    until: int | None = None
    """Start of the next epoch; None while this one is current."""


@dataclass(frozen=True)
class DeviceHistory:
    """Every epoch of one device, oldest first (`DeviceRegistry.epochAt`)."""

    device_id: int
    epochs: tuple[RegisteredDevice, ...]

    @classmethod
    def single(cls, device: RegisteredDevice) -> DeviceHistory:
        """A device with one epoch since `device.since` (tests, fixed directories)."""
        return cls(device.device_id, (device,))

    @property
    def registered_at(self) -> int:
        return self.epochs[0].since

    @property
    def current(self) -> RegisteredDevice:
        return self.epochs[-1]

    def at(self, timestamp: int) -> RegisteredDevice | None:
        """The epoch in force at `timestamp` (`deviceAt`), None before registration."""
        index = bisect_right([epoch.since for epoch in self.epochs], timestamp) - 1
        return self.epochs[index] if index >= 0 else None

    def key_for(self, unit: MeterUnit) -> DeviceSigningKey | None:
        """The key that may sign `unit`: its epoch's, None when no dispute could use the
        unit (before the registration, or running past its epoch's end)."""
        epoch = self.at(unit.first_interval_start)
        if epoch is None or (epoch.until is not None and unit.end > epoch.until):
            return None
        return epoch.key


def device_history(device_id: int, epochs: Sequence[DeviceEpoch]) -> DeviceHistory:
    """From the registry's epochs, oldest first (`Protocol.device_history` reads them)."""
    registered = []
    for index, epoch in enumerate(epochs):
        key = DeviceSigningKey(KeyType(epoch.key_type), epoch.key_x, epoch.key_y)
        registered.append(
            RegisteredDevice(
                device_id=device_id,
                key=key,
                signer_address=key.secp256k1_address if key.key_type == KeyType.SECP256K1 else None,
                capacity_w=epoch.capacity_w,
                active=epoch.active,
                owner=epoch.owner,
                since=epoch.since,
                until=epochs[index + 1].since if index + 1 < len(epochs) else None,
            )
        )
    return DeviceHistory(device_id, tuple(registered))
