"""Vectorized baselines: `gridflex.rules.baselines.compute_baseline` for many devices at once, on a
numpy history block, for large events (the oracle) and the `settle` benchmark. Results are
identical to the scalar function (tests compare them on random data); the definitions and
their sources are in `gridflex.rules.baselines`.

History block: an integer array `[devices, days, columns]` (int32 or int64) holding only
the intervals the method reads. Columns are `block_starts(method, window)` on the event
day (X-of-Y: the adjustment window then the event intervals; MBMA: the interval before the
event then the event intervals); day index `i` is the UTC day
`window.event_day - (days - 1) + i`, so the last day is the event day, and column `j` of day
`i` is the interval `block_starts[j] - (days - 1 - i) * 86400`. X-of-Y blocks hold
`LOOKBACK_DAYS + 1` days, MBMA blocks one. A missing reading is `MISSING_WH`, so real
readings must lie strictly between -2**31 and 2**31.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from gridflex.rules import native
from gridflex.rules.baselines import (
    ADJUSTMENT_CAP_BPS,
    BPS,
    LOOKBACK_DAYS,
    SECONDS_PER_DAY,
    X_OF_Y_RULES,
    BaselineResult,
    EventWindow,
    is_weekend,
)
from gridflex.rules.reports import Quality
from gridflex.rules.types import BaselineMethod

MISSING_WH = -(2**31)
CHUNK_DEVICES = 8192
NATIVE_CHUNK_DEVICES = 16_384
_SAFE_PRODUCT = 2**62


def block_starts(method: BaselineMethod, window: EventWindow) -> list[int]:
    """The event-day interval starts of the block's columns."""
    if BaselineMethod(method) == BaselineMethod.MBMA:
        return [window.start - window.interval_seconds, *window.interval_starts]
    return window.adjustment_starts + window.interval_starts


def block_days(method: BaselineMethod) -> int:
    return 1 if BaselineMethod(method) == BaselineMethod.MBMA else LOOKBACK_DAYS + 1


def history_block(
    method: BaselineMethod,
    readings_per_device: Sequence[Mapping[int, int]],
    window: EventWindow,
    dtype: type[np.signedinteger] = np.int64,
) -> np.ndarray:
    """The block for `readings_per_device` (interval start -> Wh, one mapping per device)."""
    starts = block_starts(method, window)
    days = block_days(method)
    block = np.full((len(readings_per_device), days, len(starts)), MISSING_WH, dtype=dtype)
    for device, readings in enumerate(readings_per_device):
        for i in range(days):
            shift = (days - 1 - i) * SECONDS_PER_DAY
            for j, start in enumerate(starts):
                value = readings.get(start - shift)
                if value is not None:
                    block[device, i, j] = value
    return block


def excluded_mask(
    window: EventWindow, excluded_days_per_device: Sequence[Collection[int]]
) -> np.ndarray:
    """`[devices, LOOKBACK_DAYS]` booleans: history day `i` (UTC day
    `event_day - LOOKBACK_DAYS + i`) was an event day of the device."""
    first = window.event_day - LOOKBACK_DAYS
    mask = np.zeros((len(excluded_days_per_device), LOOKBACK_DAYS), dtype=bool)
    for device, days in enumerate(excluded_days_per_device):
        for day in days:
            if 0 <= day - first < LOOKBACK_DAYS:
                mask[device, day - first] = True
    return mask


@dataclass(frozen=True)
class BaselineBatch:
    """Baselines of many devices. `pool` are the history days the method read (for PJM
    the ranked 5, for CAISO the averaged days) and `selected` the days averaged, both
    `[devices, LOOKBACK_DAYS]` with day `i` = UTC day `event_day - LOOKBACK_DAYS + i`
    (all False for MBMA and for devices without a usable baseline)."""

    method: BaselineMethod
    window: EventWindow
    baseline_wh: np.ndarray  # int64 [devices, event intervals]
    quality: np.ndarray  # uint8 [devices], Quality values
    pool: np.ndarray
    selected: np.ndarray

    def used_intervals(self, device: int) -> tuple[int, ...]:
        event = self.window.interval_starts
        if self.quality[device] == Quality.INSUFFICIENT_DATA:
            return tuple(event)
        starts = block_starts(self.method, self.window)
        used = set(starts)
        first = self.window.event_day - LOOKBACK_DAYS
        for i in np.flatnonzero(self.pool[device]):
            shift = (self.window.event_day - (first + int(i))) * SECONDS_PER_DAY
            used.update(t - shift for t in starts)
        return tuple(sorted(used))

    def result(self, device: int) -> BaselineResult:
        """The device's result, as `compute_baseline` returns it."""
        first = self.window.event_day - LOOKBACK_DAYS
        selected = tuple(first + int(i) for i in np.flatnonzero(self.selected[device])[::-1])
        return BaselineResult(
            tuple(int(v) for v in self.baseline_wh[device]),
            Quality(int(self.quality[device])),
            self.used_intervals(device),
            selected,
        )


