"""The oracle's whole-request measurement (`read_inputs` + `compute_report`) against the
same engine on one device at a time (`measure_device` over the readings in the store), on
random histories with gaps, excluded days and equivocated devices, in SQLite and
PostgreSQL; and `read_history` against `history_block` of the same readings."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from sqlalchemy import Engine, insert
from support.baseline_vectors import random_device_histories

from gridflex.rules.baselines import SECONDS_PER_DAY, EventWindow, history_block
from gridflex.rules.measurement import (
    AwardedBid,
    RequestFacts,
    RequestRows,
    measure_device,
    reading_span,
)
from gridflex.rules.types import BaselineMethod
from oracle.measurement import assemble_report, compute_report, read_history, read_inputs
from oracle.models import ConflictEvidence, MeterUnitRecord, Reading

KEY = "0x" + "42" * 32


def _store(engine: Engine, readings: dict[int, dict[int, int]], interval: int) -> None:
    unit = {
        "id": 1, "device_id": 1, "first_interval_start": 0, "interval_seconds": interval,
        "interval_count": 1, "sequence": 0, "energy_wh": "[0]", "signature": b"",
        "digest": b"\0" * 32, "received_at": datetime.now(UTC),
    }  # fmt: skip
    rows = [
        {"device_id": d, "interval_start": t, "energy_wh": wh, "interval_seconds": interval,
         "unit_id": 1}
        for d, series in readings.items() for t, wh in series.items()
    ]  # fmt: skip
    with engine.begin() as connection:
        connection.execute(insert(MeterUnitRecord).values(**unit))
        connection.execute(insert(Reading), rows)


def _facts(method: BaselineMethod, window: EventWindow, ids: list[int], excluded) -> RequestFacts:
    bids = (
        AwardedBid(0, 9_000, {d: 1_000 + d for d in ids[::2]}),
        AwardedBid(2, 4_000, {d: 3_000 for d in ids[1::2]}),
    )
    return RequestFacts(
        7, 0, "0x" + "11" * 20, 31337, "0x" + "22" * 20, 0, int(method), window, 3, bids,
        {d: frozenset(days) for d, days in zip(ids, excluded, strict=True) if days},
    )  # fmt: skip


@pytest.mark.parametrize("method", list(BaselineMethod))
@pytest.mark.parametrize(
    ("hour", "intervals", "interval_s"), [(17, 4, 900), (2, 3, 1800), (10, 42, 1800)]
)
def test_whole_request_equals_one_device_at_a_time(
    store_engine: Engine, method: BaselineMethod, hour: int, intervals: int, interval_s: int
) -> None:
    rng = np.random.default_rng(hour * 10 + int(method))
    start = 20159 * SECONDS_PER_DAY + hour * 3600
    window = EventWindow(start, start + intervals * interval_s, interval_s)
    histories, excluded = random_device_histories(rng, method, window, 24)
    ids = [100 + 3 * d for d in range(len(histories))]
    readings = dict(zip(ids, histories, strict=True))
    _store(store_engine, readings, interval_s)
    with store_engine.begin() as connection:  # another length, and an equivocated device
        connection.execute(insert(Reading).values(
            device_id=ids[0], interval_start=window.start - 7 * SECONDS_PER_DAY - 86_400 * 60,
            energy_wh=5, interval_seconds=3600, unit_id=1,
        ))  # fmt: skip
        connection.execute(insert(ConflictEvidence).values(
            device_id=ids[1], interval_start=window.start, conflicting_digest=b"\1" * 32,
            existing_digest=b"\2" * 32, conflicting_unit="{}", detected_at=datetime.now(UTC),
        ))  # fmt: skip
    facts = _facts(method, window, ids, excluded)

    rows = RequestRows.of(facts)
    expected_block = history_block(method, [readings[int(d)] for d in rows.device_id], window)
    assert (read_history(store_engine, facts, rows) == expected_block).all()

    report = compute_report(facts, read_inputs(store_engine, facts), KEY)
    span = reading_span(method, window)
    measured = []
    for bid in facts.bids:
        for device in sorted(bid.device_capacity_w):
            conflicts = {(device, window.start)} if device == ids[1] else set()
            own = {} if conflicts else {
                t: wh for t, wh in readings[device].items() if span.contains(t)
            }  # fmt: skip
            conflicts = {(device, t) for t in window.interval_starts} if conflicts else set()
            measured.append(measure_device(facts, bid, device, own, conflicts))
    one_by_one = assemble_report(
        facts, [m.record for m in measured],
        {m.record.device_id: m.used_readings for m in sorted(
            measured, key=lambda m: m.record.device_id)},
        KEY,
    )  # fmt: skip
    assert report.trees.records == one_by_one.trees.records
    assert report.trees.used_readings == one_by_one.trees.used_readings
    assert report.payload == one_by_one.payload
    assert report.signature == one_by_one.signature
    assert report.trees.devices_tree.root == report.payload.devices_root
    assert report.trees.readings_tree.root == report.payload.readings_root
    assert len({r.quality for r in report.trees.records}) >= 2
