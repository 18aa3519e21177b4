"""Units are judged by the device as it stood at their intervals (issue 12, finding 2,
oracle side; finding 9's registration bound).

A real DeviceRegistry on the session anvil, the real RegistryCache, the real Ingestor on
SQLite; only the ingest clock is fixed (at the chain's time, so a unit of an interval the
chain has reached is not "in the future" for a wall clock behind it). The timeline:
register with key A, two hours later rotate to key B, two hours later deactivate.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from eth_account import Account
from oracle_testkit import SimulatedMeter
from sqlalchemy import Engine
from support.chain import fresh_protocol
from web3 import Web3

from gridflex.chain.anvil import increase_time
from gridflex.chain.protocol import Protocol
from gridflex.rules.attestation import meter_domain_separator
from gridflex.rules.eip712 import secp256k1_device_key
from gridflex.rules.types import DeviceKind, zone_id
from oracle.config import OracleSettings
from oracle.db import create_oracle_engine, init_db
from oracle.ingest import IngestLimits, Ingestor, Rejection, UnitStatus
from oracle.registry_cache import RegistryCache

pytestmark = pytest.mark.integration

INTERVAL = 900
HOUR = 3_600
ZONE = zone_id("NL-AMS-01")


class FixedClock:
    def __init__(self, now: int) -> None:
        self.at = now

    def now(self) -> int:
        return self.at

    def fresh_now(self) -> int:
        return self.at


@dataclass
class Timeline:
    protocol: Protocol
    domain: bytes
    device_id: int
    key_a: bytes
    key_b: bytes
    registered_at: int
    rotated_at: int
    sequences: itertools.count[int] = field(default_factory=itertools.count)

    def meter(self, key: bytes) -> SimulatedMeter:
        """The device signing with `key`; sequences shared across keys, never reused."""
        return SimulatedMeter(self.device_id, 10_000, key, self.domain, self.sequences)

    def chain_now(self) -> int:
        return int(self.protocol.client.w3.eth.get_block("latest")["timestamp"])

    def oracle(
        self, tmp_path: Path, name: str, limits: IngestLimits | None = None
    ) -> tuple[Ingestor, Engine]:
        """A fresh oracle: its own store and registry cache, the chain's time as clock."""
        settings = OracleSettings(data_dir=tmp_path / name, chain_id=31337)
        engine = create_oracle_engine(settings)
        init_db(engine)
        cache = RegistryCache(self.protocol, 0, poll_seconds=0.01)
        clock = FixedClock(self.chain_now())
        return Ingestor(engine, cache, clock, self.domain, limits or IngestLimits()), engine


