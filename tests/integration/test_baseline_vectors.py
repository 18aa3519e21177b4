"""Python and Solidity baseline math agree to the unit: BaselineMath (through its harness on
anvil) passes the same hand-computed vectors as gridflex.rules.baselines, fed the vectors' expected
pool days (calendar day selection is off-chain), then hypothesis compares both on random
inputs."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import reference_baselines as reference
from support.baseline_vectors import VECTORS, BaselineVector, baseline_vectors
from web3 import Web3
from web3.contract import Contract

from gridflex.chain.anvil import anvil_dev_account
from gridflex.chain.client import ChainClient
from gridflex.chain.compiler import REPO_ROOT, compile_contracts
from gridflex.rules import baselines
from gridflex.rules.baselines import ADJUSTMENT_CAP_BPS, X_OF_Y_RULES, is_weekend
from gridflex.rules.measurement import RecordFigures, device_figures, recompute_from_used_readings
from gridflex.rules.reports import Quality, pack_used_readings
from gridflex.rules.types import BaselineMethod

pytestmark = pytest.mark.integration

USABLE = [v for v in baseline_vectors() if v.expected["quality"] != Quality.INSUFFICIENT_DATA]
FIXTURE_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def harness(w3: Web3) -> Contract:
    artifacts = compile_contracts(REPO_ROOT / "contracts" / "test" / "harness")
    client = ChainClient(w3, anvil_dev_account(0), artifacts)
    return client.deploy(artifacts["BaselineMathHarness"])


def _solidity_baseline(harness: Contract, vector: BaselineVector) -> list[int]:
    window = vector.window
    if vector.method == BaselineMethod.MBMA:
        before = vector.readings[window.start - window.interval_seconds]
        return harness.functions.mbma(before, len(window.interval_starts)).call()
    pool = vector.expected["pool_days"]
    day_event = [vector.shifted(d, window.interval_starts) for d in pool]
    day_adjustment = [vector.shifted(d, window.adjustment_starts) for d in pool]
    actual = vector.shifted(0, window.adjustment_starts)
    if vector.method == BaselineMethod.CAISO_10_OF_10:
        call = harness.functions.caisoBaseline(
            day_event, day_adjustment, actual, ADJUSTMENT_CAP_BPS
        )
    else:
        rule = X_OF_Y_RULES[(BaselineMethod.PJM_HIGH_4_OF_5, is_weekend(window.event_day))]
        call = harness.functions.pjmBaseline(day_event, day_adjustment, actual, rule.keep_highest)
    return call.call()


@pytest.mark.parametrize("vector", USABLE, ids=lambda v: v.name)
def test_baseline_vector_in_solidity(harness: Contract, vector: BaselineVector) -> None:
    assert _solidity_baseline(harness, vector) == vector.expected["baseline_wh"]


@pytest.mark.parametrize("case", VECTORS["delivered"], ids=lambda c: c["name"])
def test_delivered_vector_in_solidity(harness: Contract, case: dict[str, Any]) -> None:
    args = (case["direction"], case["baseline_wh"], case["metered_wh"], case["cap_wh"])
    assert harness.functions.deliveredWh(*args).call() == case["expected"]


@pytest.mark.parametrize("case", VECTORS["device_cap"])
def test_device_cap_vector_in_solidity(harness: Contract, case: dict[str, Any]) -> None:
    args = (case["awarded_w"], case["device_capacity_w"], case["bid_capacity_w"])
    assert harness.functions.deviceCapWh(*args, case["interval_seconds"]).call() == case["expected"]


@pytest.mark.parametrize("case", VECTORS["capped_ratio"])
def test_capped_ratio_vector_in_solidity(harness: Contract, case: dict[str, Any]) -> None:
    args = (case["baseline_sum"], case["actual_sum"], case["cap_bps"])
    assert harness.functions.dayOfAdjustmentCapped(*args).call() == case["expected"]


@pytest.mark.parametrize("case", VECTORS["additive"])
def test_additive_vector_in_solidity(harness: Contract, case: dict[str, Any]) -> None:
    args = (case["baseline_sum"], case["actual_sum"], case["intervals"])
    assert harness.functions.additiveAdjustment(*args).call() == case["expected"]


@pytest.mark.parametrize("case", VECTORS["average_floor"])
def test_average_floor_vector_in_solidity(harness: Contract, case: dict[str, Any]) -> None:
    assert harness.functions.averageFloor(case["values"]).call() == case["expected"]


@pytest.mark.parametrize("case", VECTORS["highest_days"])
def test_highest_days_vector_in_solidity(harness: Contract, case: dict[str, Any]) -> None:
    assert harness.functions.highestDays(case["totals"], case["keep"]).call() == case["expected"]


wh = st.integers(-(2**40), 2**40)


def _days(draw: st.DrawFn, days: int, intervals: int) -> list[list[int]]:
    return [draw(st.lists(wh, min_size=intervals, max_size=intervals)) for _ in range(days)]


@st.composite
def _x_of_y_inputs(draw: st.DrawFn) -> tuple[list[list[int]], list[list[int]], list[int]]:
    days, events, adjustment = (
        draw(st.integers(1, 10)),
        draw(st.integers(1, 16)),
        draw(st.sampled_from([6, 12])),
    )
    actual = draw(st.lists(wh, min_size=adjustment, max_size=adjustment))
    return _days(draw, days, events), _days(draw, days, adjustment), actual


@FIXTURE_SETTINGS
@given(_x_of_y_inputs())
def test_caiso_python_equals_solidity_on_random_days(harness: Contract, inputs: tuple) -> None:
    day_event, day_adjustment, actual = inputs
    adjustment_sum = sum(reference.x_of_y_baseline(day_adjustment))
    ratio = reference.capped_ratio(adjustment_sum, sum(actual), ADJUSTMENT_CAP_BPS)
    expected = reference.apply_ratio(reference.x_of_y_baseline(day_event), *ratio)
    call = harness.functions.caisoBaseline(day_event, day_adjustment, actual, ADJUSTMENT_CAP_BPS)
    assert call.call() == expected


@FIXTURE_SETTINGS
@given(_x_of_y_inputs(), st.integers(1, 5))
def test_pjm_python_equals_solidity_on_random_days(
    harness: Contract, inputs: tuple, keep: int
) -> None:
    pool_event, pool_adjustment, actual = inputs
    chosen = reference.highest_days([sum(day) for day in pool_event], min(keep, len(pool_event)))
    adjustment_sum = sum(reference.x_of_y_baseline([pool_adjustment[i] for i in chosen]))
    offset = reference.additive_adjustment(adjustment_sum, sum(actual), len(actual))
    expected = [b + offset for b in reference.x_of_y_baseline([pool_event[i] for i in chosen])]
    call = harness.functions.pjmBaseline(pool_event, pool_adjustment, actual, keep)
    assert call.call() == expected


@FIXTURE_SETTINGS
@given(
    st.sampled_from([0, 1]),
    st.lists(st.tuples(wh, wh), min_size=1, max_size=16),
    st.integers(0, 2**40),
)
def test_delivered_python_equals_solidity_on_random_inputs(
    harness: Contract, direction: int, pairs: list[tuple[int, int]], cap: int
) -> None:
    baseline, metered = (list(column) for column in zip(*pairs, strict=True))
    expected = list(baselines.delivered_wh(direction, baseline, metered, cap))
    assert harness.functions.deliveredWh(direction, baseline, metered, cap).call() == expected


# ─── Records recomputed from used readings (DeliveryDispute's arithmetic) ─────────────────

CAP_WH = 700


def _honest(
    method: int,
    direction: int,
    window: baselines.EventWindow,
    readings: dict[int, int],
    excluded: tuple[int, ...] | set[int],
) -> tuple[RecordFigures, bytes]:
    """What an honest oracle records and commits for one device."""
    figures, needed = device_figures(
        BaselineMethod(method), direction, window, readings, tuple(excluded), CAP_WH
    )
    return figures, pack_used_readings((t, readings[t]) for t in needed if t in readings)


def _solidity_figures(
    harness: Contract, method: int, direction: int, window: baselines.EventWindow, used: bytes
) -> RecordFigures:
    measurement = (method, direction, window.start, window.end, window.interval_seconds, CAP_WH)
    baseline, metered, delivered, quality = harness.functions.measureUsedReadings(
        used, measurement
    ).call()
    return RecordFigures(baseline, metered, delivered, Quality(quality))


@pytest.mark.parametrize("direction", [0, 1])
@pytest.mark.parametrize("vector", baseline_vectors(), ids=lambda v: v.name)
def test_record_from_used_readings_matches_the_honest_record(
    harness: Contract, vector: BaselineVector, direction: int
) -> None:
    """Every shared vector (with its excluded days, which the chain never sees) plus metered
    event intervals: the record recomputed from the committed used readings alone, in
    Solidity and in Python, is the record an honest oracle posts."""
    readings = dict(vector.readings)
    for i, t in enumerate(vector.window.interval_starts):
        readings.setdefault(t, 300 * (i % 3) - 200)
    honest, used = _honest(vector.method, direction, vector.window, readings, vector.excluded_days)
    assert honest.quality == vector.expected["quality"]
    assert harness.functions.wellFormedUsedReadings(used).call()
    python = recompute_from_used_readings(vector.method, direction, vector.window, CAP_WH, used)
    assert python == honest
    assert _solidity_figures(harness, vector.method, direction, vector.window, used) == honest


@st.composite
def _device_histories(
    draw: st.DrawFn,
) -> tuple[int, int, baselines.EventWindow, dict[int, int], set[int]]:
    """A device over the 46 days an X-of-Y method reads (or MBMA's interval before), with
    gaps, excluded days, a random event day and time of day, 900 or 1800 s intervals."""
    method = draw(st.sampled_from(list(BaselineMethod)))
    step = draw(st.sampled_from([900, 1800]))
    event_day = draw(st.integers(20_000, 20_400))
    lead = baselines.ADJUSTMENT_GAP_SECONDS + baselines.ADJUSTMENT_WINDOW_SECONDS
    intervals = draw(st.integers(1, (86_400 - lead) // step if method else 8))
    start = event_day * 86_400 + draw(st.integers(0, 86_400 // step - 1)) * step
    window = baselines.EventWindow(start, start + intervals * step, step)
    missing = draw(st.sampled_from([0.0, 0.01, 0.1, 0.5]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = random.Random(seed)
    starts = (
        [start - step, *window.interval_starts]
        if method == BaselineMethod.MBMA
        else window.adjustment_starts + window.interval_starts
    )
    level = rng.randint(-3_000, 5_000)
    readings = {
        t - back * 86_400: level + rng.randint(-800, 800)
        for back in range(baselines.LOOKBACK_DAYS + 1)
        for t in starts
        if rng.random() >= missing
    }
    excluded = {event_day - rng.randint(1, 45) for _ in range(rng.randint(0, 8))}
    return method, draw(st.sampled_from([0, 1])), window, readings, excluded


@FIXTURE_SETTINGS
@given(_device_histories())
def test_record_from_used_readings_python_equals_solidity_on_random_histories(
    harness: Contract, case: tuple[int, int, baselines.EventWindow, dict[int, int], set[int]]
) -> None:
    method, direction, window, readings, excluded = case
    honest, used = _honest(method, direction, window, readings, excluded)
    assert recompute_from_used_readings(method, direction, window, CAP_WH, used) == honest
    assert _solidity_figures(harness, method, direction, window, used) == honest
