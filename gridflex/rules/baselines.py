"""Baselines and delivered energy: what a device would have consumed without the event,
and how much flexibility it therefore delivered. The Python twin of
`contracts/libraries/BaselineMath.sol`; both pass `tests/vectors/baselines.json` to the unit.

This is the one baseline engine: it works on a numpy history block of many devices at
once (the oracle measures a whole request with it; `compute_baseline` is a batch of one),
and every method is one `MethodRule` entry in `METHODS` (what it reads, its block layout,
its computation). `tests/support/reference_baselines.py` is an independent scalar reading
of the same definitions, against which the engine is property-tested.

History block: an integer array `[devices, days, columns]` (int32 or int64) holding only
the intervals the method reads. Columns are `block_starts(method, window)` on the event
day (X-of-Y: the adjustment window then the event intervals; MBMA: the interval before the
event then the event intervals); day index `i` is the UTC day
`window.event_day - (days - 1) + i`, so the last day is the event day, and column `j` of day
`i` is the interval `block_starts[j] - (days - 1 - i) * 86400`. X-of-Y blocks hold
`LOOKBACK_DAYS + 1` days, MBMA blocks one. A missing reading is `MISSING_WH`, so real
readings must lie strictly between -2**31 and 2**31 in an int32 block.

Units and rounding (the protocol's one rule): energy in Wh per interval (import positive,
export such as PV negative), time in unix seconds, days are UTC days
(`unix_day = ts // 86400`, Monday to Friday are weekdays). Every quotient rounds down,
i.e. towards minus infinity (Python `//`; the contract uses an explicit floor division
because Solidity's signed `/` truncates towards zero). No floats.

Methods (one `BaselineMethod` id per request):

- `MBMA`, ERCOT "meter before / meter after" (ERCOT Emergency Response Service and
  Load Resource baselines): every event interval's baseline is the metered energy of the
  last interval before the event start.
- `CAISO_10_OF_10`, CAISO's "10-in-10" customer load baseline (CAISO BPM for Demand
  Response, Proxy Demand Resource): the 10 most recent eligible weekdays, or for a
  weekend event day the 4 most recent weekend days ("4-in-4"), within a 45-day lookback;
  each event interval's baseline is the floor average of the same interval over the
  selected days; then the multiplicative day-of adjustment capped at +/-20%.
- `PJM_HIGH_4_OF_5`, PJM's customer baseline load (PJM Manual 11, Economic Load
  Response): the 5 most recent eligible weekdays, of which the 4 with the highest
  consumption over the event intervals are averaged (weekend days: the highest 2 of the 3
  most recent weekend days); then PJM's symmetric additive adjustment (uncapped).

Eligible days: the days `event_day - 45 .. event_day - 1` of the event day's type
(weekday or weekend day), not in `excluded_days` (the device's own event days), and with
every interval present that the method needs on that day (the adjustment window and the
event intervals, each shifted back by whole days). Public holidays are not known to the
protocol and count as ordinary days.

Day-of adjustment window: the 3 hours that end 1 hour before the event start
(`[start - 4 h, start - 1 h)`, 12 intervals at 15 minutes, 6 at 30 minutes). Its actual
sum is the event day's metered energy over those intervals; its baseline sum is the sum
of the per-interval floor averages over the selected days.

Fallbacks (GridFlex choices; CAISO and PJM fall back to event days, which a trustless
protocol cannot): with fewer eligible days than the method's pool but at least its
documented minimum (`DayRule.min_days`), the baseline uses the days that exist and the
result is `Quality.FALLBACK`; with fewer, or with an adjustment-window reading missing on
the event day, it is `Quality.INSUFFICIENT_DATA` with a zero baseline, which settles as
zero delivery. Missing event-interval readings are the oracle's to flag; a baseline only
needs history.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

import numpy as np

from gridflex.rules import native
from gridflex.rules.reports import Quality
from gridflex.rules.types import BaselineMethod, Direction

SECONDS_PER_HOUR = 3600
SECONDS_PER_DAY = 86_400
LOOKBACK_DAYS = 45
ADJUSTMENT_WINDOW_SECONDS = 3 * SECONDS_PER_HOUR
ADJUSTMENT_GAP_SECONDS = SECONDS_PER_HOUR
ADJUSTMENT_CAP_BPS = 2_000
BPS = 10_000
MISSING_WH = -(2**31)
CHUNK_DEVICES = 8192
NATIVE_CHUNK_DEVICES = 16_384
_SAFE_PRODUCT = 2**62
_THURSDAY = 3  # unix day 0 (1970-01-01) was a Thursday; Monday = 0


@dataclass(frozen=True)
class DayRule:
    """Day selection of one X-of-Y method for one day type: the `pool_days` most recent
    eligible days are read, the `keep_highest` of them with the highest consumption over
    the event intervals are averaged, and at least `min_days` eligible days are needed
    (fewer than `pool_days` gives `Quality.FALLBACK`)."""

    pool_days: int
    keep_highest: int
    min_days: int


X_OF_Y_RULES: dict[tuple[BaselineMethod, bool], DayRule] = {
    # (method, weekend event day) -> rule
    (BaselineMethod.CAISO_10_OF_10, False): DayRule(pool_days=10, keep_highest=10, min_days=5),
    (BaselineMethod.CAISO_10_OF_10, True): DayRule(pool_days=4, keep_highest=4, min_days=2),
    (BaselineMethod.PJM_HIGH_4_OF_5, False): DayRule(pool_days=5, keep_highest=4, min_days=3),
    (BaselineMethod.PJM_HIGH_4_OF_5, True): DayRule(pool_days=3, keep_highest=2, min_days=2),
}


@dataclass(frozen=True)
class EventWindow:
    """The event's intervals `[start, end)`, unix seconds. `interval_seconds` divides an
    hour (900 or 1800 in practice) so the adjustment window falls on interval bounds."""

    start: int
    end: int
    interval_seconds: int

    def __post_init__(self) -> None:
        if self.interval_seconds <= 0 or SECONDS_PER_HOUR % self.interval_seconds:
            raise ValueError(f"interval_seconds must divide 3600, got {self.interval_seconds}")
        if self.end <= self.start or (self.end - self.start) % self.interval_seconds:
            raise ValueError("the window must hold a positive whole number of intervals")
        if self.start % self.interval_seconds:
            raise ValueError("the window must start on an interval boundary")

    @property
    def interval_starts(self) -> list[int]:
        return list(range(self.start, self.end, self.interval_seconds))

    @property
    def event_day(self) -> int:
        """The UTC day of the start: history days are counted back from it."""
        return self.start // SECONDS_PER_DAY

    @property
    def adjustment_starts(self) -> list[int]:
        """The day-of adjustment window: 3 hours ending 1 hour before the start."""
        first = self.start - ADJUSTMENT_GAP_SECONDS - ADJUSTMENT_WINDOW_SECONDS
        return list(range(first, self.start - ADJUSTMENT_GAP_SECONDS, self.interval_seconds))


@dataclass(frozen=True)
class ReadingSpan:
    """Readings `start <= t < end`, and when `daily_seconds` is set only those within
    `daily_seconds` after `start`'s time of day on each day."""

    start: int
    end: int
    daily_seconds: int | None = None

    def contains(self, interval_start: int) -> bool:
        if not self.start <= interval_start < self.end:
            return False
        offset = (interval_start - self.start) % SECONDS_PER_DAY
        return self.daily_seconds is None or offset < self.daily_seconds


