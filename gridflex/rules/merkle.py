"""Merkle trees in OpenZeppelin's StandardMerkleTree layout, so that the contracts'
`MerkleProof.verify` and OZ's JavaScript tooling agree with the oracle on every root.

Leaf: keccak256(keccak256(abi.encode(values))) (double hashing prevents second-preimage
attacks with inner nodes). Leaves are sorted by hash; the tree is a complete binary tree in
an array of 2n-1 nodes with the leaves at the end in reverse order; an inner node hashes
its two children sorted (commutative), as `MerkleProof` expects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from Crypto.Hash import keccak as _keccak_impl
from eth_abi import encode


def keccak256(data: bytes) -> bytes:
    return _keccak_impl.new(digest_bits=256, data=data).digest()


def leaf_hash(types: Sequence[str], values: Sequence[Any]) -> bytes:
    return keccak256(keccak256(encode(list(types), list(values))))


def hash_pair(a: bytes, b: bytes) -> bytes:
    return keccak256(a + b if a < b else b + a)


@dataclass(frozen=True)
class MerkleTree:
    """A built tree: `root`, and `proof(leaf)` for any of its leaf hashes."""

    nodes: list[bytes]
    index_of_leaf: dict[bytes, int]

    @classmethod
    def from_leaf_hashes(cls, leaves: Sequence[bytes]) -> MerkleTree:
        if not leaves:
            raise ValueError("a Merkle tree needs at least one leaf")
        ordered = sorted(leaves)
        size = 2 * len(ordered) - 1
        nodes: list[bytes] = [b""] * size
        for i, leaf in enumerate(ordered):
            nodes[size - 1 - i] = leaf
        for i in range(size - 1 - len(ordered), -1, -1):
            nodes[i] = hash_pair(nodes[2 * i + 1], nodes[2 * i + 2])
        return cls(nodes, {leaf: size - 1 - i for i, leaf in enumerate(ordered)})

    @property
    def root(self) -> bytes:
        return self.nodes[0]

    def proof(self, leaf: bytes) -> list[bytes]:
        """Sibling hashes from `leaf` up to the root (for `MerkleProof.verify`)."""
        index = self.index_of_leaf[leaf]
        path = []
        while index > 0:
            sibling = index - 1 if index % 2 == 0 else index + 1
            path.append(self.nodes[sibling])
            index = (index - 1) // 2
        return path


def verify_proof(root: bytes, leaf: bytes, proof: Sequence[bytes]) -> bool:
    """What OpenZeppelin's `MerkleProof.verify` computes."""
    computed = leaf
    for sibling in proof:
        computed = hash_pair(computed, sibling)
    return computed == root
