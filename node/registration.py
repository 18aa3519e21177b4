"""On-chain registration of a node's devices, each with its proof of key possession (the
device key signs the owner, chain and registry, so a key cannot be claimed by another owner
or replayed on another deployment). Shared by `gridflex node register` and the demo."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from gridflex.chain.protocol import Protocol
from gridflex.rules.eip712 import p256_device_key, secp256k1_device_key
from gridflex.rules.types import zone_id
from node.keystore import DevicePrivateKey
from node.state import NodeState, save_state


def register_devices(
    protocol: Protocol, state: NodeState, keys: Mapping[str, DevicePrivateKey], data_dir: Path
) -> int:
    """Registers the devices that have no id yet; returns how many. The state is saved after
    each device, so a crash midway loses no id and a rerun registers only the rest."""
    chain_id, registry = protocol.client.chain_id, protocol.registry.address
    state.chain_id, state.registry = chain_id, registry
    registered = 0
    for device in state.devices:
        if device.device_id is not None:
            continue
        key = keys[device.name]
        proof = (
            secp256k1_device_key(key, protocol.address, chain_id, registry)
            if isinstance(key, bytes)
            else p256_device_key(key, protocol.address, chain_id, registry)
        )
        device.device_id = protocol.register_device(
            device.kind, device.capacity_w, zone_id(state.zone), proof
        )
        save_state(state, data_dir)
        registered += 1
    return registered
