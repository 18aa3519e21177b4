"""The scalar reference model of the baseline methods: an independent, per-device reading
of the definitions in `gridflex.rules.baselines` (dictionaries and lists, no numpy), kept
only for tests. The production engine (`gridflex.rules.baselines.compute_baselines`) is
property-tested against it on random histories, and its arithmetic helpers mirror
`BaselineMath.sol` function by function for the shared vectors."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

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

# ---------------------------------------------------------------------------------------


def average_floor(values: Sequence[int]) -> int:
    """floor(sum / count) towards minus infinity (`BaselineMath.averageFloor`)."""
    if not values:
        raise ValueError("average of no values")
    return sum(values) // len(values)


def x_of_y_baseline(day_values: Sequence[Sequence[int]]) -> list[int]:
    """Per-interval floor average over already-selected days (`BaselineMath.xOfYBaseline`);
    `day_values[day][interval]`."""
    return [average_floor(column) for column in zip(*day_values, strict=True)]


def highest_days(day_totals: Sequence[int], keep: int) -> list[int]:
    """Indices (ascending) of the `keep` days with the highest totals; days are given most
    recent first, and on equal totals the more recent (lower index) day wins
    (`BaselineMath.highestDays`)."""
    ranked = sorted(range(len(day_totals)), key=lambda i: (-day_totals[i], i))
    return sorted(ranked[:keep])


def capped_ratio(baseline_sum: int, actual_sum: int, cap_bps: int) -> tuple[int, int]:
    """CAISO day-of adjustment ratio `actual / baseline` as a fraction (num, den), capped
    to `[1 - cap, 1 + cap]` (`BaselineMath.dayOfAdjustmentCapped`). A non-positive
    baseline sum (net export) has no meaningful ratio: (1, 1), no adjustment."""
    if baseline_sum <= 0:
        return 1, 1
    if actual_sum * BPS > baseline_sum * (BPS + cap_bps):
        return BPS + cap_bps, BPS
    if actual_sum * BPS < baseline_sum * (BPS - cap_bps):
        return BPS - cap_bps, BPS
    return actual_sum, baseline_sum


def apply_ratio(baseline_wh: Sequence[int], num: int, den: int) -> list[int]:
    """floor(baseline * num / den) per interval (`BaselineMath.applyRatio`)."""
    return [value * num // den for value in baseline_wh]


def additive_adjustment(baseline_sum: int, actual_sum: int, window_intervals: int) -> int:
    """PJM symmetric additive adjustment: floor((actual - baseline) / intervals), the
    average per-interval difference over the adjustment window, added to every event
    interval (`BaselineMath.additiveAdjustment`)."""
    return (actual_sum - baseline_sum) // window_intervals


# ---------------------------------------------------------------------------------------
# Baselines
# ---------------------------------------------------------------------------------------


def reference_baseline(
    method: BaselineMethod,
    readings: Mapping[int, int],
    window: EventWindow,
    excluded_days: Collection[int] = (),
) -> BaselineResult:
    """One device's baseline for `window` from its `readings` (interval start -> Wh);
    `excluded_days` are UTC day numbers of the device's own past event days. Definitions
    and sources in the module docstring."""
    event = window.interval_starts
    if BaselineMethod(method) == BaselineMethod.MBMA:
        return _mbma(readings, window)
    rule = X_OF_Y_RULES[(BaselineMethod(method), is_weekend(window.event_day))]
    adjustment = window.adjustment_starts
    needed = adjustment + event
    pool = eligible_days(readings, window, rule.pool_days, excluded_days)
    actual = [readings.get(t) for t in adjustment]
    if len(pool) < rule.min_days or any(value is None for value in actual):
        return _insufficient(window)

    def day_values(day: int, starts: list[int]) -> list[int]:
        shift = (window.event_day - day) * SECONDS_PER_DAY
        return [readings[t - shift] for t in starts]

    totals = [sum(day_values(day, event)) for day in pool]
    keep = highest_days(totals, min(rule.keep_highest, len(pool)))
    selected = [pool[i] for i in keep]
    baseline = x_of_y_baseline([day_values(day, event) for day in selected])
    baseline_sum = sum(x_of_y_baseline([day_values(day, adjustment) for day in selected]))
    actual_sum = sum(value for value in actual if value is not None)
    if BaselineMethod(method) == BaselineMethod.CAISO_10_OF_10:
        baseline = apply_ratio(
            baseline, *capped_ratio(baseline_sum, actual_sum, ADJUSTMENT_CAP_BPS)
        )
    else:
        offset = additive_adjustment(baseline_sum, actual_sum, len(adjustment))
        baseline = [value + offset for value in baseline]

    used = set(needed)
    for day in pool:
        shift = (window.event_day - day) * SECONDS_PER_DAY
        used.update(t - shift for t in needed)
    quality = Quality.OK if len(pool) == rule.pool_days else Quality.FALLBACK
    return BaselineResult(tuple(baseline), quality, tuple(sorted(used)), tuple(selected))


def eligible_days(
    readings: Mapping[int, int],
    window: EventWindow,
    count: int,
    excluded_days: Collection[int] = (),
) -> list[int]:
    """The `count` most recent eligible days (most recent first): same day type as the
    event day, within the lookback, not excluded, every needed interval present."""
    excluded = set(excluded_days)
    weekend = is_weekend(window.event_day)
    needed = window.adjustment_starts + window.interval_starts
    days: list[int] = []
    for day in range(window.event_day - 1, window.event_day - LOOKBACK_DAYS - 1, -1):
        if len(days) == count:
            break
        if is_weekend(day) != weekend or day in excluded:
            continue
        shift = (window.event_day - day) * SECONDS_PER_DAY
        if all(t - shift in readings for t in needed):
            days.append(day)
    return days


def _mbma(readings: Mapping[int, int], window: EventWindow) -> BaselineResult:
    before = window.start - window.interval_seconds
    if before not in readings:
        return _insufficient(window)
    event = window.interval_starts
    return BaselineResult(tuple(readings[before] for _ in event), Quality.OK, (before, *event), ())


def _insufficient(window: EventWindow) -> BaselineResult:
    event = window.interval_starts
    return BaselineResult((0,) * len(event), Quality.INSUFFICIENT_DATA, tuple(event), ())
