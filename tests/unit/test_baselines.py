"""Baselines and delivery: the hand-computed shared vectors (the Solidity library passes
the same ones, tests/integration/test_baseline_vectors.py), then properties of the math."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.baseline_vectors import VECTORS, BaselineVector, baseline_vectors
from support.reference_baselines import (
    additive_adjustment,
    apply_ratio,
    average_floor,
    capped_ratio,
    highest_days,
)

from gridflex.rules.baselines import (
    ADJUSTMENT_CAP_BPS,
    BPS,
    SECONDS_PER_DAY,
    EventWindow,
    compute_baseline,
    delivered_wh,
    device_cap_wh,
    is_weekend,
    recomputable_on_chain,
)
from gridflex.rules.reports import Quality
from gridflex.rules.types import BaselineMethod

BASELINE_VECTORS = baseline_vectors()


def _expected_used(vector: BaselineVector) -> tuple[int, ...]:
    """used_intervals by its definition: event intervals, plus for a usable baseline the
    event day's adjustment window (X-of-Y) or the interval before (MBMA) and every pool
    day's adjustment window and event intervals."""
    window, expected = vector.window, vector.expected
    used = set(window.interval_starts)
    if expected["quality"] != Quality.INSUFFICIENT_DATA:
        if vector.method == BaselineMethod.MBMA:
            used.add(vector.at(0, expected["before"]))
        else:
            needed = window.adjustment_starts + window.interval_starts
            used.update(needed)
            for relative in expected["pool_days"]:
                used.update(t + relative * SECONDS_PER_DAY for t in needed)
    return tuple(sorted(used))


@pytest.mark.parametrize("vector", BASELINE_VECTORS, ids=lambda v: v.name)
def test_baseline_vector(vector: BaselineVector) -> None:
    result = compute_baseline(
        BaselineMethod(vector.method), vector.readings, vector.window, vector.excluded_days
    )
    assert result.baseline_wh == tuple(vector.expected["baseline_wh"])
    assert result.quality == Quality(vector.expected["quality"])
    assert result.used_intervals == _expected_used(vector)
    selected = vector.expected.get("selected_days", [])
    assert result.selected_days == tuple(vector.day(d) for d in selected)


@pytest.mark.parametrize("case", VECTORS["delivered"], ids=lambda c: c["name"])
def test_delivered_vector(case: dict[str, Any]) -> None:
    delivered = delivered_wh(
        case["direction"], case["baseline_wh"], case["metered_wh"], case["cap_wh"]
    )
    assert delivered == tuple(case["expected"])


@pytest.mark.parametrize("case", VECTORS["device_cap"])
def test_device_cap_vector(case: dict[str, Any]) -> None:
    args = (case["awarded_w"], case["device_capacity_w"], case["bid_capacity_w"])
    assert device_cap_wh(*args, case["interval_seconds"]) == case["expected"]


@pytest.mark.parametrize("case", VECTORS["capped_ratio"])
def test_capped_ratio_vector(case: dict[str, Any]) -> None:
    ratio = capped_ratio(case["baseline_sum"], case["actual_sum"], case["cap_bps"])
    assert ratio == tuple(case["expected"])


@pytest.mark.parametrize("case", VECTORS["additive"])
def test_additive_adjustment_vector(case: dict[str, Any]) -> None:
    offset = additive_adjustment(case["baseline_sum"], case["actual_sum"], case["intervals"])
    assert offset == case["expected"]


@pytest.mark.parametrize("case", VECTORS["average_floor"])
def test_average_floor_vector(case: dict[str, Any]) -> None:
    assert average_floor(case["values"]) == case["expected"]


@pytest.mark.parametrize("case", VECTORS["highest_days"])
def test_highest_days_vector(case: dict[str, Any]) -> None:
    assert highest_days(case["totals"], case["keep"]) == case["expected"]


def test_unix_day_zero_was_a_thursday_and_weekends_are_saturday_and_sunday() -> None:
    assert [is_weekend(day) for day in range(7)] == [False, False, True, True] + [False] * 3


def test_adjustment_window_is_three_hours_ending_one_hour_before_the_start() -> None:
    window = EventWindow(
        20159 * SECONDS_PER_DAY + 17 * 3600, 20159 * SECONDS_PER_DAY + 18 * 3600, 900
    )
    starts = window.adjustment_starts
    assert len(starts) == 12
    assert starts[0] == window.start - 4 * 3600
    assert starts[-1] + 900 == window.start - 3600
    assert len(EventWindow(window.start, window.end, 1800).adjustment_starts) == 6


