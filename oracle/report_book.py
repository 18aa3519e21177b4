"""The oracle's reports: measured once per (request, round), persisted, then served and
signed from the store, so a restart never re-measures differently (late readings that
arrive after the measurement do not change a report already computed).

Also keeps the committee signatures collected for our digests (`report_signatures`) and
builds the public per-device proofs.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from eth_account import Account
from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from gridflex.rules.attestation import MeterUnit
from gridflex.rules.eip712 import ReportPayload, sign_digest_secp256k1
from gridflex.rules.reports import DeviceRecord, build_report_trees, used_readings_leaf
from gridflex.rules.types import RequestStatus
from oracle.clock import Clock
from oracle.db import writer_engine
from oracle.measurement import (
    SETTLED_STATUSES,
    MeasuredReport,
    Measurer,
    ReportUnavailableError,
    RequestFacts,
    read_request,
)
from oracle.models import MeterUnitRecord, OracleReport, Reading, ReportSignature

log = structlog.get_logger(__name__)

SELF_SOURCE = "self"


@dataclass(frozen=True)
class DeviceProof:
    """Everything needed to check one device's record and readings against the roots."""

    record: DeviceRecord
    record_proof: list[bytes]
    used_readings: bytes
    readings_proof: list[bytes]
    units: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {
            "record": self.record.to_json(),
            "recordProof": ["0x" + node.hex() for node in self.record_proof],
            "usedReadings": "0x" + self.used_readings.hex(),
            "readingsProof": ["0x" + node.hex() for node in self.readings_proof],
            "units": self.units,
        }


LOADED_REPORTS = 4
"""Stored reports kept rebuilt in memory (the latest reads)."""


