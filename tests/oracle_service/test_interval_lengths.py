"""Interval lengths and reading age (issue 12, finding 9), on the real store (SQLite and
PostgreSQL): every reading keeps its length, only the lengths the market settles (900 and
1,800 s) are accepted, measurement reads readings of the request's length only, and the
same event settles the same energy in 15- and 30-minute intervals."""

from __future__ import annotations

from typing import Any

import pytest
from oracle_testkit import DOMAIN, SimulatedMeter, StaticDirectory, past_slot, row_counts
from sqlalchemy import Engine, select

from gridflex.rules.attestation import MeterUnit, sign_unit
from gridflex.rules.baselines import EventWindow
from gridflex.rules.reports import Quality
from gridflex.rules.types import BaselineMethod, Direction
from oracle.clock import WallClock
from oracle.ingest import IngestLimits, Ingestor, Rejection, UnitStatus
from oracle.measurement import AwardedBid, RequestFacts, measure_records
from oracle.models import Reading

HOUR = 3_600
DAY = 86_400
LOAD_W = 4_000
"""The device draws 4 kW, and 1 kW during the event: 3 kW delivered."""
EVENT_W = 1_000


def signed(meter: SimulatedMeter, start: int, interval: int, energy_wh: list[int]) -> MeterUnit:
    unsigned = MeterUnit(
        meter.device_id, start, interval, next(meter.next_sequence), tuple(energy_wh)
    )
    return sign_unit(unsigned, DOMAIN, meter.key)


def profile(start: int, end: int, interval: int, event: tuple[int, int]) -> list[int]:
    """Wh per interval of the device's load, integer exact at both lengths."""
    return [
        (EVENT_W if event[0] <= t < event[1] else LOAD_W) * interval // HOUR
        for t in range(start, end, interval)
    ]


def request(event_start: int, event_end: int, interval: int, bid: AwardedBid) -> RequestFacts:
    return RequestFacts(
        request_id=1,
        round=0,
        market="0x9fE46736679d2D9a65F0992F6272dE9f3c7fa6e0",
        chain_id=31337,
        committee="0xCf7Ed3AccA5a467e9e704C09E0bDfB8eE7D5B0Ba",
        direction=int(Direction.REDUCE_CONSUMPTION),
        baseline_method=int(BaselineMethod.MBMA),
        window=EventWindow(event_start, event_end, interval),
        bid_count=1,
        bids=(bid,),
    )


@pytest.fixture
def fleet() -> dict[str, SimulatedMeter]:
    return {
        "quarter_hourly": SimulatedMeter.secp256k1(11, 10_000),
        "half_hourly": SimulatedMeter.secp256k1(12, 10_000),
        "p256_half_hourly": SimulatedMeter.p256(13, 10_000),
    }


@pytest.fixture
def ingest(store_engine: Engine, fleet: dict[str, SimulatedMeter]) -> Ingestor:
    directory = StaticDirectory([meter.registered() for meter in fleet.values()])
    return Ingestor(store_engine, directory, WallClock(), DOMAIN, IngestLimits())


def _only(ingestor: Ingestor, unit: MeterUnit | dict[str, Any]) -> tuple[UnitStatus, Any, str]:
    result = ingestor.ingest_batch([unit if isinstance(unit, dict) else unit.to_json()])
    only = result.results[0]
    return only.status, only.rejection, only.reason or ""


def test_interval_lengths_the_market_does_not_settle_are_refused(
    ingest: Ingestor, store_engine: Engine, fleet: dict[str, SimulatedMeter]
) -> None:
    """1 s, 3,600 s and 2^30 s units used to be stored (a 3,600 s unit as if it were 900 s,
    passing the plausibility bound at 4x)."""
    meter = fleet["quarter_hourly"]
    day = past_slot(3) - past_slot(3) % DAY
    before = row_counts(store_engine)
    for interval in (1, 60, 3_600, 2**30):
        on_grid = day - day % interval
        status, rejection, reason = _only(ingest, signed(meter, on_grid, interval, [100]))
        assert (status, rejection) == (UnitStatus.REJECTED, Rejection.INVALID_FIELD)
        assert f"intervalSeconds {interval} is not a length the market settles" in reason
    assert row_counts(store_engine) == before


