"""Measurement edge cases: per-device records from hand-made readings (pure), then from the
real store (SQLite and PostgreSQL), the persisted report book, proofs and signatures."""

from __future__ import annotations

import dataclasses

import pytest
from eth_account import Account
from oracle_testkit import DOMAIN, INTERVAL, SimulatedMeter, past_slot
from sqlalchemy import Engine

from gridflex.rules.attestation import MeterUnit, verify_unit
from gridflex.rules.baselines import EventWindow
from gridflex.rules.measurement import recompute_from_used_readings, record_follows
from gridflex.rules.merkle import verify_proof
from gridflex.rules.reports import (
    DeviceRecord,
    Quality,
    pack_used_readings,
    unpack_used_readings,
    used_readings_leaf,
)
from gridflex.rules.types import BaselineMethod, Direction
from oracle.clock import WallClock
from oracle.committee import recover_signer
from oracle.ingest import Ingestor
from oracle.measurement import (
    AwardedBid,
    Measurer,
    RequestFacts,
    assemble_report,
    conflict_measurement,
    measure_device,
    measure_records,
    reading_span,
)
from oracle.report_book import ReportBook

MARKET = "0x9fE46736679d2D9a65F0992F6272dE9f3c7fa6e0"
COMMITTEE = "0xCf7Ed3AccA5a467e9e704C09E0bDfB8eE7D5B0Ba"
HOUR = 3600
DAY = 86_400


def facts(
    start: int,
    bids: tuple[AwardedBid, ...],
    *,
    direction: Direction = Direction.REDUCE_CONSUMPTION,
    method: BaselineMethod = BaselineMethod.MBMA,
    intervals: int = 4,
    bid_count: int | None = None,
) -> RequestFacts:
    return RequestFacts(
        request_id=7,
        round=0,
        market=MARKET,
        chain_id=31337,
        committee=COMMITTEE,
        direction=int(direction),
        baseline_method=int(method),
        window=EventWindow(start, start + intervals * INTERVAL, INTERVAL),
        bid_count=bid_count if bid_count is not None else len(bids),
        bids=bids,
    )


def series(start: int, values: list[int]) -> dict[int, int]:
    return {start + i * INTERVAL: value for i, value in enumerate(values)}


START = 1_700_006_400  # a Wednesday 00:00 UTC; on the 15-minute grid
BIG_BID = AwardedBid(0, 40_000, {1: 40_000})


# ─── One device, no I/O ────────────────────────────────────────────────────────────────


def test_reduction_below_the_interval_before_is_delivered() -> None:
    readings = series(START - INTERVAL, [1_000, 600, 700, 900, 1_200])
    measured = measure_device(facts(START, (BIG_BID,)), BIG_BID, 1, readings, set())
    assert measured.record == DeviceRecord(1, 0, 4_000, 3_400, 400 + 300 + 100, Quality.OK)
    assert unpack_used_readings(measured.used_readings) == sorted(readings.items())


def test_delivery_is_capped_at_the_devices_share_of_the_award() -> None:
    # 4 kW awarded to 6 kW + 2 kW of devices: the 6 kW one may deliver 3 kW = 750 Wh/15 min.
    bid = AwardedBid(0, 4_000, {1: 6_000, 2: 2_000})
    readings = series(START - INTERVAL, [2_000, 0, 0, 1_900, 2_500])
    record = measure_device(facts(START, (bid,)), bid, 1, readings, set()).record
    assert record.delivered_wh == 750 + 750 + 100 + 0
    assert record.quality == Quality.OK


def test_increase_requests_deliver_consumption_above_the_baseline() -> None:
    readings = series(START - INTERVAL, [-500, 200, -500, -900, 500])
    request = facts(START, (BIG_BID,), direction=Direction.INCREASE_CONSUMPTION)
    record = measure_device(request, BIG_BID, 1, readings, set()).record
    assert record.delivered_wh == 700 + 0 + 0 + 1_000
    assert (record.baseline_wh, record.metered_wh) == (-2_000, -700)


