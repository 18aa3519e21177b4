"""Conflict evidence as public data: both device-signed units of every stored
contradiction, so anyone can re-verify a CONFLICT record with
`gridflex.rules.attestation.verify_unit` (two valid signatures of one device, two values for one
interval), and so peers can fetch the evidence during reconciliation (`oracle.reconcile`).

The stored unit (`existing`) is read from `meter_units`, or from the evidence row itself
when both units came in one batch and neither was stored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import Session

from gridflex.rules.measurement import SECONDS_PER_DAY, ReadingSpan
from oracle.models import ConflictEvidence, MeterUnitRecord

MAX_EVIDENCE_PAGE = 500
"""Evidence pairs per page: each is two small signed units (a few hundred bytes)."""


@dataclass(frozen=True)
class ConflictPair:
    """One contradiction: two units signed by one device with different values for
    `interval_start`."""

    evidence_id: int
    device_id: int
    interval_start: int
    existing: dict[str, Any]
    conflicting: dict[str, Any]
    detected_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.evidence_id,
            "deviceId": self.device_id,
            "intervalStart": self.interval_start,
            "existing": self.existing,
            "conflicting": self.conflicting,
            "detectedAt": self.detected_at.isoformat(),
        }


def _stored_unit_json(row: MeterUnitRecord) -> dict[str, Any]:
    return {
        "deviceId": row.device_id,
        "firstIntervalStart": row.first_interval_start,
        "intervalSeconds": row.interval_seconds,
        "sequence": row.sequence,
        "energyWh": json.loads(row.energy_wh),
        "signature": "0x" + bytes(row.signature).hex(),
        "digest": "0x" + bytes(row.digest).hex(),
    }


def read_conflict_pairs(
    engine: Engine,
    device_id: int,
    span: ReadingSpan | None = None,
    *,
    after_id: int = 0,
    limit: int = MAX_EVIDENCE_PAGE,
) -> list[ConflictPair]:
    """The device's evidence (within `span` when given), by evidence id after `after_id`."""
    query = (
        select(ConflictEvidence, MeterUnitRecord)
        .join(
            MeterUnitRecord,
            MeterUnitRecord.id == ConflictEvidence.existing_unit_id,  # type: ignore[arg-type]
            isouter=True,
        )
        .where(
            ConflictEvidence.device_id == device_id,  # type: ignore[arg-type]
            ConflictEvidence.id > after_id,  # type: ignore[arg-type,operator]
        )
    )
    if span is not None:
        query = query.where(
            ConflictEvidence.interval_start >= span.start,  # type: ignore[arg-type]
            ConflictEvidence.interval_start < span.end,  # type: ignore[arg-type]
        )
        if span.daily_seconds is not None:
            offset = (ConflictEvidence.interval_start - span.start) % SECONDS_PER_DAY
            query = query.where(offset < span.daily_seconds)
    query = query.order_by(ConflictEvidence.id).limit(limit)  # type: ignore[arg-type]
    with Session(engine) as session:
        rows = session.execute(query).all()
    return [_pair(evidence, stored) for evidence, stored in rows]


def _pair(evidence: ConflictEvidence, stored: MeterUnitRecord | None) -> ConflictPair:
    if stored is not None:
        existing = _stored_unit_json(stored)
    else:
        existing = json.loads(evidence.existing_unit or "{}")
        existing["digest"] = "0x" + bytes(evidence.existing_digest).hex()
    conflicting = json.loads(evidence.conflicting_unit)
    conflicting["digest"] = "0x" + bytes(evidence.conflicting_digest).hex()
    assert evidence.id is not None
    return ConflictPair(
        evidence.id,
        evidence.device_id,
        evidence.interval_start,
        existing,
        conflicting,
        evidence.detected_at,
    )