def test_readings_older_than_the_age_bound_are_refused(
    store_engine: Engine, fleet: dict[str, SimulatedMeter]
) -> None:
    """Readings from 1970 used to be accepted; the bound is `max_reading_age_seconds`."""
    meter = fleet["quarter_hourly"]
    limits = IngestLimits(max_reading_age_seconds=20 * DAY)
    ingestor = Ingestor(
        store_engine, StaticDirectory([meter.registered()]), WallClock(), DOMAIN, limits
    )
    for start in (0, 900, past_slot(21)):
        status, rejection, reason = _only(ingestor, meter.unit(start, [1]))
        assert (status, rejection) == (UnitStatus.REJECTED, Rejection.TOO_OLD)
        assert f"more than {20 * DAY} s ago" in reason
    assert _only(ingestor, meter.unit(past_slot(19), [1]))[0] == UnitStatus.ACCEPTED


def test_a_reading_keeps_its_length_and_one_start_holds_one_length(
    ingest: Ingestor, store_engine: Engine, fleet: dict[str, SimulatedMeter]
) -> None:
    meter = fleet["half_hourly"]
    start = past_slot(3) - past_slot(3) % 1800
    assert _only(ingest, signed(meter, start, 1800, [500, 600]))[0] == UnitStatus.ACCEPTED
    with store_engine.connect() as connection:
        rows = connection.execute(
            select(Reading.interval_start, Reading.interval_seconds).where(
                Reading.device_id == meter.device_id
            )
        ).all()
    assert sorted(rows) == [(start, 1800), (start + 1800, 1800)]
    status, rejection, reason = _only(ingest, signed(meter, start, 900, [250]))
    assert (status, rejection) == (UnitStatus.REJECTED, Rejection.INTERVAL_MISMATCH)
    assert "already held as a 1800 s reading" in reason


def test_the_same_event_settles_the_same_energy_in_15_and_30_minute_intervals(
    ingest: Ingestor, store_engine: Engine, fleet: dict[str, SimulatedMeter]
) -> None:
    """One physical event (3 kW less for two hours) metered at 900 s and at 1,800 s, then
    measured in a 900 s and an 1,800 s request: the same delivered energy. A 900 s meter in
    an 1,800 s request is missing data, never half its delivery counted as the whole."""
    day = past_slot(3) - past_slot(3) % DAY
    event = (day + 12 * HOUR, day + 14 * HOUR)
    history = (day + 10 * HOUR, day + 16 * HOUR)
    quarter, half, p256 = fleet["quarter_hourly"], fleet["half_hourly"], fleet["p256_half_hourly"]
    units = [
        signed(quarter, history[0], 900, profile(*history, 900, event)),
        signed(half, history[0], 1800, profile(*history, 1800, event)),
        signed(p256, history[0], 1800, profile(*history, 1800, event)),
    ]
    assert ingest.ingest_batch([u.to_json() for u in units]).stored

    by_length = {}
    for interval in (900, 1800):
        bid = AwardedBid(0, 10_000, {11: 10_000, 12: 10_000, 13: 10_000})
        records, _used = measure_records(store_engine, request(*event, interval, bid))
        by_length[interval] = {r.device_id: (r.quality, r.delivered_wh) for r in records}

    delivered = (LOAD_W - EVENT_W) * (event[1] - event[0]) // HOUR  # 6,000 Wh
    assert by_length[900][11] == (Quality.OK, delivered)
    assert by_length[1800][12] == by_length[1800][13] == (Quality.OK, delivered)
    # Readings of the other length are not read: missing data, not a wrong figure.
    assert by_length[1800][11] == (Quality.INSUFFICIENT_DATA, 0)
    assert by_length[900][12] == by_length[900][13] == (Quality.INSUFFICIENT_DATA, 0)
