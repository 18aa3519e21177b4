"""Report trees for many devices at once: the device-record and used-readings leaves of
`gridflex.rules.reports`, built from numpy arrays packed into one buffer and hashed by one
`gridflex.rules.native` batch call (native Keccak, or pycryptodome when the library is not built),
with no per-device objects, and the StandardMerkleTree root of `gridflex.rules.merkle.MerkleTree`.
Roots are identical to `gridflex.rules.reports.build_report_trees` (tests compare them); this module
only exists because per-device Python work dominates settlement at 10^5-10^6 devices.
Leaves are `n x 32` uint8 arrays (row `i` is device `i`'s leaf hash).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gridflex.rules import native
from gridflex.rules.baselines import (
    LOOKBACK_DAYS,
    MISSING_WH,
    SECONDS_PER_DAY,
    BaselineBatch,
    block_starts,
)
from gridflex.rules.reports import (
    USED_READING_BYTES,
    PackedReadings,
    Quality,
    pack_used_readings,
    used_readings_leaf,
)

USED_READING_DTYPE = np.dtype([("start", ">u8"), ("energy", ">i8")])
_WORD_LIMBS = 4  # a 32-byte ABI word as four big-endian 64-bit limbs


def device_record_leaves(
    device_id: np.ndarray,
    bid_index: np.ndarray,
    baseline_wh: np.ndarray,
    metered_wh: np.ndarray,
    delivered_wh: np.ndarray,
    quality: np.ndarray,
    chunk_devices: int = 65_536,
) -> np.ndarray:
    """`DeviceRecord(...).leaf()` for every device (all fields must fit in int64; signed
    fields are sign-extended to 256 bits as `abi.encode` does). Works `chunk_devices` at a
    time in reused buffers: fresh memory is slow to fault in at 10^6 devices."""
    fields = [
        np.asarray(values, dtype=np.int64)
        for values in (device_id, bid_index, baseline_wh, metered_wh, delivered_wh, quality)
    ]
    n = len(fields[0])
    width = len(fields) * _WORD_LIMBS * 8
    leaves = np.empty((n, 32), dtype=np.uint8)
    size = min(n, chunk_devices)
    native_words = np.empty((size, len(fields), _WORD_LIMBS), dtype=np.int64)
    words = np.empty_like(native_words, dtype=">i8")
    offsets = np.arange(size + 1, dtype=np.int64) * width
    for begin in range(0, n, chunk_devices):
        end = min(begin + chunk_devices, n)
        count = end - begin
        for k, values in enumerate(fields):
            native_words[:count, k, :3] = (values[begin:end] >> 63)[:, None]  # -1 or 0
            native_words[:count, k, 3] = values[begin:end]
        words[:count] = native_words[:count]  # to big-endian
        leaves[begin:end] = native.double_keccak256_batch(
            words[:count].reshape(-1).view(np.uint8), offsets[: count + 1]
        )
    return leaves


def pack_used_readings_batch(
    batch: BaselineBatch,
    history: np.ndarray,
    devices: np.ndarray | None = None,
    out: np.ndarray | None = None,
    chunk_devices: int = 65_536,
) -> tuple[np.ndarray, np.ndarray]:
    """The used readings (`BaselineResult.used_intervals` with their values from the block)
    of `devices` (default all), packed as `gridflex.rules.reports.pack_used_readings` does.
    Returns (packed records, bounds): the `k`-th device is `packed[bounds[k, 0]:bounds[k, 1]]`.
    Devices with the same number of read days are stored together, so each group is one
    contiguous block. `out`, a reusable buffer, avoids first-touch page faults when packing
    in chunks. The event day's block columns must be present for usable baselines."""
    if devices is not None:
        batch = BaselineBatch(
            batch.method, batch.window, batch.baseline_wh[devices], batch.quality[devices],
            batch.pool[devices], batch.selected[devices],
        )  # fmt: skip
        history = history[devices]
    window = batch.window
    starts = np.array(block_starts(batch.method, window), dtype=np.int64)
    event_columns = np.arange(len(starts) - len(window.interval_starts), len(starts))
    days = history.shape[1]
    usable = batch.quality != Quality.INSUFFICIENT_DATA
    pool_count = batch.pool.sum(axis=1)
    lengths = np.where(usable, (pool_count + 1) * len(starts), len(event_columns))
    total = int(lengths.sum())
    fits = out is not None and out.dtype == USED_READING_DTYPE and len(out) >= total
    packed = out[:total] if fits else np.empty(total, dtype=USED_READING_DTYPE)
    bounds = np.empty((len(lengths), 2), dtype=np.int64)
    first_day = window.event_day - (days - 1)
    offsets_in_day = starts - window.event_day * SECONDS_PER_DAY
    cursor = 0
    groups = (
        group[i : i + chunk_devices]
        for count in np.unique(pool_count[usable])
        for group in [np.flatnonzero(usable & (pool_count == count))]
        for i in range(0, len(group), chunk_devices)
    )
    for devices in groups:
        count = int(pool_count[devices[0]])
        day_index = np.empty((len(devices), count + 1), dtype=np.int64)
        day_index[:, :count] = np.nonzero(batch.pool[devices])[1].reshape(len(devices), count)
        day_index[:, count] = days - 1
        length = (count + 1) * len(starts)
        block = packed[cursor : cursor + len(devices) * length].reshape(len(devices), -1)
        times = (first_day + day_index)[:, :, None] * SECONDS_PER_DAY + offsets_in_day
        block["start"] = times.reshape(len(devices), -1)
        block["energy"] = history[devices[:, None], day_index, :].reshape(len(devices), -1)
        bounds[devices, 0] = cursor + np.arange(len(devices)) * length
        cursor += len(devices) * length
    for device in np.flatnonzero(~usable):
        block = packed[cursor : cursor + len(event_columns)]
        block["start"] = window.interval_starts
        block["energy"] = history[device, days - 1, event_columns]
        bounds[device, 0] = cursor
        cursor += len(event_columns)
    bounds[:, 1] = bounds[:, 0] + lengths
    return packed, bounds


