"""Merkle trees in OpenZeppelin's StandardMerkleTree layout, so that the contracts'
`MerkleProof.verify` and OZ's JavaScript tooling agree with the oracle on every root.

Leaf: keccak256(keccak256(abi.encode(values))) (double hashing prevents second-preimage
attacks with inner nodes). Leaves are sorted by hash; the tree is a complete binary tree in
an array of 2n-1 nodes with the leaves at the end in reverse order; an inner node hashes
its two children sorted (commutative), as `MerkleProof` expects.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from eth_abi import encode

from gridflex.rules import native
from gridflex.rules.keccak import keccak256


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


def merkle_root(leaves: Sequence[bytes] | np.ndarray) -> bytes:
    """`MerkleTree.from_leaf_hashes(leaves).root`, without keeping the tree."""
    if not isinstance(leaves, np.ndarray):
        leaves = np.frombuffer(b"".join(leaves), dtype=np.uint8)
    leaves = leaves.reshape(-1, 32)
    if len(leaves) == 0:
        raise ValueError("a Merkle tree needs at least one leaf")
    root = native.merkle_root(leaves)
    if root is None:
        return MerkleTree.from_leaf_hashes([bytes(row) for row in leaves]).root
    return root


def merkle_roots(*leaf_sets: np.ndarray) -> list[bytes]:
    """`merkle_root` of each leaf set, the trees built concurrently (native) in threads."""
    if len(leaf_sets) < 2 or not native.available():
        return [merkle_root(leaves) for leaves in leaf_sets]
    with ThreadPoolExecutor(min(len(leaf_sets), native.THREADS)) as pool:
        return list(pool.map(merkle_root, leaf_sets))
