"""The engine gives exactly the scalar reference model's results, device by device, on
random histories with gaps, excluded days and exports."""

from __future__ import annotations

import numpy as np
import pytest
from support.baseline_vectors import BaselineVector, baseline_vectors, random_device_histories
from support.reference_baselines import reference_baseline

from gridflex.rules import native
from gridflex.rules.baselines import (
    SECONDS_PER_DAY,
    EventWindow,
    compute_baselines,
    excluded_mask,
    history_block,
)
from gridflex.rules.native.build import build
from gridflex.rules.types import BaselineMethod


@pytest.mark.parametrize("method", list(BaselineMethod))
@pytest.mark.parametrize(
    ("event_day", "hour", "intervals", "interval_s"),
    [(20159, 17, 16, 900), (20162, 10, 4, 900), (20160, 2, 3, 1800), (20163, 23, 6, 900)],
)
@pytest.mark.parametrize("use_native", [True, False], ids=["native", "numpy"])
def test_vectorized_equals_scalar_on_random_histories(
    method: BaselineMethod,
    event_day: int,
    hour: int,
    intervals: int,
    interval_s: int,
    use_native: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if use_native and build(quiet=True) is None:
        pytest.skip("no C compiler")
    monkeypatch.setattr(native, "_loaded", not use_native)
    monkeypatch.setattr(native, "_lib", None)
    monkeypatch.setattr(native, "_MIN_PER_THREAD", 4)
    rng = np.random.default_rng(event_day * 100 + hour + int(method))
    start = event_day * SECONDS_PER_DAY + hour * 3600
    window = EventWindow(start, start + intervals * interval_s, interval_s)
    readings, excluded = random_device_histories(rng, method, window, 60)
    dtype = np.int32 if hour % 2 else np.int64
    batch = compute_baselines(
        method,
        history_block(method, readings, window, dtype),
        window,
        excluded_mask(window, excluded),
        chunk_devices=17,
    )
    for device in range(len(readings)):
        expected = reference_baseline(method, readings[device], window, excluded[device])
        assert batch.result(device) == expected, device


@pytest.mark.parametrize("vector", baseline_vectors(), ids=lambda v: v.name)
def test_vectorized_passes_the_shared_vectors(vector: BaselineVector) -> None:
    method = BaselineMethod(vector.method)
    block = history_block(method, [vector.readings], vector.window)
    mask = excluded_mask(vector.window, [vector.excluded_days])
    result = compute_baselines(method, block, vector.window, mask).result(0)
    assert result == reference_baseline(
        method, vector.readings, vector.window, vector.excluded_days
    )
    assert list(result.baseline_wh) == vector.expected["baseline_wh"]


def test_block_shape_must_fit_the_window() -> None:
    window = EventWindow(20159 * SECONDS_PER_DAY, 20159 * SECONDS_PER_DAY + 3600, 900)
    with pytest.raises(ValueError):
        compute_baselines(BaselineMethod.CAISO_10_OF_10, np.zeros((2, 3, 4), np.int32), window)