def device_used_readings(batch: BaselineBatch, history: np.ndarray, device: int) -> bytes:
    """One device's packed used readings: the present cells of the days it read (its pool
    days and the event day; only the event intervals without a usable baseline), each
    interval once."""
    window = batch.window
    starts = block_starts(batch.method, window)
    days = history.shape[1]
    if batch.quality[device] == Quality.INSUFFICIENT_DATA:
        cells = [
            (days - 1, j) for j in range(len(starts) - len(window.interval_starts), len(starts))
        ]
    else:
        read = [days - 1 - LOOKBACK_DAYS + int(i) for i in np.flatnonzero(batch.pool[device])]
        cells = [(i, j) for i in [*read, days - 1] for j in range(len(starts))]
    values = {
        starts[j] - (days - 1 - i) * SECONDS_PER_DAY: int(history[device, i, j]) for i, j in cells
    }
    return pack_used_readings((t, v) for t, v in values.items() if v != MISSING_WH)


def used_readings_of_batch(
    batch: BaselineBatch, history: np.ndarray, device_ids: np.ndarray
) -> tuple[PackedReadings, np.ndarray]:
    """Every device's packed used readings and their leaves: packed and hashed for all
    devices at once, then redone one by one (`device_used_readings`) for the few whose
    read cells hold a gap (a missing event interval, an equivocated device) and for all
    when the block's columns span more than a day (two days then share intervals)."""
    starts = block_starts(batch.method, batch.window)
    if batch.window.end - starts[0] > SECONDS_PER_DAY and history.shape[1] > 1:
        irregular = np.arange(len(device_ids))
        empty = np.zeros(len(device_ids) * 2, dtype=np.int64).reshape(-1, 2)
        packed = PackedReadings(device_ids, np.empty(0, USED_READING_DTYPE), empty)
        leaves = np.empty((len(device_ids), 32), dtype=np.uint8)
    else:
        records, bounds = pack_used_readings_batch(batch, history)
        gaps = np.flatnonzero(records["energy"] == MISSING_WH)
        by_start = np.argsort(bounds[:, 0], kind="stable")
        owners = by_start[np.searchsorted(bounds[by_start, 0], gaps, side="right") - 1]
        irregular = np.unique(owners)
        leaves = used_readings_leaves(device_ids, records, bounds)
        packed = PackedReadings(device_ids, records, bounds)
    for device in irregular.tolist():
        data = device_used_readings(batch, history, device)
        packed.replaced[int(device_ids[device])] = data
        leaves[device] = np.frombuffer(used_readings_leaf(int(device_ids[device]), data), np.uint8)
    return packed, leaves


def device_words(device_ids: Sequence[int] | np.ndarray) -> np.ndarray:
    """The `uint256` ABI words of `device_ids` (`n x 32` uint8, big-endian)."""
    ids = np.asarray(device_ids)
    if ids.dtype.kind in "iu" and (ids.size == 0 or ids.min() >= 0):
        words = np.zeros((len(ids), _WORD_LIMBS), dtype=">u8")
        words[:, -1] = ids
        return words.view(np.uint8).reshape(len(ids), 32)
    raw = b"".join(int(i).to_bytes(32, "big") for i in device_ids)  # beyond 64 bits
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, 32)


def used_readings_leaves(
    device_ids: Sequence[int] | np.ndarray, packed: np.ndarray, bounds: np.ndarray
) -> np.ndarray:
    """`used_readings_leaf(device_id, packed_bytes)` for every device."""
    return native.used_readings_leaves(
        packed.view(np.uint8), bounds * USED_READING_BYTES, device_words(device_ids)
    )
