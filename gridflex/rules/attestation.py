"""Signed meter readings: the EIP-712 unit a device signs and every oracle verifies.

One unit covers one device and a run of consecutive intervals (at most 96, i.e. a day of
15-minute intervals) with energy in Wh per interval (imported positive, exported negative)
and a per-device sequence number. The energies are signed as `bytes energyWh`: the int64
values packed big-endian, 8 bytes each. That is a quarter of the hashing and of a
dispute's calldata compared with an `int64[]` (32 bytes per value); a contract reads value
i as `int64(uint64(bytes8(energyWh[8*i:8*i+8])))`. The domain is bound to the chain id and the
DeviceRegistry address, so a unit cannot be replayed on another chain or deployment.
Small enough for a contract to verify one unit in a dispute (one struct hash, then
ecrecover for secp256k1 keys or the 0x100 precompile for P-256 keys).

The verification path hashes the struct directly (`unit_digest`) instead of running
eth-account's generic typed-data encoder per message; `tests/unit/test_attestation.py`
proves both give the same digest.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from coincurve import PublicKey
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils
from eth_utils import keccak, to_checksum_address

from gridflex.rules import native
from gridflex.rules.eip712 import (
    P256_ORDER,
    KeyType,
    domain,
    sign_digest_p256,
    sign_digest_secp256k1,
    typed_data_digest,
)
from gridflex.rules.keccak import keccak256

METER_DOMAIN_NAME = "GridFlex Meter"
MAX_INTERVALS_PER_UNIT = 96
METER_READINGS_TYPE = (
    "MeterReadings(uint256 deviceId,uint64 firstIntervalStart,uint32 intervalSeconds,"
    "uint64 sequence,bytes energyWh)"
)
METER_READINGS_TYPEHASH = keccak(text=METER_READINGS_TYPE)
METER_READINGS_TYPES = {
    "MeterReadings": [
        {"name": "deviceId", "type": "uint256"},
        {"name": "firstIntervalStart", "type": "uint64"},
        {"name": "intervalSeconds", "type": "uint32"},
        {"name": "sequence", "type": "uint64"},
        {"name": "energyWh", "type": "bytes"},
    ]
}
UNIT_INTEGER_FIELDS = ("deviceId", "firstIntervalStart", "intervalSeconds", "sequence")
SECP256K1_SIGNATURE_LENGTH = 65
P256_SIGNATURE_LENGTH = 64
SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
SECP256K1_HALF_ORDER = SECP256K1_ORDER // 2
"""OpenZeppelin ECDSA refuses s above this (`InvalidSignatureS`), and v other than 27/28."""


class AttestationError(ValueError):
    """A unit that is malformed or whose signature does not verify; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class MeterUnit:
    """One signed run of interval readings of one device."""

    device_id: int
    first_interval_start: int
    interval_seconds: int
    sequence: int
    energy_wh: tuple[int, ...]
    signature: bytes = b""

    @property
    def interval_starts(self) -> range:
        stop = self.first_interval_start + len(self.energy_wh) * self.interval_seconds
        return range(self.first_interval_start, stop, self.interval_seconds)

    @property
    def end(self) -> int:
        """End of the last interval (exclusive), unix seconds."""
        return self.first_interval_start + len(self.energy_wh) * self.interval_seconds

    @cached_property
    def energy_bytes(self) -> bytes:
        """The signed encoding of `energy_wh`: int64 big-endian, 8 bytes per interval."""
        try:  # struct, not numpy: a unit holds 1 to 96 values, numpy's setup costs more
            return struct.pack(f">{len(self.energy_wh)}q", *self.energy_wh)
        except struct.error as error:
            raise AttestationError("energyWh value out of int64 range") from error

    def check_shape(self) -> None:
        """Raise AttestationError unless the fields fit their EIP-712 types and the grid."""
        if not 0 <= self.device_id < 2**256:
            raise AttestationError("deviceId out of range")
        if not 0 < self.interval_seconds < 2**32:
            raise AttestationError("intervalSeconds must be positive")
        if not 0 <= self.first_interval_start < 2**64:
            raise AttestationError("firstIntervalStart out of range")
        if self.first_interval_start % self.interval_seconds != 0:
            raise AttestationError("firstIntervalStart is not on the interval grid")
        if not 0 <= self.sequence < 2**64:
            raise AttestationError("sequence out of range")
        if not 1 <= len(self.energy_wh) <= MAX_INTERVALS_PER_UNIT:
            raise AttestationError(f"a unit holds 1 to {MAX_INTERVALS_PER_UNIT} intervals")
        self.energy_bytes  # noqa: B018 -- packing checks the int64 range

    def with_canonical_signature(self) -> MeterUnit:
        """This unit with its signature in the contracts' form (`canonical_signature`)."""
        signature = canonical_signature(self.signature)
        if signature == self.signature:
            return self
        return MeterUnit(
            self.device_id,
            self.first_interval_start,
            self.interval_seconds,
            self.sequence,
            self.energy_wh,
            signature,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "deviceId": self.device_id,
            "firstIntervalStart": self.first_interval_start,
            "intervalSeconds": self.interval_seconds,
            "sequence": self.sequence,
            "energyWh": list(self.energy_wh),
            "signature": "0x" + self.signature.hex(),
        }

    @classmethod
    def from_json(cls, data: Any) -> MeterUnit:
        """Parse `to_json`'s shape strictly: the numbers must be JSON integers (no bool,
        float or numeric string, which `int()` would quietly accept or truncate),
        `energyWh` a list of them, the signature 0x-hex (absent: unsigned).

        Raises AttestationError saying what is wrong, and nothing else, whatever `data` is:
        the oracle turns it into a 4xx with that reason."""
        if not isinstance(data, Mapping):
            raise AttestationError("malformed unit: expected a JSON object")
        for name in UNIT_INTEGER_FIELDS:
            if name not in data:
                raise AttestationError(f"malformed unit: missing field {name!r}")
            if type(data[name]) is not int:
                raise AttestationError(f"malformed unit: {name} must be an integer")
        if "energyWh" not in data:
            raise AttestationError("malformed unit: missing field 'energyWh'")
        energy_wh = data["energyWh"]
        if not isinstance(energy_wh, list | tuple) or any(type(v) is not int for v in energy_wh):
            raise AttestationError("malformed unit: energyWh must be integers, in a JSON list")
        signature = data.get("signature", "")
        if not isinstance(signature, str):
            raise AttestationError("malformed unit: signature must be a 0x-hex string")
        try:
            signature_bytes = bytes.fromhex(signature.removeprefix("0x"))
        except ValueError as error:
            raise AttestationError("malformed unit: signature must be a 0x-hex string") from error
        return cls(
            device_id=data["deviceId"],
            first_interval_start=data["firstIntervalStart"],
            interval_seconds=data["intervalSeconds"],
            sequence=data["sequence"],
            energy_wh=tuple(energy_wh),
            signature=signature_bytes,
        )


