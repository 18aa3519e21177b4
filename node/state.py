"""`<data_dir>/state.json`: the node's devices (kind, capacity, key type, simulation seed)
and, once registered, their on-chain ids with the chain and registry they live on.

Written atomically (rename), so a crash mid-write never leaves half a file.

Format: {"owner", "zone", "chainId"?, "registry"?,
         "devices": [{"name", "kind", "capacityW", "keyType", "publicKey", "seed", "deviceId"?}]}
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gridflex.rules.eip712 import KeyType
from gridflex.rules.types import DeviceKind
from node.errors import KeystoreNotFoundError, NotRegisteredError

STATE_FILE = "state.json"


@dataclass
class NodeDevice:
    """One device the node meters: what it is, how it signs, and its id once registered."""

    name: str
    kind: DeviceKind
    capacity_w: int
    key_type: KeyType
    public_key: str
    """0x address for secp256k1 keys, 0x x||y (64 bytes) for P-256 keys."""
    seed: int
    device_id: int | None = None
    min_price_per_kwh: int = 0
    """Bidding floor in settlement-token base units per kWh (`gridflex node strategy`)."""
    max_share_bps: int = 10_000
    """Largest share of capacity the node offers, in basis points."""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind.name,
            "capacityW": self.capacity_w,
            "keyType": self.key_type.name,
            "publicKey": self.public_key,
            "seed": self.seed,
            "deviceId": self.device_id,
            "minPricePerKWh": self.min_price_per_kwh,
            "maxShareBps": self.max_share_bps,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NodeDevice:
        device_id = data.get("deviceId")
        return cls(
            name=data["name"],
            kind=DeviceKind[data["kind"]],
            capacity_w=int(data["capacityW"]),
            key_type=KeyType[data["keyType"]],
            public_key=data["publicKey"],
            seed=int(data["seed"]),
            device_id=None if device_id is None else int(device_id),
            min_price_per_kwh=int(data.get("minPricePerKWh", 0)),
            max_share_bps=int(data.get("maxShareBps", 10_000)),
        )


@dataclass
class NodeState:
    owner: str
    zone: str
    devices: list[NodeDevice] = field(default_factory=list)
    chain_id: int | None = None
    registry: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "owner": self.owner,
            "zone": self.zone,
            "chainId": self.chain_id,
            "registry": self.registry,
            "devices": [device.to_json() for device in self.devices],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NodeState:
        chain_id = data.get("chainId")
        return cls(
            owner=data["owner"],
            zone=data["zone"],
            devices=[NodeDevice.from_json(entry) for entry in data["devices"]],
            chain_id=None if chain_id is None else int(chain_id),
            registry=data.get("registry"),
        )

    def require_registered(self) -> tuple[int, str, list[NodeDevice]]:
        """(chain id, registry, devices) or NotRegisteredError naming what is missing."""
        missing = [device.name for device in self.devices if device.device_id is None]
        if self.chain_id is None or self.registry is None or missing:
            names = ", ".join(missing) or "all devices"
            raise NotRegisteredError(
                f"devices not registered on-chain ({names}): run `gridflex node register`"
            )
        return self.chain_id, self.registry, self.devices


def state_path(data_dir: Path) -> Path:
    return Path(data_dir) / STATE_FILE


def save_state(state: NodeState, data_dir: Path) -> Path:
    path = state_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp_path.write_text(json.dumps(state.to_json(), indent=2) + "\n")
    tmp_path.replace(path)
    return path


def load_state(data_dir: Path) -> NodeState:
    path = state_path(data_dir)
    if not path.is_file():
        raise KeystoreNotFoundError(f"no node in {data_dir}: run `gridflex node init` first")
    return NodeState.from_json(json.loads(path.read_text()))
