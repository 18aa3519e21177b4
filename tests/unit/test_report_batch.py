"""The batch report builder gives the roots of `gridflex.rules.reports.build_report_trees` built
device by device from the scalar reference model."""

from __future__ import annotations

import numpy as np
import pytest
from support.baseline_vectors import random_device_histories
from support.reference_baselines import reference_baseline

from gridflex.rules import native
from gridflex.rules.baselines import (
    SECONDS_PER_DAY,
    EventWindow,
    compute_baselines,
    delivered_wh,
    excluded_mask,
    history_block,
)
from gridflex.rules.merkle import MerkleTree, merkle_root, merkle_roots
from gridflex.rules.native.build import build
from gridflex.rules.report_batch import (
    device_record_leaves,
    pack_used_readings_batch,
    used_readings_leaves,
    used_readings_of_batch,
)
from gridflex.rules.reports import DeviceRecord, Quality, build_report_trees, pack_used_readings
from gridflex.rules.types import BaselineMethod


@pytest.mark.parametrize("use_native", [True, False], ids=["native", "fallback"])
@pytest.mark.parametrize("method", list(BaselineMethod))
def test_batch_roots_equal_the_per_device_report_trees(
    method: BaselineMethod, use_native: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if use_native and build(quiet=True) is None:
        pytest.skip("no C compiler")
    monkeypatch.setattr(native, "_loaded", not use_native)
    monkeypatch.setattr(native, "_lib", None)
    monkeypatch.setattr(native, "_MIN_PER_THREAD", 4)
    rng = np.random.default_rng(11 + int(method))
    start = 20159 * SECONDS_PER_DAY + 17 * 3600
    window = EventWindow(start, start + 8 * 900, 900)
    readings, excluded = random_device_histories(rng, method, window, 40)
    for device_readings in readings:  # the oracle only settles devices with event readings
        device_readings.update({t: int(rng.integers(-500, 3000)) for t in window.interval_starts})
    history = history_block(method, readings, window)
    batch = compute_baselines(method, history, window, excluded_mask(window, excluded))
    device_ids = [1000 + 7 * d for d in range(len(readings))]
    cap = 400

    records, used = [], {}
    for d, device_id in enumerate(device_ids):
        result = reference_baseline(method, readings[d], window, excluded[d])
        metered = [readings[d][t] for t in window.interval_starts]
        ok = result.quality != Quality.INSUFFICIENT_DATA
        delivered = sum(delivered_wh(0, result.baseline_wh, metered, cap)) if ok else 0
        records.append(DeviceRecord(device_id, d % 3, sum(result.baseline_wh), sum(metered),
                                    delivered, result.quality))  # fmt: skip
        used[device_id] = pack_used_readings((t, readings[d][t]) for t in result.used_intervals)
    trees = build_report_trees(records, used, bid_count=3)
    assert {r.quality for r in records} >= {Quality.OK, Quality.INSUFFICIENT_DATA}

    packed, bounds = pack_used_readings_batch(batch, history, chunk_devices=7)
    for d, device_id in enumerate(device_ids):
        assert packed[bounds[d, 0] : bounds[d, 1]].tobytes() == used[device_id]
    ids = np.array(device_ids)
    columns = [np.array([getattr(r, f) for r in records]) for f in
               ("bid_index", "baseline_wh", "metered_wh", "delivered_wh", "quality")]  # fmt: skip
    leaves = device_record_leaves(ids, *columns)
    assert [bytes(leaf) for leaf in leaves] == [r.leaf() for r in records]
    assert merkle_root(leaves) == trees.devices_root
    assert merkle_root(used_readings_leaves(device_ids, packed, bounds)) == trees.readings_root
    packed_bytes, leaves = used_readings_of_batch(batch, history.astype(np.int32), ids)
    assert dict(packed_bytes) == used
    assert merkle_root(leaves) == trees.readings_root


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8, 13])
def test_merkle_root_equals_the_tree_root(count: int) -> None:
    leaves = [bytes([i]) * 32 for i in range(count)]
    assert merkle_root(leaves) == MerkleTree.from_leaf_hashes(leaves).root
    arrays = [np.frombuffer(b"".join(leaves), dtype=np.uint8).reshape(-1, 32)] * 2
    assert merkle_roots(*arrays) == [MerkleTree.from_leaf_hashes(leaves).root] * 2
