"""Native batch Keccak-256 (`keccak_batch.c` through ctypes) for settlement at 10^5-10^6
devices, with a pure-Python fallback (pycryptodome, one call per hash) when the library is not
built (`python -m gridflex.rules.native.build`, run by `make install`) or cannot be loaded; the
fallback is logged once. Both paths give identical bytes (tests compare them).

Messages are given as one uint8 buffer and either `offsets` (int64, n + 1 entries: message `i`
is `data[offsets[i]:offsets[i + 1]]`) or `bounds` (int64, n x 2: message `i` is
`data[bounds[i, 0]:bounds[i, 1]]`, in any order). Results are `n x 32` uint8 arrays. Large
batches are split across threads (ctypes releases the GIL during each call); runs of 8
consecutive messages of equal length use the library's vector lanes.
"""

from __future__ import annotations

import ctypes
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from gridflex.rules.keccak import keccak256

log = logging.getLogger(__name__)

LIBRARY = Path(__file__).resolve().parent / "_keccak_batch.so"
SOURCE = LIBRARY.with_name("keccak_batch.c")
ABI_VERSION = 2
THREADS = max(1, min(int(os.environ.get("GRIDFLEX_KECCAK_THREADS", os.cpu_count() or 1)), 16))
_MIN_PER_THREAD = 2048  # messages; below this threads cost more than they save

_lib: ctypes.CDLL | None = None
_loaded = False


def _load() -> ctypes.CDLL | None:
    global _lib, _loaded
    if _loaded:
        return _lib
    _loaded = True
    if os.environ.get("GRIDFLEX_NATIVE", "1") == "0":
        log.info("gridflex.rules.native disabled (GRIDFLEX_NATIVE=0): keccak on pycryptodome")
        return None
    try:
        lib = ctypes.CDLL(str(LIBRARY))
        lib.gf_abi_version.restype = ctypes.c_int
        version = lib.gf_abi_version()
    except (OSError, AttributeError) as error:
        _fallback(f"{LIBRARY.name} not loadable ({error})")
        return None
    if version != ABI_VERSION or LIBRARY.stat().st_mtime < SOURCE.stat().st_mtime:
        _fallback(f"{LIBRARY.name} is older than keccak_batch.c")
        return None
    pointer, i64 = ctypes.c_void_p, ctypes.c_int64
    for name in ("gf_keccak256_batch", "gf_double_keccak256_batch"):
        getattr(lib, name).argtypes = [pointer, pointer, i64, pointer]
        getattr(lib, name).restype = None
    lib.gf_used_readings_leaves.argtypes = [pointer, pointer, i64, pointer, pointer]
    lib.gf_used_readings_leaves.restype = None
    lib.gf_used_readings_block.argtypes = [pointer, *[i64] * 4, *[pointer] * 5, i64, pointer]
    lib.gf_used_readings_block.restype = ctypes.c_int
    lib.gf_block_day_stats.argtypes = [pointer, *[i64] * 7, pointer, pointer]
    lib.gf_block_day_stats.restype = None
    lib.gf_block_masked_sums.argtypes = [pointer, *[i64] * 4, pointer, i64, pointer]
    lib.gf_block_masked_sums.restype = None
    lib.gf_merkle_tree.argtypes = [pointer, i64, pointer]
    lib.gf_merkle_tree.restype = ctypes.c_int
    lib.gf_keccak_ways.restype = ctypes.c_int
    _lib = lib
    return lib


def _fallback(reason: str) -> None:
    log.warning(
        "gridflex.rules.native: %s; keccak and baseline kernels fall back to pycryptodome and "
        "numpy "
        "(build with `make install` or `python -m gridflex.rules.native.build`)",
        reason,
    )


def available() -> bool:
    return _load() is not None


def _address(array: np.ndarray) -> int:
    return array.ctypes.data


