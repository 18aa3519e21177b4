"""Ingest logic against a real store, on SQLite and (when it answers) PostgreSQL: every
check, all-or-nothing batches, idempotent resends and conflict evidence."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from oracle_testkit import (
    DOMAIN,
    INTERVAL,
    SimulatedMeter,
    StaticDirectory,
    past_slot,
    row_counts,
)
from sqlalchemy import Engine, MetaData, UniqueConstraint, inspect, select
from sqlmodel import Session, SQLModel

from gridflex.rules.attestation import meter_domain_separator, unit_digest
from oracle.clock import WallClock
from oracle.db import LEGACY_SEQUENCE_CONSTRAINT, init_db
from oracle.ingest import IngestLimits, Ingestor, Rejection, UnitStatus
from oracle.models import ConflictEvidence, MeterUnitRecord, Reading
from oracle.registry_cache import DeviceHistory


def _statuses(result: object) -> list[str]:
    return [unit.status.value for unit in result.results]  # type: ignore[attr-defined]


def _stored_energy(engine: Engine, device_id: int) -> dict[int, int]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(Reading.interval_start, Reading.energy_wh).where(Reading.device_id == device_id)
        )
        return {interval_start: energy_wh for interval_start, energy_wh in rows}


def test_batch_is_accepted_then_resend_is_an_idempotent_duplicate(
    ingestor: Ingestor, store_engine: Engine, meters: list[SimulatedMeter]
) -> None:
    start = past_slot()
    units = [meter.unit(start, [100, -50, 0, 1_200]) for meter in meters]

    first = ingestor.ingest_batch([unit.to_json() for unit in units])
    assert _statuses(first) == ["accepted"] * 3
    assert first.readings_stored == 12
    after_first = row_counts(store_engine)
    assert after_first == {"meter_units": 3, "readings": 12, "conflict_evidence": 0}

    again = ingestor.ingest_batch([unit.to_json() for unit in units])
    assert _statuses(again) == ["duplicate"] * 3
    assert again.stored and again.readings_stored == 0
    assert row_counts(store_engine) == after_first
    assert _stored_energy(store_engine, 1) == {
        start: 100,
        start + INTERVAL: -50,
        start + 2 * INTERVAL: 0,
        start + 3 * INTERVAL: 1_200,
    }


def test_stored_units_read_back_through_the_orm_exactly_as_signed(
    ingestor: Ingestor, store_engine: Engine, meters: list[SimulatedMeter]
) -> None:
    """The hot path writes plain SQL (oracle.bulk): what the ORM then reads must be the
    signed unit, byte for byte, with a received_at it can parse."""
    start = past_slot()
    units = [meter.unit(start, [7, -3]) for meter in meters]
    before = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=5)

    assert ingestor.ingest_batch([unit.to_json() for unit in units]).stored

    with Session(store_engine) as session:
        records = session.scalars(select(MeterUnitRecord).order_by(MeterUnitRecord.device_id)).all()
        readings = session.scalars(select(Reading).order_by(Reading.device_id)).all()
    assert [r.digest for r in records] == [unit_digest(u, DOMAIN) for u in units]
    assert [bytes(r.signature) for r in records] == [u.signature for u in units]
    assert [json.loads(r.energy_wh) for r in records] == [[7, -3]] * 3
    assert all(r.interval_count == 2 and r.first_interval_start == start for r in records)
    received = {r.received_at.replace(tzinfo=None) for r in records}
    assert len(received) == 1 and before <= received.pop() <= before + timedelta(minutes=5)
    by_unit = {r.id: r.device_id for r in records}
    assert [(r.device_id, r.interval_start, r.energy_wh) for r in readings] == [
        (u.device_id, start + i * INTERVAL, energy)
        for u in units
        for i, energy in enumerate((7, -3))
    ]
    assert all(by_unit[r.unit_id] == r.device_id for r in readings)


def test_one_bad_unit_rejects_the_whole_batch(
    ingestor: Ingestor, store_engine: Engine, meters: list[SimulatedMeter]
) -> None:
    start = past_slot()
    good = meters[0].unit(start, [10, 20])
    forged = replace(meters[1].unit(start, [30, 40]), energy_wh=(31, 40))

    result = ingestor.ingest_batch([good.to_json(), forged.to_json()])

    assert _statuses(result) == ["valid", "rejected"]
    assert result.results[1].rejection == Rejection.BAD_SIGNATURE
    assert not result.stored and not result.has_conflict
    assert row_counts(store_engine) == {"meter_units": 0, "readings": 0, "conflict_evidence": 0}


def test_conflicting_value_is_kept_as_evidence_and_never_overwrites(
    ingestor: Ingestor, store_engine: Engine, meters: list[SimulatedMeter]
) -> None:
    meter, start = meters[0], past_slot()
    original = meter.unit(start, [500, 600])
    assert ingestor.ingest_batch([original.to_json()]).stored
    contradiction = meter.unit(start + INTERVAL, [601, 700])  # new sequence, same interval

    for _ in range(2):  # resent: still one piece of evidence
        result = ingestor.ingest_batch([contradiction.to_json()])
        assert result.results[0].rejection == Rejection.CONFLICT
        assert result.has_conflict
        assert "conflicting reading" in (result.results[0].reason or "")

    assert _stored_energy(store_engine, meter.device_id) == {start: 500, start + INTERVAL: 600}
    assert row_counts(store_engine) == {"meter_units": 1, "readings": 2, "conflict_evidence": 1}
    with store_engine.connect() as connection:
        evidence = connection.execute(select(ConflictEvidence)).one()
    assert evidence.interval_start == start + INTERVAL
    assert evidence.existing_unit_id is not None
    signed = json.loads(evidence.conflicting_unit)
    assert signed["energyWh"] == [601, 700]
    assert signed["signature"] == "0x" + contradiction.signature.hex()


def test_a_used_sequence_over_other_intervals_is_stored_and_over_the_same_is_a_conflict(
    ingestor: Ingestor, store_engine: Engine, meters: list[SimulatedMeter]
) -> None:
    """A sequence is signed but need not be unique (only the device key can reuse it): new
    intervals under it are stored, in later batches and in the same one; a second value for a
    stored interval is still the equivocation rule, whatever its sequence."""
    meter, start = meters[0], past_slot()
    assert ingestor.ingest_batch([meter.unit(start, [1, 2], sequence=7).to_json()]).stored
    later = meter.unit(start + 4 * INTERVAL, [3, 4], sequence=7)
    same_batch = [
        meter.unit(start + 8 * INTERVAL, [5], sequence=9).to_json(),
        meter.unit(start + 9 * INTERVAL, [6], sequence=9).to_json(),
    ]

    assert _statuses(ingestor.ingest_batch([later.to_json()])) == ["accepted"]
    assert _statuses(ingestor.ingest_batch(same_batch)) == ["accepted", "accepted"]
    contradiction = ingestor.ingest_batch([meter.unit(start, [1, 99], sequence=7).to_json()])

    assert contradiction.results[0].rejection == Rejection.CONFLICT
    assert _stored_energy(store_engine, meter.device_id) == {
        start: 1,
        start + INTERVAL: 2,
        start + 4 * INTERVAL: 3,
        start + 5 * INTERVAL: 4,
        start + 8 * INTERVAL: 5,
        start + 9 * INTERVAL: 6,
    }
    assert row_counts(store_engine) == {"meter_units": 4, "readings": 6, "conflict_evidence": 1}


def test_a_store_created_with_unique_sequences_is_migrated_and_keeps_its_rows(
    ingestor: Ingestor, store_engine: Engine, meters: list[SimulatedMeter]
) -> None:
    """A store from before the change still had UNIQUE (device_id, sequence): every batch
    reusing a sequence would fail its insert forever. init_db lifts it, keeping rows."""
    legacy = MetaData()
    for table in SQLModel.metadata.sorted_tables:
        table.to_metadata(legacy)
    legacy.tables["meter_units"].append_constraint(
        UniqueConstraint("device_id", "sequence", name=LEGACY_SEQUENCE_CONSTRAINT)
    )
    SQLModel.metadata.drop_all(store_engine)
    legacy.create_all(store_engine)
    meter, start = meters[0], past_slot()
    assert ingestor.ingest_batch([meter.unit(start, [1, 2], sequence=7).to_json()]).stored

    init_db(store_engine)
    init_db(store_engine)  # idempotent

    names = {c["name"] for c in inspect(store_engine).get_unique_constraints("meter_units")}
    assert LEGACY_SEQUENCE_CONSTRAINT not in names
    reused = meter.unit(start + 4 * INTERVAL, [3], sequence=7)
    assert _statuses(ingestor.ingest_batch([reused.to_json()])) == ["accepted"]
    assert _stored_energy(store_engine, meter.device_id) == {
        start: 1,
        start + INTERVAL: 2,
        start + 4 * INTERVAL: 3,
    }
    duplicate = ingestor.ingest_batch([meter.unit(start, [1, 2], sequence=7).to_json()])
    assert _statuses(duplicate) == ["duplicate"]  # the digest stayed unique


def test_resigned_identical_values_add_only_the_new_intervals(
    ingestor: Ingestor, store_engine: Engine, meters: list[SimulatedMeter]
) -> None:
    meter, start = meters[1], past_slot()
    assert ingestor.ingest_batch([meter.unit(start, [5, 6]).to_json()]).stored

    overlapping = meter.unit(start + INTERVAL, [6, 7, 8])
    result = ingestor.ingest_batch([overlapping.to_json()])

    assert _statuses(result) == ["accepted"] and result.readings_stored == 2
    assert _stored_energy(store_engine, meter.device_id) == {
        start: 5,
        start + INTERVAL: 6,
        start + 2 * INTERVAL: 7,
        start + 3 * INTERVAL: 8,
    }


def test_two_units_of_one_batch_that_disagree_are_evidence_of_each_other(
    ingestor: Ingestor, store_engine: Engine, meters: list[SimulatedMeter]
) -> None:
    meter, start = meters[0], past_slot()
    first = meter.unit(start, [10, 11])
    second = meter.unit(start + INTERVAL, [12, 13])
    same_again = first.to_json()

    result = ingestor.ingest_batch([first.to_json(), same_again, second.to_json()])

    assert _statuses(result) == ["valid", "duplicate", "rejected"]
    assert result.results[2].rejection == Rejection.CONFLICT
    assert row_counts(store_engine) == {"meter_units": 0, "readings": 0, "conflict_evidence": 1}
    with store_engine.connect() as connection:
        evidence = connection.execute(select(ConflictEvidence)).one()
    assert evidence.existing_unit_id is None
    assert json.loads(evidence.existing_unit)["energyWh"] == [10, 11]


def test_p256_units_verify_and_a_tampered_one_does_not(
    ingestor: Ingestor, store_engine: Engine, meters: list[SimulatedMeter]
) -> None:
    p256_meter, start = meters[2], past_slot()
    signed = p256_meter.unit(start, [200, 250])
    tampered = replace(p256_meter.unit(start + 2 * INTERVAL, [1]), sequence=99)

    assert ingestor.ingest_batch([signed.to_json()]).stored
    result = ingestor.ingest_batch([tampered.to_json()])
    assert result.results[0].rejection == Rejection.BAD_SIGNATURE
    assert row_counts(store_engine)["readings"] == 2


def test_plausibility_bound_is_capacity_times_interval_times_margin(
    ingestor: Ingestor, store_engine: Engine, meters: list[SimulatedMeter]
) -> None:
    meter, start = meters[0], past_slot()  # 10 kW: 2,500 Wh per 15 min, x1.5 = 3,750 Wh
    at_bound = meter.unit(start, [3_750, -3_750])
    above = meter.unit(start + 2 * INTERVAL, [-3_751])

    assert ingestor.ingest_batch([at_bound.to_json()]).stored
    result = ingestor.ingest_batch([above.to_json()])
    assert result.results[0].rejection == Rejection.IMPLAUSIBLE
    assert row_counts(store_engine)["readings"] == 2


def test_units_ending_beyond_the_clock_skew_are_rejected(
    ingestor: Ingestor, store_engine: Engine, meters: list[SimulatedMeter]
) -> None:
    meter = meters[0]
    now = int(time.time())
    current_slot = now - now % INTERVAL
    far_future = meter.unit(current_slot + 86_400, [1])
    ending_now = meter.unit(current_slot - INTERVAL, [1])  # ends at the current slot start

    result = ingestor.ingest_batch([far_future.to_json()])
    assert result.results[0].rejection == Rejection.FUTURE
    assert ingestor.ingest_batch([ending_now.to_json()]).stored
    assert row_counts(store_engine)["readings"] == 1


def test_malformed_units_are_rejected_with_the_field_that_is_wrong(
    ingestor: Ingestor, store_engine: Engine, meters: list[SimulatedMeter]
) -> None:
    good = meters[0].unit(past_slot(), [1]).to_json()
    missing = {key: value for key, value in good.items() if key != "sequence"}
    fractional = good | {"energyWh": [1.5]}
    off_grid = good | {"firstIntervalStart": good["firstIntervalStart"] + 1}

    result = ingestor.ingest_batch([missing, fractional, "not a unit", off_grid])  # type: ignore[list-item]

    reasons = [unit.reason or "" for unit in result.results]
    assert "missing field 'sequence'" in reasons[0]
    assert "energyWh must be integers" in reasons[1]
    assert "expected a JSON object" in reasons[2]
    assert "interval grid" in reasons[3]
    assert all(unit.status == UnitStatus.REJECTED for unit in result.results)
    assert row_counts(store_engine) == {"meter_units": 0, "readings": 0, "conflict_evidence": 0}


def test_unknown_and_deactivated_devices_and_other_domains_are_rejected(
    store_engine: Engine, meters: list[SimulatedMeter]
) -> None:
    active, deactivated = meters[0], meters[1]
    directory = StaticDirectory([active.registered(), deactivated.registered(active=False)])
    ingestor = Ingestor(store_engine, directory, WallClock(), DOMAIN, IngestLimits())
    start = past_slot()
    other_chain = meter_domain_separator(10, "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512")

    result = ingestor.ingest_batch(
        [
            SimulatedMeter.secp256k1(77, 1_000).unit(start, [1]).to_json(),
            deactivated.unit(start, [1]).to_json(),
            active.unit(start, [1], domain=other_chain).to_json(),
        ]
    )

    assert [unit.rejection for unit in result.results] == [
        Rejection.UNREGISTERED,
        Rejection.INACTIVE,
        Rejection.BAD_SIGNATURE,
    ]
    assert result.results[0].reason == "unregistered device 77"
    assert row_counts(store_engine)["meter_units"] == 0


def test_a_rotated_key_is_picked_up_when_a_unit_fails_the_cached_key(
    store_engine: Engine,
) -> None:
    old = SimulatedMeter.secp256k1(5, 10_000)
    rotated = SimulatedMeter.secp256k1(5, 10_000)

    class RotatingDirectory(StaticDirectory):
        def reload(self, device_id: int) -> DeviceHistory | None:
            self.devices[device_id] = rotated.registered()
            return super().reload(device_id)

    directory = RotatingDirectory([old.registered()])
    ingestor = Ingestor(store_engine, directory, WallClock(), DOMAIN, IngestLimits())

    result = ingestor.ingest_batch([rotated.unit(past_slot(), [42]).to_json()])

    assert _statuses(result) == ["accepted"]


def test_a_batch_spanning_hundreds_of_devices_is_checked_and_stored_once(
    store_engine: Engine,
) -> None:
    many = [SimulatedMeter.secp256k1(100 + i, 10_000) for i in range(250)]  # > SPANS_PER_QUERY
    ingestor = Ingestor(
        store_engine,
        StaticDirectory([meter.registered() for meter in many]),
        WallClock(),
        DOMAIN,
        IngestLimits(),
    )
    start = past_slot()
    units = [meter.unit(start, [1, 2, 3]).to_json() for meter in many]

    assert ingestor.ingest_batch(units).readings_stored == 750
    contradicted = many[-1].unit(start + 2 * INTERVAL, [4])
    result = ingestor.ingest_batch([*units, contradicted.to_json()])

    assert _statuses(result) == ["duplicate"] * 250 + ["rejected"]
    assert row_counts(store_engine) == {
        "meter_units": 250,
        "readings": 750,
        "conflict_evidence": 1,
    }
