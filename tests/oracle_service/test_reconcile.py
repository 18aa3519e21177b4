"""Reconciliation against a peer (`oracle/reconcile.py`), the peer played by an in-process
transport: a split view becomes conflict evidence and a CONFLICT record that does not
depend on which value an oracle saw first; a hostile peer (garbage, forgeries, deep or
huge answers, endless pages) stores nothing, crashes nothing and is not asked again for
what it failed to prove; a second pass fetches nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from oracle_testkit import (
    CHAIN_ID,
    DOMAIN,
    INTERVAL,
    SimulatedMeter,
    StaticDirectory,
    past_slot,
    row_counts,
)
from sqlalchemy import Engine
from test_measurement import facts

from gridflex.rules.attestation import MeterUnit, unit_digest
from gridflex.rules.reports import Quality
from oracle import reconcile as reconcile_module
from oracle.clock import WallClock
from oracle.config import OracleSettings
from oracle.db import create_oracle_engine, init_db
from oracle.ingest import IngestLimits, Ingestor
from oracle.measurement import AwardedBid, measure_records
from oracle.reconcile import (
    MAX_JSON_DEPTH,
    MAX_PEER_PASS_SECONDS,
    MAX_PEER_RESPONSE_BYTES,
    MAX_READING_PAGES,
    PeerMisbehavedError,
    Reconciler,
    bounded_json,
)

PEER = "http://peer.test"
BID = AwardedBid(0, 10_000, {1: 10_000})


def _public(unit: MeterUnit) -> dict[str, Any]:
    return unit.to_json() | {"digest": "0x" + unit_digest(unit, DOMAIN).hex()}


class FakePeer:
    """Serves `units` as an oracle would (readings, units by digest, conflicts); `tamper`
    may rewrite any answer."""

    def __init__(self, units: list[MeterUnit], conflicts: list[dict[str, Any]] | None = None):
        self.units = {_public(u)["digest"]: u for u in units}
        self.conflicts = conflicts or []
        self.asked: list[str] = []
        self.tamper: Callable[[httpx.Request], httpx.Response | None] = lambda _r: None

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.asked.append(request.url.path)
        tampered = self.tamper(request)
        if tampered is not None:
            return tampered
        path = request.url.path
        if path.endswith("/readings"):
            readings = [
                {"interval_start": t, "energy_wh": e, "unit_digest": digest}
                for digest, unit in self.units.items()
                for t, e in zip(unit.interval_starts, unit.energy_wh, strict=True)
            ]
            return httpx.Response(200, json={"readings": readings, "next_cursor": None})
        if path.endswith("/conflicts"):
            return httpx.Response(200, json={"conflicts": self.conflicts, "nextAfter": None})
        if path.startswith("/v1/units/"):
            unit = self.units.get(path.rsplit("/", 1)[1])
            if unit is None:
                return httpx.Response(404, json={"detail": "no unit"})
            return httpx.Response(200, json=_public(unit))
        return httpx.Response(404, json={"detail": "unknown"})


def _reconciler(engine: Engine, ingestor: Ingestor, peer: FakePeer) -> Reconciler:
    http = httpx.Client(transport=httpx.MockTransport(peer.handle))
    return Reconciler(engine, ingestor, [PEER], http)


@pytest.fixture
def meter(meters: list[SimulatedMeter]) -> SimulatedMeter:
    return meters[0]


def test_a_split_view_becomes_evidence_and_a_conflict_record_whatever_was_seen_first(
    ingestor: Ingestor, store_engine: Engine, meter: SimulatedMeter
) -> None:
    start = past_slot(2)
    request = facts(start, (BID,), intervals=2)
    ours = meter.unit(start - INTERVAL, [2_000, 100, 100])
    theirs = meter.unit(start - INTERVAL, [2_000, 100, 400])  # the peer saw another value
    assert ingestor.ingest_batch([ours]).stored
    peer = FakePeer([theirs])

    first = _reconciler(store_engine, ingestor, peer).reconcile(request)
    assert first.peers_reconciled == 1
    assert first.passes[0].conflicts == 1
    assert row_counts(store_engine)["conflict_evidence"] == 1
    records, used = measure_records(store_engine, request)
    assert (records[0].quality, records[0].delivered_wh) == (Quality.CONFLICT, 0)
    assert used[1] == b""  # nothing that depends on which value came first

    # The peer's view of the same evidence (it stored `theirs`, then got `ours`) gives the
    # same record: a fresh store that saw the values in the other order.
    reversed_records = _records_after(ingestor, store_engine, request, theirs, ours)
    assert reversed_records == records

    peer.asked.clear()  # idempotent: a second pass fetches no unit
    again = _reconciler(store_engine, ingestor, peer).reconcile(request)
    assert again.peers_reconciled == 1 and again.passes[0].fetched == 0
    assert not any(path.startswith("/v1/units/") for path in peer.asked)


def _records_after(
    ingestor: Ingestor, engine: Engine, request: Any, first: MeterUnit, second: MeterUnit
) -> list[Any]:
    with engine.begin() as connection:
        for table in ("conflict_evidence", "readings", "meter_units"):
            connection.exec_driver_sql(f"DELETE FROM {table}")
    assert ingestor.ingest_batch([first]).stored
    assert ingestor.ingest_batch([second]).has_conflict
    return measure_records(engine, request)[0]


def test_one_sequence_signed_over_two_intervals_cannot_split_the_oracles(
    ingestor: Ingestor, store_engine: Engine, meter: SimulatedMeter, tmp_path: Path
) -> None:
    """Attack: the device signs two units with the same sequence over different intervals
    and shows each oracle one. Were a used sequence refused, each oracle would keep only its
    own unit, their records would differ and no report would reach k. Reconciled, both hold
    both readings and measure the same record."""
    start = past_slot(4)
    request = facts(start, (BID,), intervals=2)
    before_and_first = meter.unit(start - INTERVAL, [2_000, 100], sequence=41)
    second = meter.unit(start + INTERVAL, [300], sequence=41)  # same sequence, other interval
    other_engine = create_oracle_engine(
        OracleSettings(data_dir=tmp_path / "other", deployments_dir=tmp_path, chain_id=CHAIN_ID)
    )
    init_db(other_engine)
    other = Ingestor(
        other_engine, StaticDirectory([meter.registered()]), WallClock(), DOMAIN, IngestLimits()
    )
    try:
        assert ingestor.ingest_batch([before_and_first]).stored
        assert other.ingest_batch([second]).stored

        ours = _reconciler(store_engine, ingestor, FakePeer([second])).reconcile(request)
        theirs = _reconciler(other_engine, other, FakePeer([before_and_first])).reconcile(request)

        for outcome in (ours, theirs):
            assert outcome.peers_reconciled == 1
            assert (outcome.passes[0].stored, outcome.passes[0].conflicts) == (1, 0)
        for engine in (store_engine, other_engine):
            assert row_counts(engine) == {"meter_units": 2, "readings": 3, "conflict_evidence": 0}
        records, used = measure_records(store_engine, request)
        assert measure_records(other_engine, request) == (records, used)
        # MBMA: baseline 2,000 per interval, metered 100 and 300 -> 1,900 + 1,700 delivered.
        assert (records[0].quality, records[0].delivered_wh) == (Quality.OK, 3_600)
    finally:
        other_engine.dispose()


def test_the_peers_evidence_travels_even_when_we_hold_its_stored_value(
    ingestor: Ingestor, store_engine: Engine, meter: SimulatedMeter
) -> None:
    """We saw what the peer stored; only its evidence shows the third value."""
    start = past_slot(3)
    request = facts(start, (BID,), intervals=1)
    shared = meter.unit(start - INTERVAL, [2_000, 100])
    third = meter.unit(start - INTERVAL, [2_000, 900])
    assert ingestor.ingest_batch([shared]).stored
    pair = {"intervalStart": start, "existing": _public(shared), "conflicting": _public(third)}
    outcome = _reconciler(store_engine, ingestor, FakePeer([shared], [pair])).reconcile(request)
    assert outcome.peers_reconciled == 1 and outcome.passes[0].conflicts == 1
    assert measure_records(store_engine, request)[0][0].quality == Quality.CONFLICT


def _deep(_request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=b"[" * 100_000 + b"]" * 100_000)


def _huge(_request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=b" " * (MAX_PEER_RESPONSE_BYTES + 1) + b"{}")


def _endless(request: httpx.Request) -> httpx.Response | None:
    if not request.url.path.endswith("/readings"):
        return None
    cursor = int(request.url.params.get("cursor", "0")) + 1
    return httpx.Response(200, json={"readings": [], "next_cursor": cursor})


def _wrong_shape(request: httpx.Request) -> httpx.Response | None:
    if request.url.path.endswith("/readings"):
        return httpx.Response(200, json={"readings": [{"interval_start": "x"}]})
    return None


def _server_error(_request: httpx.Request) -> httpx.Response:
    return httpx.Response(500, content=b"oops")


@pytest.mark.parametrize("tamper", [_deep, _huge, _endless, _wrong_shape, _server_error])
def test_a_hostile_peer_answer_fails_the_pass_and_stores_nothing(
    ingestor: Ingestor,
    store_engine: Engine,
    meter: SimulatedMeter,
    tamper: Callable[[httpx.Request], httpx.Response | None],
) -> None:
    start = past_slot(4)
    peer = FakePeer([meter.unit(start - INTERVAL, [2_000, 100])])
    peer.tamper = tamper
    before = row_counts(store_engine)
    outcome = _reconciler(store_engine, ingestor, peer).reconcile(facts(start, (BID,), intervals=1))
    assert outcome.peers_reconciled == 0
    assert outcome.passes[0].error
    assert row_counts(store_engine) == before
    assert sum(path.endswith("/readings") for path in peer.asked) <= MAX_READING_PAGES


def test_a_slow_peer_is_given_up_after_the_pass_deadline(
    ingestor: Ingestor,
    store_engine: Engine,
    meter: SimulatedMeter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each answer "takes" 25 s (the clock is stepped, nothing sleeps): the pass stops at
    the deadline instead of asking for the next of the listed units."""
    start = past_slot(6)
    units = [meter.unit(start - INTERVAL + i * 2 * INTERVAL, [2_000, 100]) for i in range(10)]
    peer = FakePeer(units)
    clock = iter(range(0, 10_000, 25))
    monkeypatch.setattr(reconcile_module, "monotonic", lambda: float(next(clock)))
    outcome = _reconciler(store_engine, ingestor, peer).reconcile(facts(start, (BID,), intervals=1))
    assert outcome.peers_reconciled == 0
    assert "took over" in (outcome.passes[0].error or "")
    assert len(peer.asked) <= MAX_PEER_PASS_SECONDS / 25 + 1


