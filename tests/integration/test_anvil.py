"""anvil runs the Osaka hardfork (P-256 precompile) and lets tests move chain time."""

from __future__ import annotations

import os

import pytest
from web3 import Web3

from gridflex.chain.anvil import AnvilProcess, increase_time, mine

pytestmark = pytest.mark.integration

P256_VERIFY_PRECOMPILE = "0x0000000000000000000000000000000000000100"  # EIP-7951

# A valid secp256r1 signature (Wycheproof ecdsa_secp256r1_sha256 test vector, low-s):
# input = message hash (32) || r (32) || s (32) || public key x (32) || y (32).
P256_VALID_INPUT = bytes.fromhex(
    "bb5a52f42f9c9261ed4361f59422a1e30036e7c32b270c8807a419feca605023"
    "2ba3a8be6b94d5ec80a6d9d1190a436effe50d85a1eee859b8cc6af9bd5c2e18"
    "4cd60b855d442f5b3c7b11eb6c4e0ae7525fe710fab9aa7c77a67f79e6fadd76"
    "2927b10512bae3eddcfe467828128bad2903269919f7086069c8c4df6c732838"
    "c7787964eaac00e5921fb1498a60f4606766b3d9685001558d1a974e7341513e"
)


def _p256_verify(w3: Web3, call_input: bytes) -> bytes:
    return bytes(w3.eth.call({"to": P256_VERIFY_PRECOMPILE, "data": call_input}))


def test_anvil_runs_local_chain_id(w3: Web3) -> None:
    assert w3.eth.chain_id == 31337


def test_p256_precompile_accepts_valid_signature(w3: Web3) -> None:
    assert _p256_verify(w3, P256_VALID_INPUT) == (1).to_bytes(32, "big")


def test_p256_precompile_rejects_tampered_signature(w3: Web3) -> None:
    tampered = bytearray(P256_VALID_INPUT)
    tampered[0] ^= 0x01  # different message hash

    assert _p256_verify(w3, bytes(tampered)) == b""


def test_increase_time_moves_block_timestamp(w3: Web3) -> None:
    before = w3.eth.get_block("latest")["timestamp"]

    after = increase_time(w3, 3_600)

    assert after - before >= 3_600
    assert w3.eth.get_block("latest")["timestamp"] == after


def test_mine_adds_blocks(w3: Web3) -> None:
    before = w3.eth.block_number

    mine(w3, 5)

    assert w3.eth.block_number == before + 5


def test_stop_leaves_no_anvil_process() -> None:
    anvil = AnvilProcess()
    anvil.start()
    assert anvil._process is not None
    pid = anvil._process.pid

    anvil.stop()

    assert not os.path.exists(f"/proc/{pid}")  # terminated and reaped
    assert not Web3(Web3.HTTPProvider(anvil.url, request_kwargs={"timeout": 1})).is_connected()