def _prepare(data: np.ndarray | bytes, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(contiguous uint8 buffer, n x 2 int64 bounds), checked against the buffer."""
    if isinstance(data, bytes | bytearray | memoryview):
        buffer = np.frombuffer(data, dtype=np.uint8)
    else:
        buffer = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    offsets = np.asarray(offsets, dtype=np.int64)
    if offsets.ndim == 1:
        if len(offsets) < 1:
            raise ValueError("offsets needs n + 1 entries")
        bounds = np.stack([offsets[:-1], offsets[1:]], axis=1)
    elif offsets.ndim == 2 and offsets.shape[1] == 2:
        bounds = np.ascontiguousarray(offsets)
    else:
        raise ValueError("expected offsets (n + 1) or bounds (n x 2)")
    if len(bounds) and (
        bounds[:, 0].min() < 0
        or bounds[:, 1].max() > len(buffer)
        or np.any(bounds[:, 1] < bounds[:, 0])
    ):
        raise ValueError("message bounds must be ordered and within the buffer")
    return buffer, bounds


def _split(n: int) -> list[tuple[int, int]]:
    threads = max(1, min(THREADS, n // _MIN_PER_THREAD))
    edges = [n * k // threads for k in range(threads + 1)]
    return [(edges[k], edges[k + 1]) for k in range(threads)]


def _parallel(n: int, call: Callable[[int, int], None]) -> None:
    """`call(begin, end)` over [0, n) split across up to THREADS threads."""
    parts = _split(n)
    if len(parts) == 1:
        call(*parts[0])
        return
    with ThreadPoolExecutor(len(parts)) as pool:
        for future in [pool.submit(call, begin, end) for begin, end in parts]:
            future.result()


def _run(call: Callable[[int, int, np.ndarray], None], n: int) -> np.ndarray:
    out = np.empty((n, 32), dtype=np.uint8)
    if n:
        _parallel(n, lambda begin, end: call(begin, end, out[begin:end]))
    return out


def keccak256_batch(data: np.ndarray | bytes, offsets: np.ndarray) -> np.ndarray:
    """keccak256 of every message."""
    buffer, bounds = _prepare(data, offsets)
    n = len(bounds)
    lib = _load()
    if lib is None:
        view = memoryview(buffer)
        return _from_digests([keccak256(view[a:b]) for a, b in bounds.tolist()], n)
    return _run(
        lambda b, e, out: lib.gf_keccak256_batch(
            _address(buffer), _address(bounds[b:]), e - b, _address(out)
        ),
        n,
    )


def double_keccak256_batch(data: np.ndarray | bytes, offsets: np.ndarray) -> np.ndarray:
    """keccak256(keccak256(m)) of every message (StandardMerkleTree leaves of ABI words)."""
    buffer, bounds = _prepare(data, offsets)
    n = len(bounds)
    lib = _load()
    if lib is None:
        view = memoryview(buffer)
        return _from_digests([keccak256(keccak256(view[a:b])) for a, b in bounds.tolist()], n)
    return _run(
        lambda b, e, out: lib.gf_double_keccak256_batch(
            _address(buffer), _address(bounds[b:]), e - b, _address(out)
        ),
        n,
    )


def used_readings_leaves(
    data: np.ndarray | bytes, offsets: np.ndarray, device_words: np.ndarray
) -> np.ndarray:
    """`gridflex.rules.reports.used_readings_leaf(id_i, m_i)` =
    keccak256(keccak256(word(id_i) || keccak256(m_i))) for every message, with
    `device_words` the `n x 32` big-endian ABI words of the device ids."""
    buffer, bounds = _prepare(data, offsets)
    n = len(bounds)
    words = np.ascontiguousarray(device_words, dtype=np.uint8).reshape(-1)
    if len(words) != 32 * n:
        raise ValueError("device_words must be n x 32 bytes")
    lib = _load()
    if lib is None:
        view, wview = memoryview(buffer), memoryview(words)
        digests = [
            keccak256(keccak256(wview[32 * i : 32 * i + 32].tobytes() + keccak256(view[a:b])))
            for i, (a, b) in enumerate(bounds.tolist())
        ]
        return _from_digests(digests, n)

    def call(b: int, e: int, out: np.ndarray) -> None:
        lib.gf_used_readings_leaves(
            _address(buffer), _address(bounds[b:]), e - b, _address(words[32 * b :]),
            _address(out),
        )  # fmt: skip

    return _run(call, n)


def _block(history: np.ndarray) -> np.ndarray:
    history = np.ascontiguousarray(history)
    if history.ndim != 3 or history.dtype not in (np.int32, np.int64):
        raise ValueError("history must be an int32 or int64 [devices, days, columns] array")
    return history


def block_day_stats(
    history: np.ndarray, stats_days: int, total_from: int, missing: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """For the first `stats_days` days of a `[devices, days, columns]` block: whether no
    reading equals `missing` (bool `[devices, stats_days]`) and the int64 sum of columns
    `total_from:` (`[devices, stats_days]`). None without the native library."""
    lib = _load()
    if lib is None:
        return None
    history = _block(history)
    n, days, columns = history.shape
    if not (0 <= stats_days <= days and 0 <= total_from <= columns):
        raise ValueError("stats_days or total_from out of range")
    complete = np.empty((n, stats_days), dtype=np.uint8)
    totals = np.empty((n, stats_days), dtype=np.int64)
    row = days * columns * history.itemsize

    def call(b: int, e: int) -> None:
        lib.gf_block_day_stats(
            _address(history) + b * row, history.itemsize, e - b, days, columns, stats_days,
            total_from, missing, _address(complete[b:]), _address(totals[b:]),
        )  # fmt: skip

    if n:
        _parallel(n, call)
    return complete.view(bool), totals


def block_masked_sums(history: np.ndarray, mask: np.ndarray) -> np.ndarray | None:
    """int64 `[devices, columns]`: per device, the column sums over the days `d` with
    `mask[device, d]` (`mask` is `[devices, mask_days]`, `mask_days <= days`). None without
    the native library."""
    lib = _load()
    if lib is None:
        return None
    history = _block(history)
    n, days, columns = history.shape
    mask = np.ascontiguousarray(mask, dtype=bool)
    if mask.ndim != 2 or len(mask) != n or mask.shape[1] > days:
        raise ValueError("mask must be [devices, mask_days <= days]")
    mask_days = mask.shape[1]
    sums = np.empty((n, columns), dtype=np.int64)
    row = days * columns * history.itemsize

    def call(b: int, e: int) -> None:
        lib.gf_block_masked_sums(
            _address(history) + b * row, history.itemsize, e - b, days, columns,
            _address(mask[b:]), mask_days, _address(sums[b:]),
        )  # fmt: skip

    if n:
        _parallel(n, call)
    return sums


def merkle_root(leaves: np.ndarray) -> bytes | None:
    """The root of `gridflex.rules.merkle.MerkleTree.from_leaf_hashes` over `n x 32` leaf
    hashes (n >= 1); None when the library is not built (the caller falls back)."""
    leaves = np.ascontiguousarray(leaves, dtype=np.uint8).reshape(-1, 32)
    n = len(leaves)
    if n == 0:
        raise ValueError("a Merkle tree needs at least one leaf")
    lib = _load()
    if lib is None:
        return None
    nodes = np.empty((2 * n - 1, 32), dtype=np.uint8)
    if lib.gf_merkle_tree(_address(leaves), n, _address(nodes)):
        raise MemoryError("gf_merkle_tree")
    return nodes[0].tobytes()


def _from_digests(digests: list[bytes], n: int) -> np.ndarray:
    return np.frombuffer(b"".join(digests), dtype=np.uint8).reshape(n, 32).copy()
