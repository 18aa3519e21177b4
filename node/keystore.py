"""Encrypted keys of one node: the owner wallet (pays gas, owns devices, stakes) and one
signing key per device, all under one password.

secp256k1 keys are Ethereum JSON keystores (v3, scrypt) written by eth-account, so any
wallet can import the owner key. P-256 device keys (what secure elements in meters hold)
are PKCS8 PEM files encrypted with the same password (`BestAvailableEncryption`).

Layout: `<data_dir>/keystore/owner.json`, `<data_dir>/keystore/<device>.json|.pem`,
and `<data_dir>/state.json` (public part: see `node.state`).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from eth_account import Account
from eth_account.signers.local import LocalAccount

from gridflex.rules.eip712 import KeyType, p256_public_key_bytes
from gridflex.rules.types import DeviceKind
from node.config import DEFAULT_SCRYPT_N
from node.errors import KeystoreExistsError, KeystoreNotFoundError, WrongPasswordError
from node.state import NodeDevice, NodeState, load_state, save_state, state_path

KEYSTORE_DIR = "keystore"
OWNER_FILE = "owner.json"

DevicePrivateKey = bytes | ec.EllipticCurvePrivateKey
"""A secp256k1 private key (32 bytes) or a P-256 private key: what `sign_unit` takes."""

# Simulated kinds in the order `node init` hands them out, with a typical rated power (W).
DEFAULT_DEVICE_MIX: tuple[tuple[DeviceKind, int], ...] = (
    (DeviceKind.BATTERY, 5_000),
    (DeviceKind.EV_CHARGER, 11_000),
    (DeviceKind.HEAT_PUMP, 3_000),
    (DeviceKind.HVAC, 4_000),
    (DeviceKind.PV_INVERTER, 6_000),
    (DeviceKind.INDUSTRIAL_LOAD, 250_000),
)
DEFAULT_CAPACITY_W = dict(DEFAULT_DEVICE_MIX)


def keystore_dir(data_dir: Path) -> Path:
    return Path(data_dir) / KEYSTORE_DIR


def _write_private(path: Path, content: bytes) -> None:
    """Create `path` readable by the owner only; fail rather than overwrite a key."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())


def _encrypt_secp256k1(private_key: bytes, password: str, scrypt_n: int) -> bytes:
    keystore = Account.encrypt(private_key, password, kdf="scrypt", iterations=scrypt_n)
    return json.dumps(keystore).encode()


def _decrypt_secp256k1(path: Path, password: str) -> bytes:
    try:
        return bytes(Account.decrypt(json.loads(path.read_text()), password))
    except ValueError as error:  # eth-keyfile: "MAC mismatch"; bad JSON is a ValueError too
        raise WrongPasswordError(f"wrong password for {path} ({error})") from error


def _encrypt_p256(private_key: ec.EllipticCurvePrivateKey, password: str) -> bytes:
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password.encode()),
    )


def _decrypt_p256(path: Path, password: str) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password.encode())
    except (ValueError, TypeError) as error:
        raise WrongPasswordError(f"wrong password for {path}") from error
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise WrongPasswordError(f"{path} is not a P-256 key")
    return key


def device_key_path(data_dir: Path, device: NodeDevice) -> Path:
    suffix = ".pem" if device.key_type == KeyType.P256 else ".json"
    return keystore_dir(data_dir) / f"{device.name}{suffix}"


def create_node_keys(
    data_dir: Path,
    password: str,
    *,
    devices: int = 5,
    p256: int = 0,
    zone: str = "NL-AMS-01",
    kinds: Sequence[DeviceKind] | None = None,
    scrypt_n: int = DEFAULT_SCRYPT_N,
) -> NodeState:
    """Create the owner wallet and `devices` device keys (the last `p256` of them P-256).

    Kinds cycle through DEFAULT_DEVICE_MIX unless `kinds` is given. Refuses to touch a data
    dir that already has keys: losing a device key orphans the device on-chain.
    """
    data_dir = Path(data_dir)
    if state_path(data_dir).exists() or (keystore_dir(data_dir) / OWNER_FILE).exists():
        raise KeystoreExistsError(
            f"a node keystore already exists in {data_dir}; refusing to overwrite it "
            "(use another --data-dir or move the old one away)"
        )
    if not 0 <= p256 <= devices:
        raise ValueError(f"--p256 must be between 0 and --devices ({devices})")
    if not password:
        raise ValueError("the keystore password must not be empty")
    chosen_kinds = list(kinds) if kinds else [kind for kind, _ in DEFAULT_DEVICE_MIX]

    owner_key = secrets.token_bytes(32)
    owner = Account.from_key(owner_key)
    records: list[NodeDevice] = []
    encrypted: list[tuple[NodeDevice, bytes]] = []
    for index in range(devices):
        kind = chosen_kinds[index % len(chosen_kinds)]
        name = f"device-{index}"
        seed = secrets.randbits(32)
        if index >= devices - p256:
            p256_key = ec.generate_private_key(ec.SECP256R1())
            record = NodeDevice(
                name, kind, DEFAULT_CAPACITY_W.get(kind, 5_000), KeyType.P256,
                "0x" + p256_public_key_bytes(p256_key).hex(), seed,
            )  # fmt: skip
            encrypted.append((record, _encrypt_p256(p256_key, password)))
        else:
            device_key = secrets.token_bytes(32)
            record = NodeDevice(
                name, kind, DEFAULT_CAPACITY_W.get(kind, 5_000), KeyType.SECP256K1,
                Account.from_key(device_key).address, seed,
            )  # fmt: skip
            encrypted.append((record, _encrypt_secp256k1(device_key, password, scrypt_n)))
        records.append(record)

    _write_private(
        keystore_dir(data_dir) / OWNER_FILE, _encrypt_secp256k1(owner_key, password, scrypt_n)
    )
    for record, content in encrypted:
        _write_private(device_key_path(data_dir, record), content)
    state = NodeState(owner=owner.address, zone=zone, devices=records)
    save_state(state, data_dir)  # last: its presence marks a complete init
    return state


def load_owner(data_dir: Path, password: str) -> LocalAccount:
    """The owner wallet; KeystoreNotFoundError / WrongPasswordError are readable."""
    path = keystore_dir(data_dir) / OWNER_FILE
    if not path.is_file():
        raise KeystoreNotFoundError(f"no owner keystore at {path}: run `gridflex node init`")
    return Account.from_key(_decrypt_secp256k1(path, password))


def load_device_key(data_dir: Path, device: NodeDevice, password: str) -> DevicePrivateKey:
    path = device_key_path(data_dir, device)
    if not path.is_file():
        raise KeystoreNotFoundError(f"no key for {device.name} at {path}")
    if device.key_type == KeyType.P256:
        return _decrypt_p256(path, password)
    return _decrypt_secp256k1(path, password)


def load_node(
    data_dir: Path, password: str
) -> tuple[NodeState, LocalAccount, dict[str, DevicePrivateKey]]:
    """State, owner wallet and every device key (by device name), checked against state."""
    state = load_state(data_dir)
    owner = load_owner(data_dir, password)
    if owner.address != state.owner:
        raise WrongPasswordError(f"owner keystore does not match {state_path(data_dir)}")
    keys = {device.name: load_device_key(data_dir, device, password) for device in state.devices}
    return state, owner, keys
