"""Measurement of one request by one oracle, in two steps the `settle` benchmark times
apart: `read_inputs` reads the readings and conflict evidence the method needs from the
oracle store straight into the engine's history block (one SQL read per chunk of devices),
and `compute_report` runs the one measurement engine on it
(`gridflex.rules.measurement.measure_request_block`, the engine `gridflex verify` runs on
one device), builds per-bid totals and the two Merkle roots, and signs the EIP-712 report.
`Measurer.measure_request` = chain facts + `read_inputs` + `compute_report`.

Store reads, and why they are deterministic: only the readings the method can need
(`reading_span`), and `conflict_evidence` within that span. Records are ordered by bid,
then device; used readings by device.

Equivocation: a device with conflict evidence anywhere in its reading span is measured
CONFLICT from no readings at all (`conflict_measurement`): zero delivery, empty used
readings. Why not from the readings we hold: under a split view each oracle stored a
different first value (and may have refused a whole unit that overlaps the other value),
so anything computed from them differs between honest oracles and no report would reach
k signatures. After reconciliation (`oracle.reconcile`) every honest oracle holds *some*
evidence for the device, which is all this rule reads, so their records are identical.
`gridflex verify` recomputes a CONFLICT record from its (empty) used readings and gets the
same record.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import structlog
from sqlalchemy import Connection, Engine, Select, and_, select

from gridflex.chain.facts import read_request, read_request_facts
from gridflex.chain.protocol import Protocol
from gridflex.rules.baselines import (
    MISSING_WH,
    BaselineBatch,
    EventWindow,
    block_days,
    block_starts,
    empty_block,
)
from gridflex.rules.eip712 import ReportPayload, sign_digest_secp256k1
from gridflex.rules.measurement import (
    SECONDS_PER_DAY,
    SETTLED_STATUSES,
    AwardedBid,
    DeviceMeasurement,
    ReadingSpan,
    ReportUnavailableError,
    RequestFacts,
    RequestRows,
    measure_device,
    measure_request_block,
    reading_span,
    utc_day,
)
from gridflex.rules.merkle import merkle_roots
from gridflex.rules.report_batch import device_record_leaves, used_readings_of_batch
from gridflex.rules.reports import (
    DeviceRecord,
    PackedReadings,
    RecordTable,
    ReportTrees,
    build_report_trees,
    delivered_per_bid,
)
from gridflex.rules.types import BaselineMethod
from oracle.models import ConflictEvidence, Reading

__all__ = [
    "SETTLED_STATUSES",
    "AwardedBid",
    "DeviceMeasurement",
    "MeasuredReport",
    "MeasurementInputs",
    "Measurer",
    "ReadingSpan",
    "ReportUnavailableError",
    "RequestFacts",
    "assemble_report",
    "compute_report",
    "conflict_measurement",
    "measure_device",
    "measure_records",
    "read_conflicts",
    "read_history",
    "read_inputs",
    "read_request",
    "read_request_facts",
    "reading_span",
    "utc_day",
]

log = structlog.get_logger(__name__)

DEVICE_CHUNK = 500
"""Device ids per `IN (...)` query (parameter limits of SQLite and PostgreSQL)."""


# ─── Store reads ──────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class MeasurementInputs:
    """One request's inputs from this oracle's store, laid out for the engine: the rows
    (awarded devices by bid, then device), their history block, and which rows are
    equivocated (conflict evidence in their span: measured from no readings)."""

    rows: RequestRows
    history: np.ndarray
    conflicted: np.ndarray


def readings_query(
    device_ids: Sequence[int], span: ReadingSpan, interval_seconds: int
) -> Select[tuple[int, int, int]]:
    """(device, interval start, Wh) of `device_ids` within `span` (time-of-day filter in
    SQL), of readings `interval_seconds` long only: the request's length. A reading of
    another length is another quantity (a 3,600 s reading holds four 900 s intervals)."""
    query = select(Reading.device_id, Reading.interval_start, Reading.energy_wh).where(
        Reading.device_id.in_(device_ids),  # type: ignore[attr-defined]
        Reading.interval_start >= span.start,
        Reading.interval_start < span.end,
        Reading.interval_seconds == interval_seconds,
    )
    if span.daily_seconds is not None:
        offset = (Reading.interval_start - span.start) % SECONDS_PER_DAY
        query = query.where(offset < span.daily_seconds)
    return query  # type: ignore[return-value]


def device_chunks(device_ids: np.ndarray) -> list[list[int]]:
    """The sorted distinct ids in `IN (...)` lists of at most `DEVICE_CHUNK`."""
    ids = np.unique(device_ids).tolist()
    return [ids[i : i + DEVICE_CHUNK] for i in range(0, len(ids), DEVICE_CHUNK)]


def read_history(engine: Engine, facts: RequestFacts, rows: RequestRows) -> np.ndarray:
    """The rows' history block from the store: one query per chunk of devices through the
    engine's DBAPI cursor, its rows placed into the block by numpy (int32, widened to int64
    only if a reading needs it)."""
    method, window = BaselineMethod(facts.baseline_method), facts.window
    span = reading_span(method, window)
    history = empty_block(method, window, len(rows.device_id))
    layout = _BlockLayout(method, window)
    order = np.argsort(rows.device_id, kind="stable")
    sorted_ids = rows.device_id[order]
    with engine.connect() as connection:
        for chunk in device_chunks(rows.device_id):
            query = readings_query(chunk, span, window.interval_seconds)
            found = _fetch_int64(connection, query)
            if len(found) == 0:
                continue
            row = order[np.searchsorted(sorted_ids, found[:, 0])]
            if history.dtype != np.int64 and (np.abs(found[:, 2]) >= 2**31).any():
                history = history.astype(np.int64)
            layout.place(history, row, found[:, 1], found[:, 2])
    duplicates = np.flatnonzero(np.diff(sorted_ids) == 0)
    if len(duplicates):  # a device in two bids: the same readings in both rows
        history[order[duplicates + 1]] = history[order[duplicates]]
    return history


def driver_sql(connection: Connection, query: Select[Any]) -> tuple[str, Any]:
    """`query` as the driver's own SQL text and parameters (what `read_history` executes on
    the DBAPI cursor; the `settle` benchmark times a bare read of the same text)."""
    compiled = query.compile(connection, compile_kwargs={"render_postcompile": True})
    if compiled.positiontup:
        return str(compiled), [compiled.params[name] for name in compiled.positiontup]
    return str(compiled), compiled.params


def _fetch_int64(connection: Connection, query: Select[tuple[int, int, int]]) -> np.ndarray:
    """All rows of `query` as an int64 `[rows, 3]` array, through the DBAPI cursor."""
    cursor = connection.connection.cursor()
    try:
        cursor.execute(*driver_sql(connection, query))
        found = cursor.fetchall()
    finally:
        cursor.close()
    flat = np.fromiter(itertools.chain.from_iterable(found), dtype=np.int64, count=3 * len(found))
    return flat.reshape(-1, 3)


class _BlockLayout:
    """Where a reading goes in the history block: per column group `q` (columns whose
    start lies `q` whole days after the first column's time of day), a table from the
    reading's interval of the day to its column."""

    def __init__(self, method: BaselineMethod, window: EventWindow) -> None:
        starts = np.array(block_starts(method, window), dtype=np.int64)
        self.days = block_days(method)
        self.interval = window.interval_seconds
        self.base = int(starts[0]) - (self.days - 1) * SECONDS_PER_DAY
        offsets = starts - starts[0]
        slots = SECONDS_PER_DAY // self.interval
        self.tables: list[tuple[int, np.ndarray]] = []
        for q in np.unique(offsets // SECONDS_PER_DAY).tolist():
            table = np.full(slots, -1, dtype=np.int64)
            mine = np.flatnonzero(offsets // SECONDS_PER_DAY == q)
            table[(offsets[mine] % SECONDS_PER_DAY) // self.interval] = mine
            self.tables.append((q, table))

    def place(
        self, history: np.ndarray, row: np.ndarray, start: np.ndarray, wh: np.ndarray
    ) -> None:
        relative = start - self.base
        day, second = np.divmod(relative, SECONDS_PER_DAY)
        aligned = second % self.interval == 0
        slot = second // self.interval
        for q, table in self.tables:
            column = table[slot]
            i = day - q
            keep = aligned & (column >= 0) & (i >= 0) & (i < self.days)
            history[row[keep], i[keep], column[keep]] = wh[keep]


def read_conflicts(
    engine: Engine, device_ids: Iterable[int], span: ReadingSpan
) -> set[tuple[int, int]]:
    """(device, interval) pairs with conflict evidence within `span` (time-of-day filter
    included: evidence outside what the method can read does not void a measurement)."""
    conflicts: set[tuple[int, int]] = set()
    for chunk in device_chunks(np.fromiter(device_ids, dtype=np.int64)):
        query = select(ConflictEvidence.device_id, ConflictEvidence.interval_start).where(
            and_(
                ConflictEvidence.device_id.in_(chunk),  # type: ignore[attr-defined]
                ConflictEvidence.interval_start >= span.start,
                ConflictEvidence.interval_start < span.end,
            )
        )
        if span.daily_seconds is not None:
            offset = (ConflictEvidence.interval_start - span.start) % SECONDS_PER_DAY
            query = query.where(offset < span.daily_seconds)
        with engine.connect() as connection:
            conflicts.update((int(d), int(t)) for d, t in connection.execute(query))
    return conflicts


def read_inputs(engine: Engine, facts: RequestFacts) -> MeasurementInputs:
    """Everything this oracle's measurement of `facts` reads from its store."""
    rows = RequestRows.of(facts)
    history = read_history(engine, facts, rows)
    span = reading_span(facts.baseline_method, facts.window)
    equivocated = {device for device, _ in read_conflicts(engine, rows.device_id.tolist(), span)}
    conflicted = np.isin(rows.device_id, np.array(sorted(equivocated), dtype=np.int64))
    history[conflicted] = MISSING_WH  # measured from no readings (module docstring)
    return MeasurementInputs(rows, history, conflicted)


# ─── Measurement ──────────────────────────────────────────────────────────────────────


def measure_inputs(
    facts: RequestFacts, inputs: MeasurementInputs
) -> tuple[RecordTable, PackedReadings, np.ndarray, np.ndarray, np.ndarray]:
    """Records (by bid, then device), used readings (by device), both leaf sets and the
    devices' deliveries."""
    rows = inputs.rows
    batch = measure_request_block(facts, rows, inputs.history, inputs.conflicted)
    columns = (
        rows.device_id, rows.bid_index, batch.baseline_wh, batch.metered_wh,
        batch.delivered_wh, batch.quality,
    )  # fmt: skip
    record_leaves = device_record_leaves(*columns)
    by_device = np.argsort(rows.device_id, kind="stable")
    if (by_device == np.arange(len(by_device))).all():  # rows already by device: no copies
        used, readings_leaves = used_readings_of_batch(
            batch.baselines, inputs.history, rows.device_id
        )
    else:
        used, readings_leaves = used_readings_of_batch(
            _rows(batch.baselines, by_device), inputs.history[by_device], rows.device_id[by_device]
        )
    return RecordTable(*columns), used, record_leaves, readings_leaves, batch.delivered_wh


def _rows(batch: BaselineBatch, order: np.ndarray) -> BaselineBatch:
    return BaselineBatch(
        batch.method, batch.window, batch.baseline_wh[order], batch.quality[order],
        batch.pool[order], batch.selected[order],
    )  # fmt: skip


def measure_records(
    engine: Engine, facts: RequestFacts
) -> tuple[list[DeviceRecord], dict[int, bytes]]:
    """Records (by bid, then device) and used readings (by device) of every awarded device."""
    records, used, *_ = measure_inputs(facts, read_inputs(engine, facts))
    return list(records), dict(used)


def conflict_measurement(facts: RequestFacts, bid: AwardedBid, device_id: int) -> DeviceMeasurement:
    """The record of a device that signed two values for an interval its measurement can
    read: CONFLICT, zero delivery, computed from no readings, so it depends only on the
    fact of the equivocation (see the module docstring) and is what `gridflex verify`
    recomputes from the record's empty used readings."""
    event_conflicts = {(device_id, t) for t in facts.window.interval_starts}
    return measure_device(facts, bid, device_id, {}, event_conflicts)


@dataclass(frozen=True)
class MeasuredReport:
    """One oracle's report for one request and round, with its signature if it has a key."""

    request_id: int
    round: int
    chain_id: int
    committee: str
    payload: ReportPayload
    trees: ReportTrees
    signer: str | None = None
    signature: bytes | None = None

    @property
    def digest(self) -> bytes:
        return self.payload.digest(self.chain_id, self.committee)

    def to_json(self) -> dict[str, Any]:
        """The `GET /v1/reports/{id}` body."""
        return {
            "requestId": self.request_id,
            "round": self.round,
            "market": self.payload.market,
            "chainId": self.chain_id,
            "committee": self.committee,
            "deliveredWh": list(self.payload.delivered_wh),
            "devicesRoot": "0x" + self.payload.devices_root.hex(),
            "readingsRoot": "0x" + self.payload.readings_root.hex(),
            "digest": "0x" + self.digest.hex(),
            "signer": self.signer,
            "signature": None if self.signature is None else "0x" + self.signature.hex(),
            "records": [record.to_json() for record in self.trees.records],
        }


def assemble_report(
    facts: RequestFacts,
    records: list[DeviceRecord],
    used_readings: dict[int, bytes],
    signer_key: str | None = None,
) -> MeasuredReport:
    """The report of given records and used readings: trees, payload and (with a key) this
    oracle's signature over the digest."""
    if not records:
        raise ReportUnavailableError(404, f"request {facts.request_id} has no awarded device")
    return _signed(facts, build_report_trees(records, used_readings, facts.bid_count), signer_key)


def compute_report(
    facts: RequestFacts, inputs: MeasurementInputs, signer_key: str | None = None
) -> MeasuredReport:
    """The measurement proper, no I/O: the engine on the inputs, both roots, the payload
    and (with a key) the signature."""
    if len(inputs.rows.device_id) == 0:
        raise ReportUnavailableError(404, f"request {facts.request_id} has no awarded device")
    records, used, record_leaves, readings_leaves, delivered_wh = measure_inputs(facts, inputs)
    devices_root, readings_root = merkle_roots(record_leaves, readings_leaves)
    delivered = delivered_per_bid(inputs.rows.bid_index, delivered_wh, facts.bid_count)
    trees = ReportTrees(records, used, delivered, devices_root, readings_root)
    return _signed(facts, trees, signer_key)


def _signed(facts: RequestFacts, trees: ReportTrees, signer_key: str | None) -> MeasuredReport:
    payload = ReportPayload(
        facts.market,
        facts.request_id,
        facts.round,
        trees.delivered_wh,
        trees.devices_root,
        trees.readings_root,
    )
    report = MeasuredReport(
        facts.request_id, facts.round, facts.chain_id, facts.committee, payload, trees
    )
    if signer_key is None:
        return report
    from eth_account import Account

    signature = sign_digest_secp256k1(signer_key, report.digest)
    return MeasuredReport(
        report.request_id,
        report.round,
        report.chain_id,
        report.committee,
        payload,
        trees,
        Account.from_key(signer_key).address,
        signature,
    )


class Measurer:
    """Measures requests of one deployment from one oracle store."""

    def __init__(self, protocol: Protocol, engine: Engine, signer_key: str | None = None) -> None:
        self.protocol = protocol
        self.engine = engine
        self.signer_key = signer_key

    def measure_request(self, request_id: int, facts: RequestFacts | None = None) -> MeasuredReport:
        """Measure from `facts` (read from the chain when not given)."""
        if facts is None:
            facts = read_request_facts(self.protocol, request_id)
        report = compute_report(facts, read_inputs(self.engine, facts), self.signer_key)
        log.info(
            "request measured",
            request_id=request_id,
            round=facts.round,
            devices=len(report.trees.records),
            delivered_wh=report.payload.delivered_wh,
            digest="0x" + report.digest.hex(),
        )
        return report