def canonical_signature(signature: bytes) -> bytes:
    """The one form of `signature` the contracts accept, for the same signer and digest.

    ECDSA signatures are malleable: (r, s, v) and (r, n - s, v ^ 1) verify alike, and
    signers write the recovery id as 0/1 or 27/28. `DisputeResolver` accepts only what
    OpenZeppelin's ECDSA (65 bytes, s <= n/2, v in {27, 28}) and P256 (64 bytes,
    s <= n/2) accept, so a unit stored in any other form could not be used in a dispute.
    Normalizing changes the signature bytes only: the unit digest (the store's key) and
    the signer stay the same. Anything else (other lengths, v not in {0, 1, 27, 28}) is
    returned unchanged and then fails verification."""
    if len(signature) == SECP256K1_SIGNATURE_LENGTH:
        v = signature[64]
        if v not in (0, 1, 27, 28):
            return signature
        recovery_id = v - 27 if v >= 27 else v
        s = int.from_bytes(signature[32:64], "big")
        if s > SECP256K1_HALF_ORDER:
            s, recovery_id = SECP256K1_ORDER - s, recovery_id ^ 1
        return signature[:32] + s.to_bytes(32, "big") + bytes((27 + recovery_id,))
    if len(signature) == P256_SIGNATURE_LENGTH:
        s = int.from_bytes(signature[32:], "big")
        if P256_ORDER // 2 < s < P256_ORDER:
            return signature[:32] + (P256_ORDER - s).to_bytes(32, "big")
    return signature


