"""Keccak-256 of one message, straight from pycryptodome (eth-hash's backend) without its
dispatch: the one single-message hash of the rules; batches go to `gridflex.rules.native`."""

from __future__ import annotations

from Crypto.Hash import keccak as _keccak


def keccak256(data: bytes | memoryview) -> bytes:
    return _keccak.new(digest_bits=256, data=data).digest()
