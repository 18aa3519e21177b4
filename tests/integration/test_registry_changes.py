"""Fleet onboarding seen by an oracle: devices registered in a batch are known from their
registration events alone (`Protocol.registry_changes`), and that history is exactly what
the registry's `epochCount` + `epochAt` return; a device changed after registering in the
same range is left to be read from the chain."""

from __future__ import annotations

import pytest
from eth_account import Account
from support.chain import fresh_protocol, funded_account
from web3 import Web3

from gridflex.chain.anvil import increase_time
from gridflex.rules.eip712 import secp256k1_device_key
from gridflex.rules.types import DeviceKind, zone_id
from oracle import registry_cache
from oracle.registry_cache import RegistryCache

pytestmark = pytest.mark.integration

ZONE = zone_id("NL-FLEET-01")


def test_batch_registered_devices_are_known_from_their_events_exactly_as_the_registry_says(
    w3: Web3,
) -> None:
    governance = fresh_protocol(w3)
    owner = governance.as_account(funded_account(w3))
    start = governance.block_number()
    keys = [
        secp256k1_device_key(
            Account.create().key, owner.address, w3.eth.chain_id, owner.registry.address
        )
        for _ in range(5)
    ]
    ids = owner.register_devices(DeviceKind.HEAT_PUMP, 3_000, ZONE, keys)
    assert ids == list(range(ids[0], ids[0] + 5))
    increase_time(w3, 10)
    owner.send(owner.registry.functions.update(ids[2], 4_000, ZONE))

    changed, histories = governance.registry_changes(start, governance.block_number())
    assert changed == set(ids)
    assert sorted(histories) == [ids[0], ids[1], ids[3], ids[4]], (
        "the updated one is read from the chain"
    )
    for device_id, history in histories.items():
        assert history == governance.device_history(device_id)


def test_an_oracle_started_after_onboarding_learns_the_fleet_from_events_not_calls(
    w3: Web3, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An oracle restarting next to a registered fleet reads the registry's events from
    the deployment block (in chunks of blocks), not two calls per device on first sight."""
    governance = fresh_protocol(w3)
    owner = governance.as_account(funded_account(w3))
    keys = [
        secp256k1_device_key(
            Account.create().key, owner.address, w3.eth.chain_id, owner.registry.address
        )
        for _ in range(6)
    ]
    ids = owner.register_devices(DeviceKind.HEAT_PUMP, 3_000, ZONE, keys[:3])
    ids += owner.register_devices(DeviceKind.HEAT_PUMP, 3_000, ZONE, keys[3:])
    increase_time(w3, 10)  # a registry change in its registration's second is refused
    owner.send(owner.registry.functions.update(ids[4], 4_000, ZONE))

    monkeypatch.setattr(registry_cache, "LOG_CHUNK_BLOCKS", 1)  # one block per eth_getLogs
    loads: list[int] = []
    reads = governance.device_history
    monkeypatch.setattr(governance, "device_history", lambda i: loads.append(i) or reads(i))
    cache = RegistryCache(governance, governance.deployment.deployed_at_block)

    known = cache.get_many(set(ids))
    assert loads == [ids[4]], "only the device changed after its registration is read"
    assert all(known[i] == reads(i) for i in ids)