@dataclass(frozen=True)
class BaselineResult:
    """One device's baseline for one event.

    `used_intervals`: every interval start the method read, ascending: the history days'
    needed intervals (for PJM all 5 ranked days, not only the 4 averaged), the event
    day's adjustment window and the event intervals; the oracle commits these readings.
    With `INSUFFICIENT_DATA` the baseline is all zeros and only the event intervals are
    listed. `selected_days`: the UTC days averaged, most recent first."""

    baseline_wh: tuple[int, ...]
    quality: Quality
    used_intervals: tuple[int, ...]
    selected_days: tuple[int, ...] = ()


def is_weekend(unix_day: int) -> bool:
    return (unix_day + _THURSDAY) % 7 >= 5


# ---------------------------------------------------------------------------------------
# Methods: one entry per BaselineMethod
# ---------------------------------------------------------------------------------------

ChunkResult = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""(baseline_wh int64 [devices, event intervals], quality uint8 [devices], pool and
selected bool [devices, LOOKBACK_DAYS]) of one chunk of a history block."""


@dataclass(frozen=True)
class MethodRule:
    """Everything the engine knows about one method: `block_days` days of history block
    (the event day last), its `block_starts` columns on the event day (always ending with
    the event intervals), the `reading_span` an oracle reads from its store for it, and
    `compute` (a chunk of the block, the window, its excluded-day mask or None) ->
    `ChunkResult`. Adding a method is one entry here, its `BaselineMethod` id, and its
    twin in `BaselineMath.sol`."""

    block_days: int
    block_starts: Callable[[EventWindow], list[int]]
    reading_span: Callable[[EventWindow], ReadingSpan]
    compute: Callable[[np.ndarray, EventWindow, np.ndarray | None], ChunkResult]


def _mbma_starts(window: EventWindow) -> list[int]:
    return [window.start - window.interval_seconds, *window.interval_starts]


def _mbma_span(window: EventWindow) -> ReadingSpan:
    return ReadingSpan(window.start - window.interval_seconds, window.end)


def _mbma_chunk(block: np.ndarray, window: EventWindow, excluded: np.ndarray | None) -> ChunkResult:
    """Every event interval's baseline is the interval before the start."""
    before = block[:, 0, 0].astype(np.int64)
    present = before != MISSING_WH
    baseline = np.repeat(np.where(present, before, 0)[:, None], len(window.interval_starts), 1)
    quality = np.where(present, Quality.OK, Quality.INSUFFICIENT_DATA).astype(np.uint8)
    no_days = np.zeros((len(block), LOOKBACK_DAYS), dtype=bool)
    return baseline, quality, no_days, no_days


