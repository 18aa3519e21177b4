"""The native batch Keccak (`gridflex.rules.native`) and its pycryptodome fallback give the
bytes of `gridflex.rules.merkle.keccak256`, `gridflex.rules.reports.used_readings_leaf` and
`MerkleTree` on random
inputs: empty messages, lengths around the 136-byte rate, equal-length groups (the vector
path) and mixed lengths (the scalar path)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gridflex.rules.native as native
from gridflex.rules.keccak import keccak256
from gridflex.rules.merkle import MerkleTree, merkle_root
from gridflex.rules.native.build import build
from gridflex.rules.reports import used_readings_leaf

BOUNDARY_LENGTHS = [0, 1, 31, 32, 64, 135, 136, 137, 192, 271, 272, 273, 4928]


@pytest.fixture(params=["native", "fallback"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "native":
        if build(quiet=True) is None:
            pytest.skip("no C compiler")
        monkeypatch.setattr(native, "_loaded", False)
        monkeypatch.setattr(native, "_lib", None)
        assert native.available()
    else:
        monkeypatch.setattr(native, "_loaded", True)
        monkeypatch.setattr(native, "_lib", None)
    monkeypatch.setattr(native, "_MIN_PER_THREAD", 5)  # exercise the thread split too
    yield request.param


def _messages(lengths: list[int], seed: int) -> tuple[np.ndarray, np.ndarray, list[bytes]]:
    rng = np.random.default_rng(seed)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    data = rng.integers(0, 256, int(offsets[-1]), dtype=np.uint8)
    return data, offsets, [data[a:b].tobytes() for a, b in itertools.pairwise(offsets)]


def _check(lengths: list[int], seed: int) -> None:
    data, offsets, messages = _messages(lengths, seed)
    assert [bytes(r) for r in native.keccak256_batch(data, offsets)] == [
        keccak256(m) for m in messages
    ]
    assert [bytes(r) for r in native.double_keccak256_batch(data, offsets)] == [
        keccak256(keccak256(m)) for m in messages
    ]
    ids = np.random.default_rng(seed + 1).integers(0, 2**62, len(lengths)).tolist()
    words = np.frombuffer(b"".join(i.to_bytes(32, "big") for i in ids), dtype=np.uint8)
    leaves = native.used_readings_leaves(data, offsets, words.reshape(-1, 32))
    assert [bytes(r) for r in leaves] == [
        used_readings_leaf(i, m) for i, m in zip(ids, messages, strict=True)
    ]
    # n x 2 bounds in any order (how report_batch packs devices grouped by length)
    order = np.random.default_rng(seed + 2).permutation(len(lengths))
    bounds = np.stack([offsets[:-1], offsets[1:]], axis=1)[order].reshape(-1, 2)
    assert [bytes(r) for r in native.double_keccak256_batch(data, bounds)] == [
        keccak256(keccak256(messages[k])) for k in order
    ]
    assert [bytes(r) for r in native.keccak256_batch(data, bounds)] == [
        keccak256(messages[k]) for k in order
    ]


@pytest.mark.parametrize("length", BOUNDARY_LENGTHS)
@pytest.mark.parametrize("count", [1, 7, 8, 9, 17, 40])
def test_equal_lengths(backend: str, length: int, count: int) -> None:
    _check([length] * count, seed=length * 100 + count)


@settings(max_examples=40, deadline=None)
@given(
    lengths=st.lists(st.sampled_from(BOUNDARY_LENGTHS) | st.integers(0, 700), max_size=60),
    seed=st.integers(0, 2**32 - 1),
)
def test_mixed_lengths(lengths: list[int], seed: int) -> None:
    for mode in ("native", "fallback"):
        if mode == "native" and build(quiet=True) is None:
            continue
        native._loaded, native._lib = mode == "fallback", None
        try:
            _check(lengths, seed)
        finally:
            native._loaded, native._lib = False, None


@settings(max_examples=40, deadline=None)
@given(count=st.integers(1, 300), duplicates=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_merkle_root(count: int, duplicates: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    leaves = rng.integers(0, 256, (count, 32), dtype=np.uint8)
    if duplicates and count > 2:
        leaves[1] = leaves[0]
    if count > 5:  # equal first 8 bytes: the radix sort's tie-break on the full 32 bytes
        leaves[2:6, :8] = leaves[5, :8]
    expected = MerkleTree.from_leaf_hashes([bytes(r) for r in leaves]).root
    build(quiet=True)
    native._loaded, native._lib = False, None
    assert native.merkle_root(leaves) == expected
    assert merkle_root(leaves) == expected
    native._loaded, native._lib = True, None  # not built: merkle_root falls back
    assert native.merkle_root(leaves) is None
    assert merkle_root(leaves) == expected
    native._loaded, native._lib = False, None


def test_empty_batches_and_bad_offsets(backend: str) -> None:
    assert native.keccak256_batch(b"", np.array([0])).shape == (0, 32)
    assert bytes(native.keccak256_batch(b"", np.array([0, 0]))[0]) == keccak256(b"")
    with pytest.raises(ValueError):
        native.keccak256_batch(b"abc", np.array([0, 4]))
    with pytest.raises(ValueError):
        native.keccak256_batch(b"abc", np.array([2, 1]))
    with pytest.raises(ValueError):
        native.merkle_root(np.empty((0, 32), dtype=np.uint8))


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_baseline_kernels_equal_numpy(dtype: type[np.signedinteger]) -> None:
    build(quiet=True)
    native._loaded, native._lib = False, None
    if not native.available():
        pytest.skip("no C compiler")
    rng = np.random.default_rng(5)
    missing = -(2**31)
    history = rng.integers(-3000, 3000, size=(37, 9, 7)).astype(dtype)
    history.reshape(-1)[rng.integers(0, history.size, 40)] = missing
    native._MIN_PER_THREAD, saved = 4, native._MIN_PER_THREAD
    try:
        stats = native.block_day_stats(history, 8, 3, missing)
        mask = rng.random((37, 8)) < 0.4
        sums = native.block_masked_sums(history, mask)
    finally:
        native._MIN_PER_THREAD = saved
    assert stats is not None and sums is not None
    complete, totals = stats
    np.testing.assert_array_equal(complete, (history[:, :8] != missing).all(axis=2))
    np.testing.assert_array_equal(totals, history[:, :8, 3:].sum(axis=2, dtype=np.int64))
    expected = np.where(mask[:, :, None], history[:, :8], 0).sum(axis=1, dtype=np.int64)
    np.testing.assert_array_equal(sums, expected)