def test_a_missing_event_interval_gives_insufficient_data_and_zero_delivery() -> None:
    readings = series(START - INTERVAL, [1_000, 0, 0, 0, 0])
    del readings[START + 2 * INTERVAL]
    measured = measure_device(facts(START, (BIG_BID,)), BIG_BID, 1, readings, set())
    assert measured.record.quality == Quality.INSUFFICIENT_DATA
    assert measured.record.delivered_wh == 0
    assert measured.record.metered_wh == 0
    # The readings that exist are still committed, the missing one is not invented.
    assert len(unpack_used_readings(measured.used_readings)) == 4


def test_a_missing_baseline_interval_gives_insufficient_data() -> None:
    readings = series(START, [0, 0, 0, 0])
    record = measure_device(facts(START, (BIG_BID,)), BIG_BID, 1, readings, set()).record
    assert (record.quality, record.delivered_wh, record.baseline_wh) == (
        Quality.INSUFFICIENT_DATA,
        0,
        0,
    )


def test_conflict_evidence_on_a_needed_interval_voids_the_delivery() -> None:
    readings = series(START - INTERVAL, [1_000, 0, 0, 0, 0])
    request = facts(START, (BIG_BID,))
    conflicted = measure_device(request, BIG_BID, 1, readings, {(1, START - INTERVAL)}).record
    assert (conflicted.quality, conflicted.delivered_wh) == (Quality.CONFLICT, 0)
    elsewhere = measure_device(request, BIG_BID, 1, readings, {(1, START - 5 * INTERVAL)})
    assert elsewhere.record.quality == Quality.OK
    assert elsewhere.record.delivered_wh == 4_000
    other_device = measure_device(request, BIG_BID, 1, readings, {(2, START)}).record
    assert other_device.quality == Quality.OK


@pytest.mark.parametrize("direction", list(Direction))
@pytest.mark.parametrize(
    "method",
    [BaselineMethod.MBMA, BaselineMethod.CAISO_10_OF_10, BaselineMethod.PJM_HIGH_4_OF_5],
)
def test_the_published_conflict_record_follows_from_its_empty_used_readings(
    method: BaselineMethod, direction: Direction
) -> None:
    """Attack: void an honest report (and slash its signers) with an arithmetic proof on its
    CONFLICT record. The record as the oracle publishes it (no used readings, 0/0/0) is what
    the chain recomputes from those empty readings, so `challengeArithmetic` refuses it with
    ArithmeticCorrect (contracts/test/DeliveryDispute.t.sol, the same record in forge)."""
    request = facts(START, (BIG_BID,), method=method, direction=direction)
    published = conflict_measurement(request, BIG_BID, 1)
    record = published.record
    assert published.used_readings == b""
    assert (record.quality, record.baseline_wh, record.metered_wh, record.delivered_wh) == (
        Quality.CONFLICT,
        0,
        0,
        0,
    )
    recomputed = recompute_from_used_readings(
        int(method), int(direction), request.window, 8_000, published.used_readings
    )
    assert record_follows(record, recomputed)
    # The check can fail: the same record claiming a delivery, or a baseline, is voidable.
    assert not record_follows(dataclasses.replace(record, delivered_wh=1), recomputed)
    assert not record_follows(dataclasses.replace(record, baseline_wh=1), recomputed)


def test_reading_spans_cover_only_what_each_method_reads() -> None:
    window = EventWindow(START + 18 * HOUR, START + 20 * HOUR, INTERVAL)
    mbma = reading_span(BaselineMethod.MBMA, window)
    assert (mbma.start, mbma.end, mbma.daily_seconds) == (window.start - INTERVAL, window.end, None)
    caiso = reading_span(BaselineMethod.CAISO_10_OF_10, window)
    assert caiso.contains(window.start - 4 * HOUR - 46 * DAY)  # adjustment window, 46 days ago
    assert caiso.contains(window.end - INTERVAL - 3 * DAY)
    assert not caiso.contains(window.start - 4 * HOUR - INTERVAL - 3 * DAY)
    assert not caiso.contains(window.end - 3 * DAY)
    assert not caiso.contains(window.end)