def _x_of_y_starts(window: EventWindow) -> list[int]:
    return window.adjustment_starts + window.interval_starts


def _x_of_y_span(window: EventWindow) -> ReadingSpan:
    """Per past day, readings from the adjustment window's start to the event end at the
    same time of day; the read starts a day before the lookback because the adjustment
    window can begin on the day before the event day."""
    today_from = window.start - ADJUSTMENT_GAP_SECONDS - ADJUSTMENT_WINDOW_SECONDS
    start = today_from - (LOOKBACK_DAYS + 1) * SECONDS_PER_DAY
    daily = window.end - today_from
    return ReadingSpan(start, window.end, daily if daily < SECONDS_PER_DAY else None)


def _x_of_y_rule(method: BaselineMethod) -> MethodRule:
    return MethodRule(
        LOOKBACK_DAYS + 1, _x_of_y_starts, _x_of_y_span, partial(_x_of_y_chunk, method)
    )


def _x_of_y_chunk(
    method: BaselineMethod, block: np.ndarray, window: EventWindow, excluded: np.ndarray | None
) -> ChunkResult:
    """The X-of-Y methods (module docstring): eligible days, the pool, the highest days,
    the floor averages and the method's day-of adjustment."""
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
    else:  # PJM: the symmetric additive adjustment, floor((actual - baseline) / intervals)
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
    """CAISO's day-of adjustment ratio `actual / baseline` per device as (num, den), capped
    to `[1 - cap, 1 + cap]` (`BaselineMath.dayOfAdjustmentCapped`); a non-positive baseline
    sum (net export) has no meaningful ratio: (1, 1)."""
    cap = ADJUSTMENT_CAP_BPS
    high = actual_sum * BPS > baseline_sum * (BPS + cap)
    low = actual_sum * BPS < baseline_sum * (BPS - cap)
    positive = baseline_sum > 0
    num = np.where(high, BPS + cap, np.where(low, BPS - cap, actual_sum))
    den = np.where(high | low, BPS, baseline_sum)
    return np.where(positive, num, 1), np.where(positive, den, 1)


METHODS: dict[BaselineMethod, MethodRule] = {
    BaselineMethod.MBMA: MethodRule(1, _mbma_starts, _mbma_span, _mbma_chunk),
    BaselineMethod.CAISO_10_OF_10: _x_of_y_rule(BaselineMethod.CAISO_10_OF_10),
    BaselineMethod.PJM_HIGH_4_OF_5: _x_of_y_rule(BaselineMethod.PJM_HIGH_4_OF_5),
}


def block_starts(method: BaselineMethod, window: EventWindow) -> list[int]:
    """The event-day interval starts of the block's columns."""
    return METHODS[BaselineMethod(method)].block_starts(window)


def block_days(method: BaselineMethod) -> int:
    return METHODS[BaselineMethod(method)].block_days


def reading_span(method: int, window: EventWindow) -> ReadingSpan:
    """The readings `method` can need for `window`."""
    return METHODS[BaselineMethod(method)].reading_span(window)


def recomputable_on_chain(method: int, window: EventWindow) -> bool:
    """Whether the chain can recompute a record of `method` from its used readings alone
    (`BaselineMath.measureUsedReadings`): when the block's columns span at most a day (or
    it has one day: MBMA), so that no two history days share an interval and the used
    readings say which days were read (for X-of-Y: 4 h of adjustment lead + the window)."""
    if block_days(method) == 1:
        return True
    return window.end - block_starts(method, window)[0] <= SECONDS_PER_DAY


