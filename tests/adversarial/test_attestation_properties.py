"""Hostile input to the attestation path a node or an attacker controls: whatever JSON or
bytes arrive, parsing and verification end in a unit or an AttestationError with a
reason (the oracle's 4xx), never another exception (a 5xx, retried forever), and nothing
but the device's own signature over exactly these fields verifies."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from gridflex.rules.attestation import (
    MAX_INTERVALS_PER_UNIT,
    AttestationError,
    DeviceSigningKey,
    MeterUnit,
    canonical_signature,
    meter_domain_separator,
    sign_unit,
    verify_unit,
)
from gridflex.rules.eip712 import KeyType

DOMAIN = meter_domain_separator(31337, "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512")
DEVICE_KEY = bytes(Account.create().key)
REGISTERED = DeviceSigningKey(
    KeyType.SECP256K1, bytes(12) + bytes.fromhex(Account.from_key(DEVICE_KEY).address[2:])
)
SIGNED = sign_unit(MeterUnit(7, 1_800_000_000, 900, 3, (120, -40, 0)), DOMAIN, DEVICE_KEY)
FIELDS = ("deviceId", "firstIntervalStart", "intervalSeconds", "sequence", "energyWh", "signature")

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)
"""Any value the stdlib JSON parser can produce (it accepts NaN and Infinity)."""


def _parse_and_verify(data: Any) -> MeterUnit | None:
    """The oracle's path for one unit; None when refused with an AttestationError."""
    try:
        unit = MeterUnit.from_json(data)
        verify_unit(unit, DOMAIN, REGISTERED)
    except AttestationError as error:
        assert error.reason, "a refusal says why"
        return None
    return unit


@settings(max_examples=400, deadline=None)
@given(data=json_values)
def test_any_json_value_is_a_unit_or_an_attestation_error(data: Any) -> None:
    assert _parse_and_verify(data) is None


@settings(max_examples=400, deadline=None)
@given(field=st.sampled_from(FIELDS), value=json_values)
def test_a_signed_unit_with_any_one_field_replaced_never_verifies(field: str, value: Any) -> None:
    tampered = SIGNED.to_json() | {field: value}
    unit = _parse_and_verify(tampered)
    # Only a replacement by the same value (e.g. the same list) may still verify.
    assert unit is None or unit == SIGNED


@settings(max_examples=200, deadline=None)
@given(field=st.sampled_from(FIELDS))
def test_a_unit_missing_any_field_but_the_signature_is_refused(field: str) -> None:
    data = SIGNED.to_json()
    del data[field]
    with pytest.raises(AttestationError):
        verify_unit(MeterUnit.from_json(data), DOMAIN, REGISTERED)


@settings(max_examples=300, deadline=None)
@given(signature=st.binary(max_size=70))
def test_arbitrary_signature_bytes_never_verify_and_never_crash(signature: bytes) -> None:
    data = SIGNED.to_json() | {"signature": "0x" + signature.hex()}
    assert _parse_and_verify(data) is None


@settings(max_examples=300, deadline=None)
@given(
    device_id=st.integers(-(2**300), 2**300),
    first_interval_start=st.integers(-(2**70), 2**70),
    interval_seconds=st.integers(-(2**40), 2**40),
    sequence=st.integers(-(2**70), 2**70),
    energy_wh=st.lists(st.integers(-(2**70), 2**70), max_size=MAX_INTERVALS_PER_UNIT + 2),
)
def test_out_of_range_integers_are_attestation_errors(
    device_id: int,
    first_interval_start: int,
    interval_seconds: int,
    sequence: int,
    energy_wh: list[int],
) -> None:
    data = {
        "deviceId": device_id,
        "firstIntervalStart": first_interval_start,
        "intervalSeconds": interval_seconds,
        "sequence": sequence,
        "energyWh": energy_wh,
        "signature": SIGNED.to_json()["signature"],
    }
    assert _parse_and_verify(data) is None


@settings(max_examples=200, deadline=None)
@given(field=st.sampled_from(FIELDS[:4]), value=st.sampled_from([True, 7.0, 7.9, "7", [7]]))
def test_numbers_must_be_json_integers_not_bools_floats_or_strings(field: str, value: Any) -> None:
    """`int()` would read True as 1 and 7.9 as 7: a unit the device never signed."""
    with pytest.raises(AttestationError, match=field):
        MeterUnit.from_json(SIGNED.to_json() | {field: value})


@settings(max_examples=100, deadline=None)
@given(
    energy_wh=st.lists(
        st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=MAX_INTERVALS_PER_UNIT
    ),
    slot=st.integers(0, 2**40),
    sequence=st.integers(0, 2**64 - 1),
)
def test_a_signed_unit_survives_its_json_round_trip_and_verifies(
    energy_wh: list[int], slot: int, sequence: int
) -> None:
    unit = sign_unit(MeterUnit(9, slot * 900, 900, sequence, tuple(energy_wh)), DOMAIN, DEVICE_KEY)
    parsed = MeterUnit.from_json(unit.to_json())
    assert parsed == unit
    verify_unit(parsed, DOMAIN, REGISTERED)


SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


@settings(max_examples=100, deadline=None)
@given(
    energy=st.lists(st.integers(-(2**40), 2**40), min_size=1, max_size=8),
    high_s=st.booleans(),
    raw_v=st.booleans(),
)
def test_malleated_signatures_are_refused_and_normalize_back_to_the_signed_form(
    energy: list[int], high_s: bool, raw_v: bool
) -> None:
    """Issue 12, finding 7: (r, n - s, v ^ 1) and v in {0, 1} verify for ecrecover but not
    for DisputeResolver (OpenZeppelin ECDSA). Verification refuses them; normalization gives
    back exactly the canonical signature (same digest, same signer)."""
    unit = sign_unit(MeterUnit(7, 1_800_000_000, 900, 3, tuple(energy)), DOMAIN, DEVICE_KEY)
    signature = unit.signature
    s, v = int.from_bytes(signature[32:64], "big"), signature[64]
    if high_s:
        s, v = SECP256K1_N - s, 55 - v
    if raw_v:
        v -= 27
    if not (high_s or raw_v):
        return
    malleated = MeterUnit(
        unit.device_id, unit.first_interval_start, unit.interval_seconds, unit.sequence,
        unit.energy_wh, signature[:32] + s.to_bytes(32, "big") + bytes((v,)),
    )  # fmt: skip
    with pytest.raises(AttestationError):
        verify_unit(malleated, DOMAIN, REGISTERED)
    assert canonical_signature(malleated.signature) == signature
    assert malleated.with_canonical_signature() == unit
    verify_unit(malleated.with_canonical_signature(), DOMAIN, REGISTERED)