class ReportBook:
    """Measure-once store of this oracle's reports and the signatures collected for them."""

    def __init__(
        self, measurer: Measurer, engine: Engine, clock: Clock, report_delay_seconds: int
    ) -> None:
        self.measurer = measurer
        self.engine = engine
        self._writer = writer_engine(engine)
        self.clock = clock
        self.report_delay_seconds = report_delay_seconds
        self._measure_lock = threading.Lock()
        self.require_reconciliation = False
        """Set by the committee loop when it has peers: the current round of a cleared
        request is measured and signed only after `mark_reconciled`."""
        self._reconciled: set[tuple[int, int]] = set()
        self._loaded: OrderedDict[tuple[int, int, bytes], MeasuredReport] = OrderedDict()
        self._loaded_lock = threading.Lock()

    @property
    def signer(self) -> str | None:
        key = self.measurer.signer_key
        return None if key is None else Account.from_key(key).address

    # ─── Reports ──────────────────────────────────────────────────────────────────────

    def report_for(
        self,
        request_id: int,
        round_: int | None = None,
        facts: Callable[[], RequestFacts] | None = None,
    ) -> MeasuredReport:
        """The report of the request's current round: stored, or measured now and stored.
        An earlier `round_` (e.g. a voided report, for `gridflex verify --round`) is only
        served from the store: it is never re-measured.

        ReportUnavailableError: 404 unknown or never cleared (or that round never measured
        here), 425 before the window end plus the report delay. `facts`: the caller's read
        of the request's chain facts, used if a measurement is needed."""
        state = read_request(self.measurer.protocol, request_id)
        if round_ is not None and round_ != state.report_round:
            earlier = self.load(request_id, round_) if round_ < state.report_round else None
            if earlier is None:
                raise ReportUnavailableError(
                    404, f"request {request_id} has no report of round {round_} here"
                )
            return earlier
        ready_at = state.window_end + self.report_delay_seconds
        if state.status in SETTLED_STATUSES and self.clock.now() < ready_at:
            raise ReportUnavailableError(
                425, f"request {request_id} is measured from {ready_at} (unix s)", ready_at
            )
        stored = self.load(request_id, state.report_round)
        if stored is not None:
            return stored
        if state.status not in SETTLED_STATUSES:
            raise ReportUnavailableError(
                404, f"request {request_id} is {state.status.name.lower()}, nothing to measure"
            )
        if (
            self.require_reconciliation
            and state.status == RequestStatus.CLEARED
            and not self.is_reconciled(request_id, state.report_round)
        ):
            raise ReportUnavailableError(
                425,
                f"request {request_id} round {state.report_round}: reconciling units with "
                "the committee before signing",
                self.clock.now() + 2,
            )
        with self._measure_lock:
            stored = self.load(request_id, state.report_round)
            if stored is not None:
                return stored
            report = self.measurer.measure_request(request_id, None if facts is None else facts())
            return self.save(report)

    def mark_reconciled(self, request_id: int, round_: int) -> None:
        self._reconciled.add((request_id, round_))

    def is_reconciled(self, request_id: int, round_: int) -> bool:
        return (request_id, round_) in self._reconciled

    def save(self, report: MeasuredReport) -> MeasuredReport:
        """Store `report` unless one exists for its round already; returns the stored one."""
        row = {
            "request_id": report.request_id,
            "round": report.round,
            "digest": report.digest,
            "payload": json.dumps(_payload_json(report), separators=(",", ":")),
            "records": json.dumps([r.to_json() for r in report.trees.records]),
            "used_readings": json.dumps(
                {str(d): "0x" + packed.hex() for d, packed in report.trees.used_readings.items()}
            ),
            "signer": report.signer,
            "signature": report.signature,
            "computed_at": datetime.now(UTC),
        }
        try:
            with self._writer.begin() as connection:
                connection.execute(insert(OracleReport).values(**row))
        except IntegrityError:
            log.info("report already stored", request_id=report.request_id, round=report.round)
        stored = self.load(report.request_id, report.round)
        assert stored is not None
        if stored.signature is not None:
            self.add_signature(stored, stored.signer or "", stored.signature, SELF_SOURCE)
        return stored

    def refresh(
        self, request_id: int, facts: Callable[[], RequestFacts] | None = None
    ) -> MeasuredReport:
        """Measure the current round again (called only while its report is not on chain
        yet) and keep the new result if it changed: readings that arrive late, e.g. from a
        node catching up after an outage, must still count."""
        with self._measure_lock:
            fresh = self.measurer.measure_request(request_id, None if facts is None else facts())
            return self.replace_if_changed(fresh)

    def replace_if_changed(self, fresh: MeasuredReport) -> MeasuredReport:
        """Store `fresh` in place of the stored report of its round when the digests
        differ, and drop the signatures collected over the old digest (one per signer and
        round is kept, and the old ones can never be used)."""
        stored = self.load(fresh.request_id, fresh.round)
        if stored is not None and stored.digest == fresh.digest:
            return stored
        if stored is not None:
            with self._writer.begin() as connection:
                connection.execute(
                    delete(OracleReport).where(
                        OracleReport.request_id == fresh.request_id,
                        OracleReport.round == fresh.round,
                    )
                )
                connection.execute(
                    delete(ReportSignature).where(
                        ReportSignature.request_id == fresh.request_id,
                        ReportSignature.round == fresh.round,
                        ReportSignature.digest == stored.digest,
                    )
                )
            log.info(
                "report re-measured with new data",
                request_id=fresh.request_id,
                round=fresh.round,
                old_digest=stored.digest,
                new_digest=fresh.digest,
            )
        return self.save(fresh)

    def load(self, request_id: int, round_: int) -> MeasuredReport | None:
        """The stored report of the round. Its trees are rebuilt from the stored records
        once per digest and kept for the next reads (`LOADED_REPORTS` of them): a fleet's
        members fetching their proofs must not rebuild a 100,000-leaf tree each."""
        with Session(self.engine) as session:
            head = session.exec(
                select(OracleReport.digest, OracleReport.signer, OracleReport.signature).where(
                    OracleReport.request_id == request_id,  # type: ignore[arg-type]
                    OracleReport.round == round_,  # type: ignore[arg-type]
                )
            ).first()
            if head is None:
                return None
            key = (request_id, round_, bytes(head.digest))
            with self._loaded_lock:
                cached = self._loaded.get(key)
            if cached is None:
                row = session.get(OracleReport, (request_id, round_))
                if row is None:
                    return None
                cached = _from_row(row)
                with self._loaded_lock:
                    self._loaded[key] = cached
                    while len(self._loaded) > LOADED_REPORTS:
                        self._loaded.popitem(last=False)
        signature = None if head.signature is None else bytes(head.signature)
        report = dataclasses.replace(cached, signer=head.signer, signature=signature)
        key = self.measurer.signer_key
        if key is not None and report.signature is None:  # measured before a key was set
            signer, signature = (
                Account.from_key(key).address,
                sign_digest_secp256k1(key, report.digest),
            )
            with self._writer.begin() as connection:
                connection.execute(
                    update(OracleReport)
                    .where(
                        OracleReport.request_id == request_id,  # type: ignore[arg-type]
                        OracleReport.round == round_,  # type: ignore[arg-type]
                    )
                    .values(signer=signer, signature=signature)
                )
            report = dataclasses.replace(report, signer=signer, signature=signature)
            self.add_signature(report, signer, signature, SELF_SOURCE)
        return report

    def mark_submitted(self, report: MeasuredReport, tx_hash: str) -> None:
        with self._writer.begin() as connection:
            connection.execute(
                update(OracleReport)
                .where(
                    OracleReport.request_id == report.request_id,  # type: ignore[arg-type]
                    OracleReport.round == report.round,  # type: ignore[arg-type]
                )
                .values(submitted_tx=tx_hash)
            )

    # ─── Signatures ───────────────────────────────────────────────────────────────────

    def add_signature(
        self, report: MeasuredReport, signer: str, signature: bytes, source: str
    ) -> None:
        """Keep a verified signature over `report`'s digest (a second copy is ignored)."""
        try:
            with self._writer.begin() as connection:
                connection.execute(
                    insert(ReportSignature).values(
                        request_id=report.request_id,
                        round=report.round,
                        signer=signer,
                        digest=report.digest,
                        signature=signature,
                        source=source,
                        received_at=datetime.now(UTC),
                    )
                )
        except IntegrityError:
            pass

    def signatures(self, report: MeasuredReport) -> dict[str, bytes]:
        """{signer: signature} collected over `report`'s digest, signers ascending."""
        query = select(ReportSignature.signer, ReportSignature.signature).where(
            ReportSignature.request_id == report.request_id,  # type: ignore[arg-type]
            ReportSignature.round == report.round,  # type: ignore[arg-type]
            ReportSignature.digest == report.digest,  # type: ignore[arg-type]
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return dict(sorted(((s, bytes(sig)) for s, sig in rows), key=lambda r: int(r[0], 16)))

    # ─── Proofs ───────────────────────────────────────────────────────────────────────

    def device_proof(self, report: MeasuredReport, device_id: int) -> DeviceProof:
        """KeyError when the device has no record in the report."""
        trees = report.trees
        record = next((r for r in trees.records if r.device_id == device_id), None)
        if record is None:
            raise KeyError(device_id)
        packed = trees.used_readings[device_id]
        intervals = [int.from_bytes(packed[i : i + 8], "big") for i in range(0, len(packed), 16)]
        return DeviceProof(
            record,
            trees.devices_tree.proof(record.leaf()),
            packed,
            trees.readings_tree.proof(used_readings_leaf(device_id, packed)),
            self._units_of(device_id, intervals),
        )

    def signed_units(self, device_id: int, intervals: list[int]) -> list[MeterUnit]:
        """The device-signed units this oracle stored for `intervals` (the watcher's
        evidence)."""
        return [MeterUnit.from_json(u) for u in self._units_of(device_id, sorted(intervals))]

    def _units_of(self, device_id: int, intervals: list[int]) -> list[dict[str, Any]]:
        """The signed units the readings at `intervals` came from, by sequence (then first
        interval: a sequence need not be unique)."""
        if not intervals:
            return []
        unit_ids = (
            select(Reading.unit_id)
            .where(
                Reading.device_id == device_id,  # type: ignore[arg-type]
                Reading.interval_start >= intervals[0],  # type: ignore[arg-type]
                Reading.interval_start <= intervals[-1],  # type: ignore[arg-type]
                Reading.interval_start.in_(intervals),  # type: ignore[attr-defined]
            )
            .distinct()
        )
        with Session(self.engine) as session:
            rows = session.scalars(
                select(MeterUnitRecord)
                .where(MeterUnitRecord.id.in_(unit_ids))  # type: ignore[union-attr]
                .order_by(
                    MeterUnitRecord.sequence,  # type: ignore[arg-type]
                    MeterUnitRecord.first_interval_start,  # type: ignore[arg-type]
                )
            ).all()
        units = []
        for row in rows:
            unit = MeterUnit(
                row.device_id,
                row.first_interval_start,
                row.interval_seconds,
                row.sequence,
                tuple(json.loads(row.energy_wh)),
                bytes(row.signature),
            )
            units.append(unit.to_json() | {"digest": "0x" + bytes(row.digest).hex()})
        return units


def _payload_json(report: MeasuredReport) -> dict[str, Any]:
    return {
        "market": report.payload.market,
        "chainId": report.chain_id,
        "committee": report.committee,
        "deliveredWh": list(report.payload.delivered_wh),
        "devicesRoot": "0x" + report.payload.devices_root.hex(),
        "readingsRoot": "0x" + report.payload.readings_root.hex(),
    }


def _from_row(row: OracleReport) -> MeasuredReport:
    payload = json.loads(row.payload)
    records = [DeviceRecord.from_json(r) for r in json.loads(row.records)]
    used = {
        int(device_id): bytes.fromhex(packed.removeprefix("0x"))
        for device_id, packed in json.loads(row.used_readings).items()
    }
    delivered = [int(v) for v in payload["deliveredWh"]]
    trees = build_report_trees(records, used, len(delivered))
    report_payload = ReportPayload(
        payload["market"],
        row.request_id,
        row.round,
        delivered,
        bytes.fromhex(payload["devicesRoot"].removeprefix("0x")),
        bytes.fromhex(payload["readingsRoot"].removeprefix("0x")),
    )
    if trees.devices_root != report_payload.devices_root:  # pragma: no cover - corruption
        raise ValueError(f"stored report {row.request_id}/{row.round} does not rebuild")
    return MeasuredReport(
        row.request_id,
        row.round,
        int(payload["chainId"]),
        payload["committee"],
        report_payload,
        trees,
        row.signer,
        None if row.signature is None else bytes(row.signature),
    )
