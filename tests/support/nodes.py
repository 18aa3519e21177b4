"""Device owners for tests that run real nodes: a funded, staked owner with simulated
devices registered on-chain (secp256k1 keys), ready for a `NodeRunner`."""

from __future__ import annotations

from collections.abc import Sequence

from eth_account import Account
from web3 import Web3

from gridflex.chain.protocol import Protocol
from gridflex.rules.eip712 import secp256k1_device_key
from gridflex.rules.types import DeviceKind
from node.devices.simulated import simulated_device
from node.dispatch import CommandedDevice
from node.runner import NodeDevice
from support.chain import funded_account

FLEX = 10**18


def staked_owner(
    w3: Web3,
    governance: Protocol,
    zone: bytes,
    devices: Sequence[tuple[DeviceKind, int]],
    seed: int,
    stake_flex: int = 1_000,
) -> tuple[Protocol, list[NodeDevice]]:
    """An owner funded and staked by `governance`, with `devices` (kind, capacity W)
    registered in `zone`; simulated device `i` is seeded `seed + i`."""
    account = funded_account(w3)
    governance.send(governance.token.functions.transfer(account.address, stake_flex * FLEX))
    owner = governance.as_account(account)
    owner.stake(stake_flex * FLEX)
    node_devices = []
    for seat, (kind, capacity) in enumerate(devices):
        key = bytes(Account.create().key)
        proof = secp256k1_device_key(key, account.address, w3.eth.chain_id, owner.registry.address)
        device_id = owner.register_device(kind, capacity, zone, proof)
        model = simulated_device(kind, capacity, seed=seed + seat)
        node_devices.append(NodeDevice(device_id, CommandedDevice(model), key))
    return owner, node_devices
