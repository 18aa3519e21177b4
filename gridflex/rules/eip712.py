"""EIP-712 typed data that GridFlex signs off-chain and the contracts verify on-chain.

Every domain carries the chain id and the verifying contract, so no signature can be
replayed on another chain or against another deployment. Device keys are secp256k1
(eth-account) or P-256 (`cryptography`, low-s normalised as the contracts require).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak, to_checksum_address

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

REGISTRY_DOMAIN_NAME = "GridFlex DeviceRegistry"
COMMITTEE_DOMAIN_NAME = "GridFlex OracleCommittee"
DOMAIN_VERSION = "1"


class KeyType(IntEnum):
    SECP256K1 = 0
    P256 = 1


def domain(name: str, chain_id: int, verifying_contract: str) -> dict[str, Any]:
    return {
        "name": name,
        "version": DOMAIN_VERSION,
        "chainId": chain_id,
        "verifyingContract": to_checksum_address(verifying_contract),
    }


def typed_data_digest(
    domain_data: dict[str, Any], types: dict[str, list[dict[str, str]]], message: dict[str, Any]
) -> bytes:
    """The 32-byte EIP-712 digest (keccak of 0x1901 || domainSeparator || structHash)."""
    signable = encode_typed_data(domain_data, types, message)
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


# ─── Device key proof of possession ────────────────────────────────────────────────────

DEVICE_KEY_PROOF_TYPES = {"DeviceKeyProof": [{"name": "owner", "type": "address"}]}


def device_key_proof_digest(owner: str, chain_id: int, registry: str) -> bytes:
    return typed_data_digest(
        domain(REGISTRY_DOMAIN_NAME, chain_id, registry),
        DEVICE_KEY_PROOF_TYPES,
        {"owner": to_checksum_address(owner)},
    )


@dataclass(frozen=True)
class DeviceKey:
    """A device signing key with its proof, shaped as `IDeviceRegistry.DeviceKey`."""

    key_type: KeyType
    data: bytes
    proof: bytes

    def as_tuple(self) -> tuple[int, bytes, bytes]:
        return (int(self.key_type), self.data, self.proof)


def sign_digest_secp256k1(private_key: bytes | str, digest: bytes) -> bytes:
    """65-byte r||s||v signature over a raw 32-byte digest."""
    signed = Account.unsafe_sign_hash(digest, private_key)
    return signed.r.to_bytes(32, "big") + signed.s.to_bytes(32, "big") + bytes([signed.v])


def sign_digest_p256(private_key: ec.EllipticCurvePrivateKey, digest: bytes) -> bytes:
    """64-byte r||s signature over a raw 32-byte digest, s normalised to the low half."""
    der = private_key.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    r, s = utils.decode_dss_signature(der)
    if s > P256_ORDER // 2:
        s = P256_ORDER - s
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def p256_public_key_bytes(private_key: ec.EllipticCurvePrivateKey) -> bytes:
    numbers = private_key.public_key().public_numbers()
    return numbers.x.to_bytes(32, "big") + numbers.y.to_bytes(32, "big")


def secp256k1_device_key(
    private_key: bytes | str, owner: str, chain_id: int, registry: str
) -> DeviceKey:
    digest = device_key_proof_digest(owner, chain_id, registry)
    address = Account.from_key(private_key).address
    return DeviceKey(
        KeyType.SECP256K1, bytes.fromhex(address[2:]), sign_digest_secp256k1(private_key, digest)
    )


def p256_device_key(
    private_key: ec.EllipticCurvePrivateKey, owner: str, chain_id: int, registry: str
) -> DeviceKey:
    digest = device_key_proof_digest(owner, chain_id, registry)
    return DeviceKey(
        KeyType.P256, p256_public_key_bytes(private_key), sign_digest_p256(private_key, digest)
    )


# ─── Oracle reports ────────────────────────────────────────────────────────────────────

REPORT_TYPES = {
    "Report": [
        {"name": "market", "type": "address"},
        {"name": "requestId", "type": "uint256"},
        {"name": "round", "type": "uint16"},
        {"name": "deliveredHash", "type": "bytes32"},
        {"name": "devicesRoot", "type": "bytes32"},
        {"name": "readingsRoot", "type": "bytes32"},
    ]
}


def delivered_hash(delivered_wh: list[int]) -> bytes:
    """keccak256(abi.encodePacked(uint256[])), as the market stores it."""
    return keccak(b"".join(value.to_bytes(32, "big") for value in delivered_wh))


@dataclass(frozen=True)
class ReportPayload:
    """What the committee signs for one request and round."""

    market: str
    request_id: int
    round: int
    delivered_wh: list[int]
    devices_root: bytes
    readings_root: bytes

    def digest(self, chain_id: int, committee: str) -> bytes:
        return typed_data_digest(
            domain(COMMITTEE_DOMAIN_NAME, chain_id, committee),
            REPORT_TYPES,
            {
                "market": to_checksum_address(self.market),
                "requestId": self.request_id,
                "round": self.round,
                "deliveredHash": delivered_hash(self.delivered_wh),
                "devicesRoot": self.devices_root,
                "readingsRoot": self.readings_root,
            },
        )


def sign_report(
    payload: ReportPayload, chain_id: int, committee: str, oracle_keys: list[bytes | str]
) -> list[bytes]:
    """Signatures of `oracle_keys`, ordered by ascending signer address as the committee
    requires (that order is how it rejects duplicate signers)."""
    digest = payload.digest(chain_id, committee)
    keyed = sorted(oracle_keys, key=lambda key: int(Account.from_key(key).address, 16))
    return [sign_digest_secp256k1(key, digest) for key in keyed]