def test_reports_are_deterministic_and_signed_by_the_configured_key() -> None:
    bids = (AwardedBid(0, 2_000, {1: 10_000}), AwardedBid(2, 3_000, {2: 4_000, 3: 4_000}))
    request = facts(START, bids, bid_count=3)
    readings = series(START - INTERVAL, [1_000, 200, 200, 200, 200])
    measured = [
        measure_device(request, bid, d, readings, set())
        for bid in bids
        for d in bid.device_capacity_w
    ]
    records = [m.record for m in measured]
    used = {m.record.device_id: m.used_readings for m in measured}
    key = Account.create().key.hex()
    first = assemble_report(request, records, used, key)
    second = assemble_report(request, list(reversed(records)), dict(reversed(used.items())), key)
    assert first.digest == second.digest and first.signature == second.signature
    # 2 kW over one 15-minute interval is 500 Wh; two devices sharing 3 kW get 375 each.
    assert first.payload.delivered_wh == [4 * 500, 0, 2 * 4 * 375]
    assert recover_signer(first.digest, first.signature or b"") == first.signer
    assert assemble_report(request, records, used).signature is None


# ─── From the store ────────────────────────────────────────────────────────────────────


@pytest.fixture
def meter_by_id(meters: list[SimulatedMeter]) -> dict[int, SimulatedMeter]:
    return {meter.device_id: meter for meter in meters}


def test_records_from_the_store_read_only_the_methods_intervals(
    ingestor: Ingestor, store_engine: Engine, meter_by_id: dict[int, SimulatedMeter]
) -> None:
    start = past_slot(2)
    for device_id in (1, 2):
        # Two intervals before the one MBMA reads, then the event.
        unit = meter_by_id[device_id].unit(start - 3 * INTERVAL, [9, 9, 1_000, 100, 100])
        assert ingestor.ingest_batch([unit]).stored
    # Device 3 skipped its last event interval.
    assert ingestor.ingest_batch([meter_by_id[3].unit(start - INTERVAL, [800, 100])]).stored
    bid = AwardedBid(1, 20_000, {1: 10_000, 2: 40_000, 3: 5_000})
    request = facts(start, (bid,), intervals=2, bid_count=2)
    records, used = measure_records(store_engine, request)
    assert [r.device_id for r in records] == [1, 2, 3]
    assert [r.quality for r in records] == [Quality.OK, Quality.OK, Quality.INSUFFICIENT_DATA]
    assert [r.delivered_wh for r in records] == [1_800, 1_800, 0]
    assert unpack_used_readings(used[1]) == [
        (start - INTERVAL, 1_000),
        (start, 100),
        (start + INTERVAL, 100),
    ]
    assert unpack_used_readings(used[3]) == [(start - INTERVAL, 800), (start, 100)]


def test_a_signed_contradiction_in_the_store_makes_the_device_a_conflict(
    ingestor: Ingestor, store_engine: Engine, meter_by_id: dict[int, SimulatedMeter]
) -> None:
    start = past_slot(2)
    meter = meter_by_id[1]
    assert ingestor.ingest_batch([meter.unit(start - INTERVAL, [1_000, 100])]).stored
    assert ingestor.ingest_batch([meter.unit(start, [300])]).has_conflict
    records, _used = measure_records(store_engine, facts(start, (BIG_BID,), intervals=1))
    assert (records[0].quality, records[0].delivered_wh) == (Quality.CONFLICT, 0)