def test_forged_and_missing_units_are_refused_once_and_not_fetched_again(
    ingestor: Ingestor, store_engine: Engine, meter: SimulatedMeter
) -> None:
    start = past_slot(5)
    request = facts(start, (BID,), intervals=1)
    forged = replace(meter.unit(start - INTERVAL, [2_000, 100]), energy_wh=(2_000, 5))
    peer = FakePeer([forged])
    ghost = "0x" + "ab" * 32  # listed, never served
    listed = peer.handle

    def with_ghost(request_: httpx.Request) -> httpx.Response:
        answer = listed(request_)
        if request_.url.path.endswith("/readings"):
            body = json.loads(answer.content)
            body["readings"].append({"interval_start": start, "energy_wh": 1, "unit_digest": ghost})
            return httpx.Response(200, json=body)
        return answer

    http = httpx.Client(transport=httpx.MockTransport(with_ghost))
    reconciler = Reconciler(store_engine, ingestor, [PEER], http)
    before = row_counts(store_engine)
    first = reconciler.reconcile(request)
    assert first.passes[0].fetched == 2 and first.passes[0].stored == 0
    assert row_counts(store_engine) == before
    peer.asked.clear()
    second = reconciler.reconcile(request)
    assert second.passes[0].fetched == 0
    assert not any(path.startswith("/v1/units/") for path in peer.asked)


def test_bounded_json_refuses_deep_nesting_but_reads_strings_with_brackets() -> None:
    assert bounded_json(b'{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\"]]"}') == {
        "a": '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["]]'
    }
    with pytest.raises(PeerMisbehavedError):
        bounded_json(b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1))
    with pytest.raises(PeerMisbehavedError):
        bounded_json(b"{not json")