def meter_domain_separator(chain_id: int, registry: str) -> bytes:
    """EIP-712 domain separator of meter units for one chain and registry."""
    encoded = keccak(
        text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
    )
    encoded += keccak(text=METER_DOMAIN_NAME) + keccak(text="1")
    encoded += chain_id.to_bytes(32, "big") + bytes(12) + bytes.fromhex(registry[2:])
    return keccak(encoded)


def unit_struct_hash(unit: MeterUnit) -> bytes:
    """hashStruct(MeterReadings) written out by hand: the fast path (needs check_shape)."""
    return keccak256(
        METER_READINGS_TYPEHASH
        + unit.device_id.to_bytes(32, "big")
        + unit.first_interval_start.to_bytes(32, "big")
        + unit.interval_seconds.to_bytes(32, "big")
        + unit.sequence.to_bytes(32, "big")
        + keccak256(unit.energy_bytes)
    )


def unit_digest(unit: MeterUnit, domain_separator: bytes) -> bytes:
    return keccak256(b"\x19\x01" + domain_separator + unit_struct_hash(unit))


_UINT64_LIMIT = 1 << 64


def unit_digests(units: Sequence[MeterUnit], domain_separator: bytes) -> list[bytes]:
    """`unit_digest` of every unit (each passed check_shape), in three batched Keccak
    passes: the ingest path, where four Python-level hashes per unit cost a third of a
    signature recovery. Falls back to `unit_digest` without the native library or when a
    field does not fit the batched layout (uint64)."""
    n = len(units)
    fields = [(u.device_id, u.first_interval_start, u.interval_seconds, u.sequence) for u in units]
    if not native.available() or any(v >= _UINT64_LIMIT for f in fields for v in f):
        return [unit_digest(unit, domain_separator) for unit in units]
    energies = [unit.energy_bytes for unit in units]
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum([len(e) for e in energies], out=offsets[1:])
    energy_hashes = native.keccak256_batch(b"".join(energies), offsets)
    # hashStruct: typehash, four uint256 words (the value in the low 8 bytes), energy hash.
    structs = np.zeros((n, 6, 32), dtype=np.uint8)
    structs[:, 0] = np.frombuffer(METER_READINGS_TYPEHASH, dtype=np.uint8)
    structs[:, 1:5, 24:] = (
        np.array(fields, dtype=">u8").reshape(n, 4, 1).view(np.uint8).reshape(n, 4, 8)
    )
    structs[:, 5] = energy_hashes
    struct_hashes = native.keccak256_batch(structs, np.arange(0, 192 * n + 1, 192))
    prefixed = np.empty((n, 66), dtype=np.uint8)
    prefixed[:, :2] = (0x19, 0x01)
    prefixed[:, 2:34] = np.frombuffer(domain_separator, dtype=np.uint8)
    prefixed[:, 34:] = struct_hashes
    digests = native.keccak256_batch(prefixed, np.arange(0, 66 * n + 1, 66))
    return [row.tobytes() for row in digests]


def unit_digest_generic(unit: MeterUnit, chain_id: int, registry: str) -> bytes:
    """The same digest through eth-account's generic encoder (slow; for cross-checks)."""
    return typed_data_digest(
        domain(METER_DOMAIN_NAME, chain_id, registry),
        METER_READINGS_TYPES,
        {
            "deviceId": unit.device_id,
            "firstIntervalStart": unit.first_interval_start,
            "intervalSeconds": unit.interval_seconds,
            "sequence": unit.sequence,
            "energyWh": unit.energy_bytes,
        },
    )


def sign_unit(
    unit: MeterUnit, domain_separator: bytes, key: bytes | ec.EllipticCurvePrivateKey
) -> MeterUnit:
    """A copy of `unit` signed with a secp256k1 key (bytes) or a P-256 key."""
    unit.check_shape()
    digest = unit_digest(unit, domain_separator)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        signature = sign_digest_p256(key, digest)
    else:
        signature = sign_digest_secp256k1(key, digest)
    return MeterUnit(
        unit.device_id,
        unit.first_interval_start,
        unit.interval_seconds,
        unit.sequence,
        unit.energy_wh,
        signature,
    )