@pytest.mark.parametrize(
    ("start", "end", "interval"),
    [(900, 900, 900), (900, 1000, 900), (100, 1000, 900), (0, 1400, 700)],
)
def test_event_window_rejects_misaligned_or_empty_windows(
    start: int, end: int, interval: int
) -> None:
    with pytest.raises(ValueError):
        EventWindow(start, end, interval)


def test_delivered_rejects_mismatched_lengths_and_unknown_direction() -> None:
    with pytest.raises(ValueError):
        delivered_wh(0, [1, 2], [1], 10)
    with pytest.raises(ValueError):
        delivered_wh(2, [1], [1], 10)
    with pytest.raises(ValueError):
        device_cap_wh(1000, 1000, 0, 900)


def test_event_crossing_midnight_reads_the_same_hours_on_history_days() -> None:
    """A 23:30-00:30 event on a Wednesday: history days are shifted whole days from the
    start's day, so the 00:00 interval of day -1 is the Wednesday's midnight."""
    event_day = 20159
    window = EventWindow(event_day * SECONDS_PER_DAY + 23 * 3600 + 1800,
                         (event_day + 1) * SECONDS_PER_DAY + 1800, 900)  # fmt: skip
    readings = {t: 100 for t in range((event_day - 20) * SECONDS_PER_DAY, window.start, 900)}
    result = compute_baseline(BaselineMethod.CAISO_10_OF_10, readings, window)
    assert result.quality == Quality.OK
    assert result.baseline_wh == (100, 100, 100, 100)
    assert max(result.used_intervals) == window.end - 900


wh = st.integers(-(2**40), 2**40)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([0, 1]), st.lists(st.tuples(wh, wh), min_size=1, max_size=16),
       st.integers(0, 2**40))  # fmt: skip
def test_delivered_is_never_negative_nor_above_the_cap(
    direction: int, pairs: list[tuple[int, int]], cap: int
) -> None:
    baseline, metered = zip(*pairs, strict=True)
    delivered = delivered_wh(direction, baseline, metered, cap)
    assert all(0 <= value <= cap for value in delivered)
    mirrored = delivered_wh(1 - direction, metered, baseline, cap)
    assert delivered == mirrored


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 2**40), st.integers(-(2**40), 2**40), st.integers(0, BPS))
def test_capped_ratio_stays_within_the_cap(baseline_sum: int, actual_sum: int, cap: int) -> None:
    num, den = capped_ratio(baseline_sum, actual_sum, cap)
    assert den > 0
    assert num * BPS <= (BPS + cap) * den
    assert num * BPS >= (BPS - cap) * den


@settings(max_examples=300, deadline=None)
@given(st.lists(wh, min_size=1, max_size=12), st.integers(1, 2**40), st.integers(0, 2**41))
def test_caiso_adjusted_baseline_within_twenty_percent(
    baseline: list[int], baseline_sum: int, actual_sum: int
) -> None:
    adjusted = apply_ratio(baseline, *capped_ratio(baseline_sum, actual_sum, ADJUSTMENT_CAP_BPS))
    for before, after in zip(baseline, adjusted, strict=True):
        low, high = sorted((before * 8 // 10, before * 12 // 10))
        assert low <= after <= high


@settings(max_examples=300, deadline=None)
@given(st.lists(wh, min_size=1, max_size=10))
def test_average_floor_is_the_floor_between_min_and_max(values: list[int]) -> None:
    average = average_floor(values)
    assert min(values) <= average <= max(values)
    assert average * len(values) <= sum(values) < (average + 1) * len(values)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 10**7),
    st.integers(0, 10**7),
    st.integers(1, 10**7),
    st.sampled_from([900, 1800]),
)
def test_device_caps_of_a_bid_never_exceed_its_award(
    awarded: int, device_a: int, device_b: int, interval: int
) -> None:
    bid = device_a + device_b
    if bid == 0:
        return
    shares = [device_cap_wh(awarded, device, bid, interval) for device in (device_a, device_b)]
    assert sum(shares) <= awarded * interval // 3600


def test_recomputable_on_chain_needs_the_x_of_y_span_to_fit_a_day() -> None:
    """4 h of adjustment lead + the window must fit one day for an X-of-Y record to be
    recomputed from its used readings (`BaselineMath.measureUsedReadings`)."""
    day = 20_000 * 86_400
    twenty_hours = EventWindow(day, day + 20 * 3600, 900)
    longer = EventWindow(day, day + 20 * 3600 + 900, 900)
    assert recomputable_on_chain(BaselineMethod.CAISO_10_OF_10, twenty_hours)
    assert not recomputable_on_chain(BaselineMethod.CAISO_10_OF_10, longer)
    assert not recomputable_on_chain(BaselineMethod.PJM_HIGH_4_OF_5, longer)
    assert recomputable_on_chain(BaselineMethod.MBMA, EventWindow(day, day + 48 * 3600, 1800))
