"""Baselines and delivered energy: what a device would have consumed without the event,
and how much flexibility it therefore delivered. The Python twin of
`contracts/libraries/BaselineMath.sol`; both pass `tests/vectors/baselines.json` to the unit.

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

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from gridflex.rules.reports import Quality
from gridflex.rules.types import BaselineMethod, Direction

SECONDS_PER_HOUR = 3600
SECONDS_PER_DAY = 86_400
LOOKBACK_DAYS = 45
ADJUSTMENT_WINDOW_SECONDS = 3 * SECONDS_PER_HOUR
ADJUSTMENT_GAP_SECONDS = SECONDS_PER_HOUR
ADJUSTMENT_CAP_BPS = 2_000
BPS = 10_000
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


# ---------------------------------------------------------------------------------------
# Arithmetic shared with BaselineMath.sol
# ---------------------------------------------------------------------------------------


def is_weekend(unix_day: int) -> bool:
    return (unix_day + _THURSDAY) % 7 >= 5


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


def compute_baseline(
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


def recomputable_on_chain(method: int, window: EventWindow) -> bool:
    """Whether the chain can recompute a record of `method` from its used readings alone
    (`BaselineMath.measureUsedReadings`): always for MBMA; for the X-of-Y methods when the
    adjustment lead (4 h) plus the window fit one day, so that no two history days share an
    interval and the used readings say which days were averaged."""
    if BaselineMethod(method) == BaselineMethod.MBMA:
        return True
    lead = ADJUSTMENT_GAP_SECONDS + ADJUSTMENT_WINDOW_SECONDS
    return window.end - window.start + lead <= SECONDS_PER_DAY


# ---------------------------------------------------------------------------------------
# Delivery
# ---------------------------------------------------------------------------------------


def delivered_wh(
    direction: int,
    baseline_wh: Sequence[int],
    metered_wh: Sequence[int],
    cap_wh_per_interval: int,
) -> tuple[int, ...]:
    """Per interval: reduce (0) `max(0, baseline - metered)`, increase (1)
    `max(0, metered - baseline)`, each capped at `cap_wh_per_interval` (DESIGN "Baseline
    methods"; `BaselineMath.deliveredWh`)."""
    if len(baseline_wh) != len(metered_wh):
        raise ValueError("baseline and metered need one value per event interval each")
    if cap_wh_per_interval < 0:
        raise ValueError("the cap cannot be negative")
    sign = {Direction.REDUCE_CONSUMPTION: 1, Direction.INCREASE_CONSUMPTION: -1}[
        Direction(direction)
    ]
    return tuple(
        min(max(0, sign * (baseline - metered)), cap_wh_per_interval)
        for baseline, metered in zip(baseline_wh, metered_wh, strict=True)
    )


def device_cap_wh(
    awarded_w: int, device_capacity_w: int, bid_capacity_w: int, interval_seconds: int
) -> int:
    """The device's pro-rata share of the bid's awarded power times one interval, in Wh:
    `awarded_w * device_capacity_w // bid_capacity_w * interval_seconds // 3600`
    (`BaselineMath.deviceCapWh`)."""
    if bid_capacity_w <= 0:
        raise ValueError("the bid's capacity must be positive")
    return awarded_w * device_capacity_w // bid_capacity_w * interval_seconds // SECONDS_PER_HOUR
