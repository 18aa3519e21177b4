"""Hostile batches against the real store (SQLite and PostgreSQL): registered meters'
signed units mixed with tampered ones (any field replaced by any JSON value). Ingest never
raises, answers one result per unit, and keeps its all-or-nothing promise: a batch with a
rejected unit adds no unit and no reading; a clean batch adds exactly its new readings."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle_testkit import SimulatedMeter, past_slot, row_counts
from sqlalchemy import Engine

from oracle.ingest import Ingestor, UnitStatus

FIELDS = ("deviceId", "firstIntervalStart", "intervalSeconds", "sequence", "energyWh", "signature")
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
tampering = st.one_of(st.none(), st.tuples(st.sampled_from(FIELDS), json_values))
"""None: the unit as signed; else (field, value) replacing one field."""
slots = itertools.count(400)  # a fresh day per example: no accidental conflicts


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plan=st.lists(st.tuples(st.integers(0, 2), tampering), min_size=1, max_size=6))
def test_hostile_batches_never_raise_and_store_all_or_nothing(
    ingestor: Ingestor,
    store_engine: Engine,
    meters: list[SimulatedMeter],
    plan: list[tuple[int, tuple[str, Any] | None]],
) -> None:
    start = past_slot(next(slots))
    batch: list[Any] = []
    for offset, (meter_index, change) in enumerate(plan):
        unit = meters[meter_index].unit(start + offset * 4 * 900, [10, -20, 30, 0])
        payload = unit.to_json()
        if change is not None:
            payload[change[0]] = change[1]
        batch.append(payload)
    before = row_counts(store_engine)

    result = ingestor.ingest_batch(batch)

    assert [unit.index for unit in result.results] == list(range(len(batch)))
    after = row_counts(store_engine)
    if result.rejected:
        assert all(unit.reason for unit in result.rejected)
        assert (after["meter_units"], after["readings"]) == (
            before["meter_units"],
            before["readings"],
        )
    else:
        accepted = result.count(UnitStatus.ACCEPTED)
        assert after["meter_units"] == before["meter_units"] + accepted
        assert after["readings"] == before["readings"] + result.readings_stored