def recover_public_key(digest: bytes, signature: bytes) -> bytes:
    """Uncompressed public key (64 bytes, no prefix) of a 65-byte r||s||v signature in the
    contracts' form only (v in {27, 28}, s <= n/2: `canonical_signature`), so whatever
    verifies here also verifies in `DisputeResolver`."""
    if len(signature) != SECP256K1_SIGNATURE_LENGTH:
        raise AttestationError("secp256k1 signature must be 65 bytes")
    v = signature[64]
    if v not in (27, 28):
        raise AttestationError("signature recovery id v must be 27 or 28")
    recovery_id = v - 27
    if int.from_bytes(signature[32:64], "big") > SECP256K1_HALF_ORDER:
        raise AttestationError("high-s signature (s > n/2): not accepted by the contracts")
    try:
        public_key = PublicKey.from_signature_and_message(
            signature[:64] + bytes((recovery_id,)), digest, hasher=None
        )
    except Exception as error:  # coincurve raises plain Exception on bad signatures
        raise AttestationError("signature does not recover") from error
    return public_key.format(compressed=False)[1:]


def address_of_public_key(public_key: bytes) -> bytes:
    return keccak256(public_key)[-20:]


def verify_p256(digest: bytes, signature: bytes, key_x: bytes, key_y: bytes) -> bool:
    """True when a 64-byte low-s r||s signature verifies against the P-256 key (x, y)."""
    if len(signature) != P256_SIGNATURE_LENGTH:
        return False
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    if not (0 < r < P256_ORDER and 0 < s <= P256_ORDER // 2):
        return False
    try:
        public_key = ec.EllipticCurvePublicNumbers(
            int.from_bytes(key_x, "big"), int.from_bytes(key_y, "big"), ec.SECP256R1()
        ).public_key()
        public_key.verify(
            utils.encode_dss_signature(r, s), digest, ec.ECDSA(utils.Prehashed(hashes.SHA256()))
        )
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True)
class DeviceSigningKey:
    """A device's registered key as the registry stores it (keyType, keyX, keyY)."""

    key_type: KeyType
    key_x: bytes
    key_y: bytes = bytes(32)

    @property
    def secp256k1_address(self) -> str:
        return to_checksum_address(self.key_x[-20:])


class SignerKeyCache:
    """Registered secp256k1 address -> the public key that was proven to hash to it.

    The registry stores a device's signer as an address, so the first check of a device
    hashes the recovered public key; after that a byte comparison of public keys suffices.
    """

    def __init__(self) -> None:
        self._public_keys: dict[bytes, bytes] = {}

    def is_signer(self, public_key: bytes, address: bytes) -> bool:
        if self._public_keys.get(address) == public_key:
            return True
        if address_of_public_key(public_key) != address:
            return False
        self._public_keys[address] = public_key
        return True


_default_signer_cache = SignerKeyCache()


def signed_by(
    unit: MeterUnit,
    digest: bytes,
    key: DeviceSigningKey,
    signer_cache: SignerKeyCache = _default_signer_cache,
) -> bool:
    """True when `unit.signature` over `digest` comes from the registered `key`."""
    if key.key_type == KeyType.P256:
        return verify_p256(digest, unit.signature, key.key_x, key.key_y)
    try:
        public_key = recover_public_key(digest, unit.signature)
    except AttestationError:
        return False
    return signer_cache.is_signer(public_key, key.key_x[-20:])


def verify_unit(
    unit: MeterUnit,
    domain_separator: bytes,
    key: DeviceSigningKey,
    signer_cache: SignerKeyCache = _default_signer_cache,
) -> bytes:
    """Check shape and signature against the registered key; returns the digest.

    Raises AttestationError with a reason a node operator can act on.
    """
    unit.check_shape()
    digest = unit_digest(unit, domain_separator)
    if not signed_by(unit, digest, key, signer_cache):
        raise AttestationError("signature does not verify against the device's registered key")
    return digest
