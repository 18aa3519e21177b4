"""Keystores: what `node init` writes can be read back with the password, and only with it."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from eth_account import Account
from node_support import FAST_SCRYPT_N

from gridflex.rules.eip712 import KeyType, p256_public_key_bytes
from gridflex.rules.types import DeviceKind
from node.errors import KeystoreExistsError, KeystoreNotFoundError, WrongPasswordError
from node.keystore import create_node_keys, keystore_dir, load_device_key, load_node, load_owner
from node.state import load_state


def test_keys_round_trip_through_encrypted_keystores(node_dir: Path) -> None:
    state = create_node_keys(node_dir, "correct horse", devices=3, p256=1, scrypt_n=FAST_SCRYPT_N)

    loaded_state, owner, keys = load_node(node_dir, "correct horse")

    assert owner.address == state.owner == loaded_state.owner
    key_types = [d.key_type for d in state.devices]
    assert key_types == [KeyType.SECP256K1, KeyType.SECP256K1, KeyType.P256]
    assert [d.kind for d in state.devices] == [
        DeviceKind.BATTERY, DeviceKind.EV_CHARGER, DeviceKind.HEAT_PUMP
    ]  # fmt: skip
    for device in state.devices[:2]:
        assert Account.from_key(keys[device.name]).address == device.public_key
    p256_key = keys["device-2"]
    assert isinstance(p256_key, ec.EllipticCurvePrivateKey)
    assert "0x" + p256_public_key_bytes(p256_key).hex() == state.devices[2].public_key
    owner_file = keystore_dir(node_dir) / "owner.json"
    assert json.loads(owner_file.read_text())["crypto"]["kdf"] == "scrypt"
    assert b"ENCRYPTED PRIVATE KEY" in (keystore_dir(node_dir) / "device-2.pem").read_bytes()
    assert stat.S_IMODE(owner_file.stat().st_mode) == 0o600
    assert owner.key.hex() not in owner_file.read_text()


def test_wrong_password_is_refused_for_owner_and_device_keys(node_dir: Path) -> None:
    state = create_node_keys(node_dir, "right", devices=2, p256=1, scrypt_n=FAST_SCRYPT_N)

    with pytest.raises(WrongPasswordError, match="wrong password"):
        load_owner(node_dir, "wrong")
    for device in state.devices:
        with pytest.raises(WrongPasswordError):
            load_device_key(node_dir, device, "wrong")


def test_init_refuses_to_overwrite_existing_keys(node_dir: Path) -> None:
    first = create_node_keys(node_dir, "pw", devices=1, scrypt_n=FAST_SCRYPT_N)

    with pytest.raises(KeystoreExistsError, match="refusing to overwrite"):
        create_node_keys(node_dir, "pw", devices=1, scrypt_n=FAST_SCRYPT_N)

    assert load_state(node_dir).owner == first.owner
    assert load_owner(node_dir, "pw").address == first.owner


def test_missing_keystore_says_to_run_init(tmp_path: Path) -> None:
    with pytest.raises(KeystoreNotFoundError, match="gridflex node init"):
        load_node(tmp_path / "nowhere", "pw")