def compute_baselines(
    method: BaselineMethod,
    history: np.ndarray,
    window: EventWindow,
    excluded: np.ndarray | None = None,
    chunk_devices: int | None = None,
) -> BaselineBatch:
    """All devices' baselines from a history block (module docstring); `excluded` is an
    `excluded_mask`. Works in chunks of devices to bound temporary memory (larger chunks
    with the native kernels, which need no `[devices, days, columns]` temporaries)."""
    method = BaselineMethod(method)
    if chunk_devices is None:
        chunk_devices = NATIVE_CHUNK_DEVICES if native.available() else CHUNK_DEVICES
    devices, events = history.shape[0], len(window.interval_starts)
    if history.shape[1:] != (block_days(method), len(block_starts(method, window))):
        raise ValueError(f"history block shape {history.shape} does not fit the method and window")
    baseline = np.zeros((devices, events), dtype=np.int64)
    quality = np.zeros(devices, dtype=np.uint8)
    pool = np.zeros((devices, LOOKBACK_DAYS), dtype=bool)
    selected = np.zeros((devices, LOOKBACK_DAYS), dtype=bool)

    def one_chunk(begin: int) -> None:
        rows = slice(begin, min(begin + chunk_devices, devices))
        if method == BaselineMethod.MBMA:
            before = history[rows, 0, 0].astype(np.int64)
            present = before != MISSING_WH
            baseline[rows] = np.where(present, before, 0)[:, None]
            quality[rows] = np.where(present, Quality.OK, Quality.INSUFFICIENT_DATA)
            return
        chunk_excluded = None if excluded is None else excluded[rows]
        out = _x_of_y_chunk(method, history[rows], window, chunk_excluded)
        baseline[rows], quality[rows], pool[rows], selected[rows] = out

    # With the native kernels, chunks (disjoint rows) run in threads: numpy and the kernels
    # release the GIL. Without them, one chunk at a time bounds the temporaries.
    begins = range(0, devices, chunk_devices)
    if native.available() and native.THREADS > 1 and len(begins) > 1:
        with ThreadPoolExecutor(native.THREADS) as executor:
            for future in [executor.submit(one_chunk, begin) for begin in begins]:
                future.result()
    else:
        for begin in begins:
            one_chunk(begin)
    return BaselineBatch(method, window, baseline, quality, pool, selected)


def _x_of_y_chunk(
    method: BaselineMethod, block: np.ndarray, window: EventWindow, excluded: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rule = X_OF_Y_RULES[(method, is_weekend(window.event_day))]
    adjustment = len(window.adjustment_starts)
    history, event_day = block[:, :LOOKBACK_DAYS, :], block[:, LOOKBACK_DAYS, :]
    first = window.event_day - LOOKBACK_DAYS
    same_type = np.array(
        [is_weekend(first + i) == is_weekend(window.event_day) for i in range(LOOKBACK_DAYS)]
    )
    # One native pass gives complete days and event totals (numpy when not built).
    stats = native.block_day_stats(block, LOOKBACK_DAYS, adjustment, MISSING_WH)
    complete, day_totals = stats if stats is not None else (None, None)
    if complete is None:
        complete = (history != MISSING_WH).all(axis=2)
    eligible = complete & same_type
    if excluded is not None:
        eligible &= ~excluded
    # Rank eligible days from the most recent (1 = the day before the event).
    recency = np.cumsum(eligible[:, ::-1], axis=1, dtype=np.int16)[:, ::-1]
    pool = eligible & (recency <= rule.pool_days)
    pool_count = pool.sum(axis=1)
    actual = event_day[:, :adjustment].astype(np.int64)
    usable = (pool_count >= rule.min_days) & (actual != MISSING_WH).all(axis=1)
    pool &= usable[:, None]
    keep = np.minimum(pool_count, rule.keep_highest)

    if rule.keep_highest >= rule.pool_days:
        selected = pool
    else:
        # Highest event totals first; on equal totals the more recent (higher index) day.
        totals = day_totals
        if totals is None:
            totals = history[:, :, adjustment:].sum(axis=2, dtype=np.int64)
        key = np.where(pool, totals * 64 + np.arange(LOOKBACK_DAYS), np.iinfo(np.int64).min)
        rank = np.empty_like(key)
        order = np.argsort(key, axis=1, kind="stable")
        np.put_along_axis(rank, order, np.arange(LOOKBACK_DAYS - 1, -1, -1)[None, :], axis=1)
        selected = pool & (rank < keep[:, None])

    count = np.maximum(selected.sum(axis=1), 1)[:, None]
    sums = native.block_masked_sums(block, selected)
    if sums is None:
        sums = np.where(selected[:, :, None], history, 0).sum(axis=1, dtype=np.int64)
    average = np.floor_divide(sums, count)
    baseline_sum = average[:, :adjustment].sum(axis=1)
    actual_sum = actual.sum(axis=1)
    event = average[:, adjustment:]
    if method == BaselineMethod.CAISO_10_OF_10:
        num, den = _capped_ratio(baseline_sum, actual_sum)
        if np.abs(num).max(initial=0) * np.abs(event).max(initial=0) < _SAFE_PRODUCT:
            baseline = np.floor_divide(event * num[:, None], den[:, None])
        else:  # exact, unbounded integers for extreme values
            baseline = (event.astype(object) * num[:, None] // den[:, None]).astype(np.int64)
    else:
        offset = np.floor_divide(actual_sum - baseline_sum, adjustment)
        baseline = event + offset[:, None]
    baseline = np.where(usable[:, None], baseline, 0)
    full = pool_count >= rule.pool_days
    quality = np.where(
        usable, np.where(full, Quality.OK, Quality.FALLBACK), Quality.INSUFFICIENT_DATA
    ).astype(np.uint8)
    return baseline, quality, pool, selected


def _capped_ratio(
    baseline_sum: np.ndarray, actual_sum: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """`gridflex.rules.baselines.capped_ratio` per device."""
    cap = ADJUSTMENT_CAP_BPS
    high = actual_sum * BPS > baseline_sum * (BPS + cap)
    low = actual_sum * BPS < baseline_sum * (BPS - cap)
    positive = baseline_sum > 0
    num = np.where(high, BPS + cap, np.where(low, BPS - cap, actual_sum))
    den = np.where(high | low, BPS, baseline_sum)
    return np.where(positive, num, 1), np.where(positive, den, 1)