def grid_after(timestamp: int) -> int:
    """First interval start at or after `timestamp`."""
    return -(-timestamp // INTERVAL) * INTERVAL


@pytest.fixture(scope="module")
def timeline(w3: Web3) -> Iterator[Timeline]:
    protocol = fresh_protocol(w3)
    chain_id, registry = protocol.client.chain_id, protocol.registry.address
    key_a, key_b = bytes(Account.create().key), bytes(Account.create().key)
    device_id = protocol.register_device(
        DeviceKind.BATTERY,
        10_000,
        ZONE,
        secp256k1_device_key(key_a, protocol.address, chain_id, registry),
    )
    registered_at = int(protocol.registry.functions.epochAt(device_id, 0).call()[0])
    increase_time(w3, 2 * HOUR)
    rotation = secp256k1_device_key(key_b, protocol.address, chain_id, registry)
    protocol.send(protocol.registry.functions.rotateKey(device_id, rotation.as_tuple()))
    rotated_at = int(protocol.registry.functions.epochAt(device_id, 1).call()[0])
    increase_time(w3, 2 * HOUR)
    yield Timeline(
        protocol,
        meter_domain_separator(chain_id, registry),
        device_id,
        key_a,
        key_b,
        registered_at,
        rotated_at,
    )


def _statuses(ingestor: Ingestor, units: list) -> list[tuple[UnitStatus, Rejection | None]]:
    result = ingestor.ingest_batch([unit.to_json() for unit in units])
    return [(r.status, r.rejection) for r in result.results]


def test_a_rotation_ends_the_old_keys_units_for_later_intervals_only(
    timeline: Timeline, tmp_path: Path
) -> None:
    """The rotated-out key can no longer attest intervals after the rotation; the new key
    cannot attest intervals before it (both were accepted or refused by the current key)."""
    ingestor, _engine = timeline.oracle(tmp_path, "rotation")
    before = grid_after(timeline.registered_at)
    after = grid_after(timeline.rotated_at)
    assert before + INTERVAL <= timeline.rotated_at, "need a whole interval before rotation"
    old, new = timeline.meter(timeline.key_a), timeline.meter(timeline.key_b)

    assert _statuses(ingestor, [new.unit(before, [5])]) == [
        (UnitStatus.REJECTED, Rejection.BAD_SIGNATURE)
    ]
    assert _statuses(ingestor, [old.unit(after, [6])]) == [
        (UnitStatus.REJECTED, Rejection.BAD_SIGNATURE)
    ]
    assert _statuses(ingestor, [old.unit(before, [5]), new.unit(after, [6])]) == [
        (UnitStatus.ACCEPTED, None),
        (UnitStatus.ACCEPTED, None),
    ]


def test_a_unit_running_across_a_registry_change_or_before_registration_is_refused(
    timeline: Timeline, tmp_path: Path
) -> None:
    ingestor, _engine = timeline.oracle(tmp_path, "bounds")
    old = timeline.meter(timeline.key_a)
    last_before = grid_after(timeline.rotated_at) - INTERVAL  # holds the rotation instant
    straddling = old.unit(last_before - INTERVAL, [1, 2, 3])  # ends after the rotation
    result = ingestor.ingest_batch([straddling.to_json()])
    assert result.results[0].rejection == Rejection.SPANS_EPOCHS
    assert str(timeline.rotated_at) in (result.results[0].reason or "")


def test_a_unit_of_an_interval_before_registration_is_refused_with_its_reason(
    timeline: Timeline, tmp_path: Path
) -> None:
    """Finding 9: a unit of an interval before the device's registration, even signed by
    the key it registered with and one interval early, is refused (`deviceAt` reverts
    `DeviceNotYetRegistered` there: no dispute could judge it), as is a unit "from 1970";
    the first interval on or after the registration is accepted."""
    old = timeline.meter(timeline.key_a)
    ingestor, _engine = timeline.oracle(tmp_path, "before")
    first = grid_after(timeline.registered_at)
    for start in (first - INTERVAL, first - 15 * 86_400, 0):
        result = ingestor.ingest_batch([old.unit(start, [1]).to_json()])
        assert result.results[0].rejection == Rejection.BEFORE_REGISTRATION, start
        reason = result.results[0].reason or ""
        assert f"before device {timeline.device_id} was registered" in reason
        assert str(timeline.registered_at) in reason
    assert _statuses(ingestor, [old.unit(first, [1])]) == [(UnitStatus.ACCEPTED, None)]


def test_a_deactivation_after_signing_gives_every_oracle_the_same_verdict(
    timeline: Timeline, tmp_path: Path
) -> None:
    """Split view: oracle 1 stores a unit before the owner deactivates the device, oracle 2
    receives the same unit after. Judged by the current state, oracle 2 refused it (one
    oracle holds a reading another never will); judged at its intervals, both accept it.
    Units of intervals after the deactivation are refused by both."""
    new = timeline.meter(timeline.key_b)
    interval = grid_after(timeline.rotated_at) + INTERVAL
    unit = new.unit(interval, [7])
    first, _ = timeline.oracle(tmp_path, "first")
    assert _statuses(first, [unit]) == [(UnitStatus.ACCEPTED, None)]

    protocol = timeline.protocol
    protocol.send(protocol.registry.functions.setActive(timeline.device_id, False))
    w3 = protocol.client.w3
    increase_time(w3, 2 * HOUR)
    second, _ = timeline.oracle(tmp_path, "second")
    assert _statuses(second, [unit]) == [(UnitStatus.ACCEPTED, None)]

    deactivated_at = int(protocol.registry.functions.epochAt(timeline.device_id, 2).call()[0])
    later = new.unit(grid_after(deactivated_at), [8])
    for oracle in (first, second):
        result = oracle.ingest_batch([later.to_json()])
        assert result.results[0].rejection == Rejection.INACTIVE


def test_an_accepted_transfer_ends_the_sellers_key_for_later_intervals(
    w3: Web3, tmp_path: Path
) -> None:
    """Issue 12, finding 2: after the buyer accepts (with its own key), the seller still
    holds the device key; its units for intervals after the sale are refused, its units for
    earlier intervals stay valid, and the buyer's key attests the later ones."""
    protocol = fresh_protocol(w3)
    if not any(f.get("name") == "acceptTransfer" for f in protocol.registry.abi):
        pytest.skip("needs the two-step transfer of sec/registry (acceptTransfer)")
    chain_id, registry = protocol.client.chain_id, protocol.registry.address
    seller_key, buyer_key = bytes(Account.create().key), bytes(Account.create().key)
    device_id = protocol.register_device(
        DeviceKind.BATTERY,
        10_000,
        ZONE,
        secp256k1_device_key(seller_key, protocol.address, chain_id, registry),
    )
    registered_at = int(protocol.registry.functions.epochAt(device_id, 0).call()[0])
    increase_time(w3, 2 * HOUR)
    buyer = Account.create()
    w3.provider.make_request("anvil_setBalance", [buyer.address, hex(10**20)])
    protocol.send(protocol.registry.functions.transfer(device_id, buyer.address))
    buyer_protocol = protocol.as_account(buyer)
    fresh_key = secp256k1_device_key(buyer_key, buyer.address, chain_id, registry)
    buyer_protocol.send(
        buyer_protocol.registry.functions.acceptTransfer(device_id, fresh_key.as_tuple())
    )
    count = int(protocol.registry.functions.epochCount(device_id).call())
    sold_at = int(protocol.registry.functions.epochAt(device_id, count - 1).call()[0])
    increase_time(w3, 2 * HOUR)

    sequences = itertools.count()
    domain = meter_domain_separator(chain_id, registry)
    seller = SimulatedMeter(device_id, 10_000, seller_key, domain, sequences)
    new_owner = SimulatedMeter(device_id, 10_000, buyer_key, domain, sequences)
    line = Timeline(protocol, domain, device_id, seller_key, buyer_key, registered_at, sold_at)
    ingestor, _engine = line.oracle(tmp_path, "transfer")
    before, after = grid_after(registered_at), grid_after(sold_at)
    assert before + INTERVAL <= sold_at
    assert _statuses(ingestor, [seller.unit(after, [3])]) == [
        (UnitStatus.REJECTED, Rejection.BAD_SIGNATURE)
    ]
    assert _statuses(ingestor, [seller.unit(before, [2]), new_owner.unit(after, [3])]) == [
        (UnitStatus.ACCEPTED, None),
        (UnitStatus.ACCEPTED, None),
    ]
