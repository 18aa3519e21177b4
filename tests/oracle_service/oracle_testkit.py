"""Test kit for the oracle: simulated signing meters, a fixed device directory, row counts.
The real `gridflex oracle serve` child process is `support.oracle_process` (shared with
the end-to-end tests)."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import ec
from eth_account import Account
from sqlalchemy import Engine, func, select

from gridflex.rules.attestation import (
    DeviceSigningKey,
    MeterUnit,
    meter_domain_separator,
    sign_unit,
)
from gridflex.rules.eip712 import KeyType, p256_public_key_bytes
from oracle.models import ConflictEvidence, MeterUnitRecord, Reading
from oracle.registry_cache import DeviceHistory, RegisteredDevice

CHAIN_ID = 31337
REGISTRY = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
DOMAIN = meter_domain_separator(CHAIN_ID, REGISTRY)
INTERVAL = 900


@dataclass
class SimulatedMeter:
    """A device that signs units with its own key and counts its sequence numbers."""

    device_id: int
    capacity_w: int
    key: bytes | ec.EllipticCurvePrivateKey
    domain: bytes = DOMAIN
    next_sequence: itertools.count[int] = field(default_factory=itertools.count)

    @classmethod
    def secp256k1(cls, device_id: int, capacity_w: int, domain: bytes = DOMAIN) -> SimulatedMeter:
        return cls(device_id, capacity_w, bytes(Account.create().key), domain)

    @classmethod
    def p256(cls, device_id: int, capacity_w: int, domain: bytes = DOMAIN) -> SimulatedMeter:
        return cls(device_id, capacity_w, ec.generate_private_key(ec.SECP256R1()), domain)

    @property
    def signing_key(self) -> DeviceSigningKey:
        if isinstance(self.key, ec.EllipticCurvePrivateKey):
            public = p256_public_key_bytes(self.key)
            return DeviceSigningKey(KeyType.P256, public[:32], public[32:])
        address = Account.from_key(self.key).address
        return DeviceSigningKey(KeyType.SECP256K1, bytes(12) + bytes.fromhex(address[2:]))

    def registered(self, active: bool = True) -> RegisteredDevice:
        key = self.signing_key
        return RegisteredDevice(
            self.device_id,
            key,
            key.secp256k1_address if key.key_type == KeyType.SECP256K1 else None,
            self.capacity_w,
            active,
        )

    def unit(
        self,
        first_interval_start: int,
        energy_wh: list[int],
        sequence: int | None = None,
        domain: bytes | None = None,
    ) -> MeterUnit:
        """A signed unit; the sequence advances unless one is given."""
        unsigned = MeterUnit(
            self.device_id,
            first_interval_start,
            INTERVAL,
            next(self.next_sequence) if sequence is None else sequence,
            tuple(energy_wh),
        )
        return sign_unit(unsigned, domain or self.domain, self.key)


class StaticDirectory:
    """A fixed set of registered devices (the RegistryCache stand-in for store tests); each
    device has one registry epoch, from `since` (0 unless given)."""

    def __init__(self, devices: list[RegisteredDevice]) -> None:
        self.devices = {device.device_id: device for device in devices}

    def get_many(self, device_ids: set[int]) -> dict[int, DeviceHistory | None]:
        return {device_id: self._history(device_id) for device_id in device_ids}

    def reload(self, device_id: int) -> DeviceHistory | None:
        return self._history(device_id)

    def _history(self, device_id: int) -> DeviceHistory | None:
        device = self.devices.get(device_id)
        return None if device is None else DeviceHistory.single(device)


def past_slot(days_ago: int = 2) -> int:
    """An interval start on the 15-minute grid, `days_ago` days back."""
    now = int(time.time()) - days_ago * 86_400
    return now - now % INTERVAL


def row_counts(engine: Engine) -> dict[str, int]:
    """Rows per oracle table: "the database is unchanged" means these are equal."""
    with engine.connect() as connection:
        return {
            table.__tablename__: connection.execute(  # type: ignore[attr-defined]
                select(func.count()).select_from(table)
            ).scalar_one()
            for table in (MeterUnitRecord, Reading, ConflictEvidence)
        }
