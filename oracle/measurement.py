"""Measurement of one request by one oracle: reads the readings and conflict evidence the
method needs from the oracle store, applies the shared per-device rules
(`gridflex.rules.measurement.measure_device`, the same code `gridflex verify` runs), builds
per-bid totals and the two Merkle trees, and signs the EIP-712 report.

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

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import Engine, and_, select

from gridflex.chain.facts import read_request, read_request_facts
from gridflex.chain.protocol import Protocol
from gridflex.rules.eip712 import ReportPayload, sign_digest_secp256k1
from gridflex.rules.measurement import (
    SECONDS_PER_DAY,
    SETTLED_STATUSES,
    AwardedBid,
    DeviceMeasurement,
    ReadingSpan,
    ReportUnavailableError,
    RequestFacts,
    measure_device,
    reading_span,
    utc_day,
)
from gridflex.rules.reports import DeviceRecord, ReportTrees, build_report_trees
from oracle.models import ConflictEvidence, Reading

__all__ = [
    "SETTLED_STATUSES",
    "AwardedBid",
    "DeviceMeasurement",
    "MeasuredReport",
    "Measurer",
    "ReadingSpan",
    "ReportUnavailableError",
    "RequestFacts",
    "assemble_report",
    "conflict_measurement",
    "measure_device",
    "measure_records",
    "read_conflicts",
    "read_readings",
    "read_request",
    "read_request_facts",
    "reading_span",
    "utc_day",
]

log = structlog.get_logger(__name__)

DEVICE_CHUNK = 500
"""Device ids per `IN (...)` query (parameter limits of SQLite and PostgreSQL)."""


# ─── Store reads ──────────────────────────────────────────────────────────────────────


def read_readings(
    engine: Engine, device_ids: Iterable[int], span: ReadingSpan, interval_seconds: int
) -> dict[int, dict[int, int]]:
    """{device: {interval start: Wh}} within `span` (time-of-day filter done in SQL), of
    readings `interval_seconds` long only: the request's length. A reading of another length
    is another quantity (a 3,600 s reading holds four 900 s intervals' energy)."""
    readings: dict[int, dict[int, int]] = defaultdict(dict)
    ids = sorted(device_ids)
    for chunk_start in range(0, len(ids), DEVICE_CHUNK):
        chunk = ids[chunk_start : chunk_start + DEVICE_CHUNK]
        query = select(Reading.device_id, Reading.interval_start, Reading.energy_wh).where(
            Reading.device_id.in_(chunk),  # type: ignore[attr-defined]
            Reading.interval_start >= span.start,
            Reading.interval_start < span.end,
            Reading.interval_seconds == interval_seconds,
        )
        if span.daily_seconds is not None:
            offset = (Reading.interval_start - span.start) % SECONDS_PER_DAY
            query = query.where(offset < span.daily_seconds)
        with engine.connect() as connection:
            for device_id, interval_start, energy in connection.execute(query):
                readings[int(device_id)][int(interval_start)] = int(energy)
    return readings


def read_conflicts(
    engine: Engine, device_ids: Iterable[int], span: ReadingSpan
) -> set[tuple[int, int]]:
    """(device, interval) pairs with conflict evidence within `span` (time-of-day filter
    included: evidence outside what the method can read does not void a measurement)."""
    conflicts: set[tuple[int, int]] = set()
    ids = sorted(device_ids)
    for chunk_start in range(0, len(ids), DEVICE_CHUNK):
        chunk = ids[chunk_start : chunk_start + DEVICE_CHUNK]
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


# ─── Measurement ──────────────────────────────────────────────────────────────────────


def measure_records(
    engine: Engine, facts: RequestFacts
) -> tuple[list[DeviceRecord], dict[int, bytes]]:
    """Records (by bid, then device) and used readings (by device) of every awarded device."""
    device_ids = [d for bid in facts.bids for d in bid.device_capacity_w]
    span = reading_span(facts.baseline_method, facts.window)
    readings = read_readings(engine, device_ids, span, facts.window.interval_seconds)
    conflicts = read_conflicts(engine, device_ids, span)
    equivocated = {device_id for device_id, _ in conflicts}
    records: list[DeviceRecord] = []
    used: dict[int, bytes] = {}
    for bid in sorted(facts.bids, key=lambda b: b.bid_index):
        for device_id in sorted(bid.device_capacity_w):
            if device_id in equivocated:
                measured = conflict_measurement(facts, bid, device_id)
            else:
                measured = measure_device(
                    facts, bid, device_id, readings.get(device_id, {}), conflicts
                )
            records.append(measured.record)
            used[device_id] = measured.used_readings
    return records, dict(sorted(used.items()))


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
    """Trees, payload and (with a key) this oracle's signature over the digest."""
    if not records:
        raise ReportUnavailableError(404, f"request {facts.request_id} has no awarded device")
    trees = build_report_trees(records, used_readings, facts.bid_count)
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
        records, used = measure_records(self.engine, facts)
        report = assemble_report(facts, records, used, self.signer_key)
        log.info(
            "request measured",
            request_id=request_id,
            round=facts.round,
            devices=len(records),
            delivered_wh=report.payload.delivered_wh,
            digest="0x" + report.digest.hex(),
        )
        return report
