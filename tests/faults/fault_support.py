"""What the fault tests share: a fleet of registered simulated devices on a deployment of
the test's own (the node side signs with their keys)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from eth_account import Account
from support.chain import fresh_protocol, funded_account
from web3 import Web3

from gridflex.attestation import meter_domain_separator
from gridflex.chain.protocol import DeviceKind, Protocol, zone_id
from gridflex.eip712 import secp256k1_device_key
from node.devices.simulated import simulated_device
from node.meter_loop import MeteredDevice

FLEX = 10**18
ZONE = zone_id("NL-FAULTS-01")
DEVICE_KINDS_W = ((DeviceKind.BATTERY, 10_000), (DeviceKind.HEAT_PUMP, 6_000))


@dataclass
class Fleet:
    """A deployment of the test's own, one staked owner and its registered devices."""

    governance: Protocol
    owner: Protocol
    devices: list[MeteredDevice]
    capacities_w: dict[int, int]
    domain: bytes
    deployments_dir: Path


def deploy_fleet(w3: Web3, deployments_dir: Path) -> Fleet:
    governance = fresh_protocol(w3, deployments_dir)
    owner = governance.as_account(funded_account(w3))
    governance.send(governance.token.functions.transfer(owner.address, 1_000 * FLEX))
    owner.stake(1_000 * FLEX)
    chain_id, registry = owner.client.chain_id, owner.registry.address
    devices, capacities = [], {}
    for seed, (kind, capacity_w) in enumerate(DEVICE_KINDS_W):
        key = bytes(Account.create().key)
        proof = secp256k1_device_key(key, owner.address, chain_id, registry)
        device_id = owner.register_device(kind, capacity_w, ZONE, proof)
        devices.append(MeteredDevice(device_id, simulated_device(kind, capacity_w, seed), key))
        capacities[device_id] = capacity_w
    domain = meter_domain_separator(chain_id, registry)
    return Fleet(governance, owner, devices, capacities, domain, deployments_dir)