# ---------------------------------------------------------------------------------------
# The engine
# ---------------------------------------------------------------------------------------


def empty_block(
    method: BaselineMethod, window: EventWindow, devices: int, dtype: type = np.int32
) -> np.ndarray:
    """A history block of `devices` with every reading missing."""
    shape = (devices, block_days(method), len(block_starts(method, window)))
    return np.full(shape, MISSING_WH, dtype=dtype)


def history_block(
    method: BaselineMethod,
    readings_per_device: Sequence[Mapping[int, int]],
    window: EventWindow,
    dtype: type[np.signedinteger] = np.int64,
) -> np.ndarray:
    """The block for `readings_per_device` (interval start -> Wh, one mapping per device)."""
    starts = block_starts(method, window)
    block = empty_block(method, window, len(readings_per_device), dtype)
    days = block.shape[1]
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
    rule = METHODS[method]
    if chunk_devices is None:
        chunk_devices = NATIVE_CHUNK_DEVICES if native.available() else CHUNK_DEVICES
    devices, events = history.shape[0], len(window.interval_starts)
    if history.shape[1:] != (rule.block_days, len(rule.block_starts(window))):
        raise ValueError(f"history block shape {history.shape} does not fit the method and window")
    baseline = np.zeros((devices, events), dtype=np.int64)
    quality = np.zeros(devices, dtype=np.uint8)
    pool = np.zeros((devices, LOOKBACK_DAYS), dtype=bool)
    selected = np.zeros((devices, LOOKBACK_DAYS), dtype=bool)

    def one_chunk(begin: int) -> None:
        rows = slice(begin, min(begin + chunk_devices, devices))
        chunk_excluded = None if excluded is None else excluded[rows]
        out = rule.compute(history[rows], window, chunk_excluded)
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


def compute_baseline(
    method: BaselineMethod,
    readings: Mapping[int, int],
    window: EventWindow,
    excluded_days: Collection[int] = (),
) -> BaselineResult:
    """One device's baseline for `window` from its `readings` (interval start -> Wh);
    `excluded_days` are UTC day numbers of the device's own past event days: the engine
    on a batch of one."""
    block = history_block(method, [readings], window)
    batch = compute_baselines(method, block, window, excluded_mask(window, [excluded_days]))
    return batch.result(0)


# ---------------------------------------------------------------------------------------
# Delivery
# ---------------------------------------------------------------------------------------

_DELIVERY_SIGN = {Direction.REDUCE_CONSUMPTION: 1, Direction.INCREASE_CONSUMPTION: -1}


def delivered_per_interval(
    direction: int, baseline_wh: np.ndarray, metered_wh: np.ndarray, cap_wh: np.ndarray | int
) -> np.ndarray:
    """Per device and interval: reduce (0) `max(0, baseline - metered)`, increase (1)
    `max(0, metered - baseline)`, each capped at the device's `cap_wh` per interval (DESIGN
    "Baseline methods"; `BaselineMath.deliveredWh`). int64 arrays `[devices, intervals]`,
    `cap_wh` one per device."""
    sign = _DELIVERY_SIGN[Direction(direction)]
    cap = np.asarray(cap_wh, dtype=np.int64)
    if np.any(cap < 0):
        raise ValueError("the cap cannot be negative")
    gap = np.maximum(sign * (baseline_wh - metered_wh), 0)
    return np.minimum(gap, cap[..., None] if cap.ndim else cap)


def delivered_wh(
    direction: int,
    baseline_wh: Sequence[int],
    metered_wh: Sequence[int],
    cap_wh_per_interval: int,
) -> tuple[int, ...]:
    """`delivered_per_interval` of one device's event intervals."""
    if len(baseline_wh) != len(metered_wh):
        raise ValueError("baseline and metered need one value per event interval each")
    delivered = delivered_per_interval(
        direction,
        np.asarray(baseline_wh, dtype=np.int64),
        np.asarray(metered_wh, dtype=np.int64),
        cap_wh_per_interval,
    )
    return tuple(int(v) for v in delivered)


def device_cap_wh(
    awarded_w: int, device_capacity_w: int, bid_capacity_w: int, interval_seconds: int
) -> int:
    """The device's pro-rata share of the bid's awarded power times one interval, in Wh:
    `awarded_w * device_capacity_w // bid_capacity_w * interval_seconds // 3600`
    (`BaselineMath.deviceCapWh`)."""
    if bid_capacity_w <= 0:
        raise ValueError("the bid's capacity must be positive")
    return awarded_w * device_capacity_w // bid_capacity_w * interval_seconds // SECONDS_PER_HOUR
