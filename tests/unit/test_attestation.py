"""Meter units: the fast struct hash equals eth-account's generic EIP-712 digest, both key
types sign and verify, and any change to a signed unit breaks its signature."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from gridflex.rules.attestation import (
    AttestationError,
    DeviceSigningKey,
    MeterUnit,
    meter_domain_separator,
    sign_unit,
    unit_digest,
    unit_digest_generic,
    unit_digests,
    verify_unit,
)
from gridflex.rules.eip712 import KeyType

CHAIN_ID = 31337
REGISTRY = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
DOMAIN = meter_domain_separator(CHAIN_ID, REGISTRY)


def _unit(**changes: object) -> MeterUnit:
    fields = {
        "device_id": 7,
        "first_interval_start": 1_800_000_000,
        "interval_seconds": 900,
        "sequence": 42,
        "energy_wh": (350, -120, 0, 2**40),
    }
    return MeterUnit(**(fields | changes))  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(
    device_id=st.integers(0, 2**256 - 1),
    slot=st.integers(0, 2**40),
    interval=st.sampled_from([300, 900, 1800]),
    sequence=st.integers(0, 2**64 - 1),
    energy=st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=96),
    chain_id=st.integers(1, 2**64),
)
def test_fast_digest_equals_generic_eip712_digest(
    device_id: int, slot: int, interval: int, sequence: int, energy: list[int], chain_id: int
) -> None:
    unit = MeterUnit(device_id, slot * interval, interval, sequence, tuple(energy))
    fast = unit_digest(unit, meter_domain_separator(chain_id, REGISTRY))
    assert fast == unit_digest_generic(unit, chain_id, REGISTRY)


unit_fields = st.tuples(
    st.integers(0, 2**256 - 1) | st.integers(0, 10**9),
    st.integers(0, 2**40),
    st.sampled_from([900, 1800]),
    st.integers(0, 2**64 - 1) | st.integers(0, 1000),
    st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=96),
)


@settings(max_examples=60, deadline=None)
@given(batch=st.lists(unit_fields, min_size=1, max_size=20), chain_id=st.integers(1, 2**64))
def test_batched_digests_equal_one_digest_per_unit(batch: list, chain_id: int) -> None:
    """The ingest path's three batched Keccak passes (and their fallback for fields above
    uint64) give each unit's own digest."""
    units = [
        MeterUnit(device, slot * interval, interval, sequence, tuple(energy))
        for device, slot, interval, sequence, energy in batch
    ]
    domain = meter_domain_separator(chain_id, REGISTRY)
    assert unit_digests(units, domain) == [unit_digest(unit, domain) for unit in units]


def test_secp256k1_unit_verifies_and_any_change_breaks_it() -> None:
    device = Account.create()
    key = DeviceSigningKey(KeyType.SECP256K1, bytes(12) + bytes.fromhex(device.address[2:]))
    signed = sign_unit(_unit(), DOMAIN, device.key)
    assert verify_unit(signed, DOMAIN, key) == unit_digest(signed, DOMAIN)
    tampered = MeterUnit.from_json(signed.to_json() | {"energyWh": [351, -120, 0, 2**40]})
    with pytest.raises(AttestationError, match="does not verify"):
        verify_unit(tampered, DOMAIN, key)
    other_chain = meter_domain_separator(CHAIN_ID + 1, REGISTRY)
    with pytest.raises(AttestationError):
        verify_unit(signed, other_chain, key)


def test_p256_unit_verifies_with_low_s_and_rejects_tampering() -> None:
    private_key = ec.generate_private_key(ec.SECP256R1())
    numbers = private_key.public_key().public_numbers()
    key = DeviceSigningKey(
        KeyType.P256, numbers.x.to_bytes(32, "big"), numbers.y.to_bytes(32, "big")
    )
    signed = sign_unit(_unit(), DOMAIN, private_key)
    verify_unit(signed, DOMAIN, key)
    with pytest.raises(AttestationError, match="does not verify"):
        verify_unit(_unit(sequence=43, signature=signed.signature), DOMAIN, key)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"energy_wh": ()}, "1 to 96"),
        ({"energy_wh": tuple(range(97))}, "1 to 96"),
        ({"first_interval_start": 1_800_000_001}, "grid"),
        ({"energy_wh": (2**63,)}, "int64"),
        ({"interval_seconds": 0}, "positive"),
    ],
)
def test_malformed_units_are_rejected_with_a_reason(changes: dict, reason: str) -> None:
    with pytest.raises(AttestationError, match=reason):
        _unit(**changes).check_shape()


def test_json_round_trip_keeps_every_field() -> None:
    signed = sign_unit(_unit(), DOMAIN, Account.create().key)
    assert MeterUnit.from_json(signed.to_json()) == signed