def test_caiso_records_use_ten_weekdays_of_history_from_the_store(
    ingestor: Ingestor, store_engine: Engine, meter_by_id: dict[int, SimulatedMeter]
) -> None:
    # An event 17:00-18:00 UTC on the most recent past Wednesday at least 2 days ago.
    day = (past_slot(2) // DAY) - ((past_slot(2) // DAY + 3) % 7 - 2) % 7
    start = day * DAY + 17 * HOUR
    meter = meter_by_id[2]
    units = []
    for back in range(0, 15):  # 10 weekdays of history and the event day itself
        first = start - back * DAY - 4 * HOUR
        values = [1_000] * 20 if back else [1_000] * 16 + [500] * 4
        units.append(meter.unit(first, values))
    assert ingestor.ingest_batch(units).stored
    request = facts(
        start, (AwardedBid(0, 10_000, {2: 40_000}),), method=BaselineMethod.CAISO_10_OF_10
    )
    records, used = measure_records(store_engine, request)
    (record,) = records
    assert record == DeviceRecord(2, 0, 4_000, 2_000, 2_000, Quality.OK)
    # 10 weekdays x (12 adjustment + 4 event intervals) + the event day's 16.
    assert len(unpack_used_readings(used[2])) == 11 * 16


def test_the_report_book_measures_once_and_proves_every_device(
    tmp_path: object,
    ingestor: Ingestor,
    store_engine: Engine,
    meter_by_id: dict[int, SimulatedMeter],
) -> None:
    start = past_slot(2)
    for device_id in (1, 2):
        assert ingestor.ingest_batch(
            [meter_by_id[device_id].unit(start - INTERVAL, [1_000, 0, 0])]
        ).stored
    request = facts(start, (AwardedBid(0, 8_000, {1: 10_000, 2: 40_000}),), intervals=2)
    key = Account.create().key.hex()
    records, used = measure_records(store_engine, request)
    report = assemble_report(request, records, used, key)
    book = ReportBook(Measurer(None, store_engine, key), store_engine, WallClock(), 60)  # type: ignore[arg-type]
    stored = book.save(report)
    assert stored.to_json() == report.to_json()
    # A later, different measurement of the same round does not replace the stored one.
    altered = dataclasses.replace(report.trees.records[0], delivered_wh=1)
    other = assemble_report(request, [altered, *report.trees.records[1:]], used, key)
    assert book.save(other).digest == report.digest
    assert book.signatures(report) == {report.signer: report.signature}

    for record in report.trees.records:
        proof = book.device_proof(report, record.device_id)
        assert verify_proof(report.payload.devices_root, record.leaf(), proof.record_proof)
        leaf = used_readings_leaf(record.device_id, proof.used_readings)
        assert verify_proof(report.payload.readings_root, leaf, proof.readings_proof)
        (unit_json,) = proof.units
        unit = MeterUnit.from_json(unit_json)
        verify_unit(unit, DOMAIN, meter_by_id[record.device_id].signing_key)
        assert proof.used_readings == pack_used_readings(
            zip(unit.interval_starts, unit.energy_wh, strict=True)
        )
    with pytest.raises(KeyError):
        book.device_proof(report, 3)


def test_a_late_reading_replaces_the_unposted_report_and_an_unchanged_one_stays(
    ingestor: Ingestor, store_engine: Engine, meter_by_id: dict[int, SimulatedMeter]
) -> None:
    start = past_slot(2)
    request = facts(start, (AwardedBid(0, 8_000, {1: 10_000, 2: 40_000}),), intervals=2)
    key = Account.create().key.hex()
    book = ReportBook(Measurer(None, store_engine, key), store_engine, WallClock(), 60)  # type: ignore[arg-type]
    assert ingestor.ingest_batch([meter_by_id[1].unit(start - INTERVAL, [1_000, 0, 0])]).stored
    early = book.save(assemble_report(request, *measure_records(store_engine, request), key))
    assert early.trees.records[1].quality == Quality.INSUFFICIENT_DATA  # device 2 not in yet

    # Device 2's node catches up: measuring again now gives another report, which replaces
    # the stored one (it is not on chain yet); measuring once more changes nothing.
    assert ingestor.ingest_batch([meter_by_id[2].unit(start - INTERVAL, [1_000, 0, 0])]).stored
    late = assemble_report(request, *measure_records(store_engine, request), key)
    assert late.digest != early.digest
    assert book.replace_if_changed(late).digest == late.digest
    assert book.load(7, 0).digest == late.digest
    assert late.trees.records[1].quality == Quality.OK
    assert book.replace_if_changed(late).digest == late.digest
    assert book.signatures(late) == {late.signer: late.signature}
