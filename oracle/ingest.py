"""Batch ingest of signed meter units: verify every unit, then store the whole batch in one
transaction or nothing at all. Pure logic (no HTTP): the API and the benchmarks call
`Ingestor.ingest_batch`.

Per unit, in order of cost: shape and EIP-712 field ranges (which include the interval
grid), an interval length the market settles (900 or 1800 s), then the device as it stood
at the unit's intervals (the registry epoch in force at its first interval start, the one
`DisputeResolver` judges it by; the whole unit inside that epoch; none before the
registration, which `deviceAt` refuses too, so no dispute could judge it): active,
plausibility |energy| <= capacity x interval x margin, not older than
`max_reading_age_seconds`, unit end not in the future beyond the skew, then the signature
against that epoch's key (one fast struct hash per unit, one ecrecover or P-256 verify).
Then, set-based against the database: same digest already stored -> duplicate (idempotent
resend); a different value for a stored (device, interval) -> conflict, kept as evidence;
a stored reading of another interval length at the same start -> refused (one grid per
device).

The unit's sequence is signed but not required unique: only the device key can sign a second
unit under a used sequence, so uniqueness protects against no third party, while refusing it
would let a device split the oracles (each shown one of two same-sequence units over other
intervals, reconciliation could not converge them). Readings are keyed by (device, interval);
a second value for one interval is the equivocation rule (conflict).

All-or-nothing: if any unit is rejected, no unit or reading of the batch is stored (only
conflict evidence is), so a node's batch maps to one commit and one answer. The answer
exists only after the commit: that is the acknowledgement the node deletes its copy on.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from fractions import Fraction
from typing import Any

import structlog
from sqlalchemy import BigInteger, Engine, insert, select
from sqlalchemy.exc import IntegrityError, OperationalError

from gridflex.rules.attestation import (
    AttestationError,
    MeterUnit,
    signed_by,
    unit_digests,
)
from gridflex.rules.types import SETTLED_INTERVAL_SECONDS
from oracle.bulk import insert_rows, select_with_rows
from oracle.clock import Clock
from oracle.db import writer_engine
from oracle.models import INT64_MAX, ConflictEvidence, MeterUnitRecord, Reading
from oracle.registry_cache import DeviceDirectory, DeviceHistory, RegisteredDevice

log = structlog.get_logger(__name__)

MAX_INTEGRITY_RETRIES = 3
SPANS_PER_QUERY = 500
READINGS, METER_UNITS = Reading.__tablename__, MeterUnitRecord.__tablename__
UNIT_COLUMNS = (
    "device_id",
    "first_interval_start",
    "interval_seconds",
    "interval_count",
    "sequence",
    "energy_wh",
    "signature",
    "digest",
    "received_at",
)
READING_COLUMNS = ("device_id", "interval_start", "energy_wh", "interval_seconds", "unit_id")
DIGEST_TYPE = MeterUnitRecord.__table__.c.digest.type


class UnitStatus(StrEnum):
    ACCEPTED = "accepted"
    """Stored by this batch's commit."""
    DUPLICATE = "duplicate"
    """The same signed unit was stored before: nothing to do, safe to forget."""
    REJECTED = "rejected"
    """Never storable as is; `reason` says why."""
    VALID = "valid"
    """Passed every check but not stored, because another unit of the batch was rejected:
    resend it without the rejected units."""


class Rejection(StrEnum):
    """Why a unit was rejected: the label of the rejection metric, one per check."""

    MALFORMED = "malformed"
    INVALID_FIELD = "invalid_field"
    UNREGISTERED = "unregistered_device"
    INACTIVE = "inactive_device"
    IMPLAUSIBLE = "implausible_energy"
    FUTURE = "future_timestamp"
    TOO_OLD = "too_old"
    BEFORE_REGISTRATION = "before_registration"
    SPANS_EPOCHS = "spans_registry_change"
    INTERVAL_MISMATCH = "interval_length_mismatch"
    BAD_SIGNATURE = "bad_signature"
    CONFLICT = "conflict"


CONFLICT_REJECTIONS = frozenset({Rejection.CONFLICT})


class StoreUnavailableError(RuntimeError):
    """The database is locked or down: nothing was stored, the batch must be resent."""


@dataclass(frozen=True, slots=True)
class UnitResult:
    index: int
    status: UnitStatus
    reason: str | None = None
    rejection: Rejection | None = None

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "status": self.status.value, "reason": self.reason}


@dataclass
class BatchResult:
    """Per-unit outcome of one batch, in request order."""

    results: list[UnitResult]
    readings_stored: int = 0
    seconds: float = 0.0

    @property
    def rejected(self) -> list[UnitResult]:
        return [result for result in self.results if result.status == UnitStatus.REJECTED]

    @property
    def stored(self) -> bool:
        """True when the batch was committed (every unit accepted or duplicate)."""
        return not self.rejected

    @property
    def has_conflict(self) -> bool:
        return any(result.rejection in CONFLICT_REJECTIONS for result in self.rejected)

    def count(self, status: UnitStatus) -> int:
        return sum(1 for result in self.results if result.status == status)

    @property
    def summary(self) -> str:
        rejected = self.rejected
        if not rejected:
            return f"{len(self.results)} units stored or already known"
        first = rejected[0]
        return (
            f"{len(rejected)} of {len(self.results)} units rejected, nothing stored "
            f"(first: unit {first.index}: {first.reason})"
        )


@dataclass(frozen=True)
class IngestLimits:
    """The checks' parameters (from OracleSettings)."""

    margin: Fraction = Fraction(3, 2)
    future_skew_seconds: int = 120
    max_reading_age_seconds: int = 60 * 86_400


@dataclass(slots=True)
class _Candidate:
    """A unit whose signature verified, waiting for the database checks."""

    index: int
    unit: MeterUnit
    digest: bytes
    rows: list[tuple[int, int]] = field(default_factory=list)
    """(interval_start, energy_wh) pairs this unit adds to `readings`."""


class Ingestor:
    """Verifies and stores batches; thread-safe (SQLite writers are serialised here)."""

    def __init__(
        self,
        engine: Engine,
        registry: DeviceDirectory,
        clock: Clock,
        domain_separator: bytes,
        limits: IngestLimits | None = None,
    ) -> None:
        self._engine = writer_engine(engine)
        self._registry = registry
        self._clock = clock
        self._domain_separator = domain_separator
        self._limits = limits or IngestLimits()
        # SQLite has one writer at a time anyway; queueing here beats busy-waiting in
        # SQLite. PostgreSQL relies on the unique constraints (retry on IntegrityError).
        self._write_lock: contextlib.AbstractContextManager[Any] = (
            threading.Lock() if engine.dialect.name == "sqlite" else contextlib.nullcontext()
        )

    # ─── Entry point ──────────────────────────────────────────────────────────────────

    def ingest_batch(self, units: Sequence[Mapping[str, Any] | MeterUnit]) -> BatchResult:
        """Check every unit and store the batch atomically; see the module docstring.

        Raises StoreUnavailableError (database) or RegistryUnavailableError (chain) when
        the batch could not be judged: nothing is stored then, the caller answers 503.
        """
        started = time.perf_counter()
        results: dict[int, UnitResult] = {}
        parsed: list[tuple[int, MeterUnit]] = []
        for index, raw in enumerate(units):
            unit_or_rejection = _parse(raw)
            if isinstance(unit_or_rejection, UnitResult):
                results[index] = _with_index(unit_or_rejection, index)
            else:
                parsed.append((index, unit_or_rejection))

        devices = self._registry.get_many({unit.device_id for _, unit in parsed})
        now = self._clock.now()
        latest_end = max((unit.end for _, unit in parsed), default=0)
        if latest_end > now + self._limits.future_skew_seconds:
            now = self._clock.fresh_now()  # refuse "future" only on a fresh clock reading
        candidates: list[_Candidate] = []
        digests = unit_digests([unit for _, unit in parsed], self._domain_separator)
        for (index, unit), digest in zip(parsed, digests, strict=True):
            rejection = self._judge(unit, digest, devices[unit.device_id], now)
            if rejection is not None and rejection[0] == Rejection.BAD_SIGNATURE:
                # Maybe the registry changed since we cached it: one rate-limited reload.
                fresh = self._registry.reload(unit.device_id)
                if fresh is not None and fresh != devices[unit.device_id]:
                    devices[unit.device_id] = fresh
                    rejection = self._judge(unit, digest, fresh, now)
            if rejection is not None:
                results[index] = UnitResult(index, UnitStatus.REJECTED, rejection[1], rejection[0])
                continue
            candidates.append(_Candidate(index, unit, digest))

        readings_stored = self._store(candidates, results) if candidates else 0
        ordered = [results[index] for index in range(len(units))]
        return BatchResult(ordered, readings_stored, time.perf_counter() - started)

    # ─── Checks that need no database ─────────────────────────────────────────────────

    def _judge(
        self, unit: MeterUnit, digest: bytes, history: DeviceHistory | None, now: int
    ) -> tuple[Rejection, str] | None:
        """Every check that needs no database, against the device as it stood at the
        unit's intervals; None when the unit may be stored."""
        if history is None:
            return Rejection.UNREGISTERED, f"unregistered device {unit.device_id}"
        device = history.at(unit.first_interval_start)
        if device is None:
            # `DeviceRegistry.deviceAt` reverts `DeviceNotYetRegistered` here: no dispute
            # could ever judge this reading. Nodes register first, then meter.
            return Rejection.BEFORE_REGISTRATION, (
                f"unit starts at {unit.first_interval_start}, before device "
                f"{unit.device_id} was registered (at {history.registered_at}): the registry "
                "has no key for it then, so no dispute could judge it"
            )
        if device.until is not None and unit.end > device.until:
            # DisputeResolver refuses such a unit too (UnitSpansDeviceEpochs): it could
            # never be used in a dispute.
            return Rejection.SPANS_EPOCHS, (
                f"unit runs past {device.until}, when the registry changed device "
                f"{unit.device_id} (owner, key, capacity or active flag): a unit must end "
                "within the registry state it is judged by; sign later intervals separately"
            )
        rejection = self._check_unit(unit, device, now)
        if rejection is not None:
            return rejection
        if not signed_by(unit, digest, device.key):
            return Rejection.BAD_SIGNATURE, (
                "signature does not match the key registered for the device at the unit's "
                "intervals (forged, signed with a key rotated out or in later, or signed for "
                "another chain or registry)"
            )
        return None

    def _check_unit(
        self, unit: MeterUnit, device: RegisteredDevice, now: int
    ) -> tuple[Rejection, str] | None:
        if not device.active:
            return Rejection.INACTIVE, (
                f"device {unit.device_id} is deactivated in the registry at the unit's intervals"
            )
        margin = self._limits.margin
        peak = max(max(unit.energy_wh), -min(unit.energy_wh))
        # peak > margin x capacity x interval / 3600, in integers (no Fraction per unit)
        if peak * 3600 * margin.denominator > margin.numerator * device.capacity_w * (
            unit.interval_seconds
        ):
            return Rejection.IMPLAUSIBLE, (
                f"implausible energy: |{peak}| Wh in one {unit.interval_seconds} s interval "
                f"exceeds capacity {device.capacity_w} W x margin {float(self._limits.margin)}"
            )
        oldest_allowed = now - self._limits.max_reading_age_seconds
        if unit.first_interval_start < oldest_allowed:
            return Rejection.TOO_OLD, (
                f"unit starts at {unit.first_interval_start}, more than "
                f"{self._limits.max_reading_age_seconds} s ago (now {now}): no report still "
                "to be measured can use it"
            )
        latest_allowed = now + self._limits.future_skew_seconds
        if unit.end > latest_allowed:
            return Rejection.FUTURE, (
                f"unit ends at {unit.end}, in the future (now {now}, "
                f"skew {self._limits.future_skew_seconds} s)"
            )
        return None

    # ─── Database phase ───────────────────────────────────────────────────────────────

    def _store(self, candidates: list[_Candidate], results: dict[int, UnitResult]) -> int:
        for attempt in range(1, MAX_INTEGRITY_RETRIES + 1):
            try:
                with self._write_lock, self._engine.begin() as connection:
                    return self._store_in(connection, candidates, results)
            except IntegrityError as error:
                # Another oracle process stored an overlapping unit between our checks and
                # our insert: the checks, re-run, now see it.
                log.warning("ingest race, re-checking batch", attempt=attempt, error=str(error))
                for candidate in candidates:
                    candidate.rows.clear()
                    results.pop(candidate.index, None)
            except OperationalError as error:
                raise StoreUnavailableError(_database_reason(error)) from error
        raise StoreUnavailableError("concurrent writers kept conflicting; retry the batch")

    def _store_in(
        self, connection: Any, candidates: list[_Candidate], results: dict[int, UnitResult]
    ) -> int:
        stored_digests = {
            bytes(digest)
            for (digest,) in select_with_rows(
                connection,
                "batch",
                [("digest", DIGEST_TYPE)],
                [(c.digest,) for c in candidates],
                f"SELECT u.digest FROM batch b JOIN {METER_UNITS} u ON u.digest = b.digest",
            )
        }
        fresh: list[_Candidate] = []
        seen_digests: set[bytes] = set()
        for candidate in candidates:
            if candidate.digest in stored_digests or candidate.digest in seen_digests:
                results[candidate.index] = UnitResult(candidate.index, UnitStatus.DUPLICATE)
            else:
                seen_digests.add(candidate.digest)
                fresh.append(candidate)

        stored_readings = self._stored_readings(connection, fresh)
        evidence: list[dict[str, Any]] = []
        detected_at = datetime.now(UTC)
        batch_units: dict[int, list[_Candidate]] = {}
        for candidate in fresh:
            unit = candidate.unit
            conflict = _collect_rows(
                candidate, stored_readings.get(unit.device_id), batch_units.get(unit.device_id)
            )
            if conflict is not None and conflict.interval_seconds != unit.interval_seconds:
                results[candidate.index] = UnitResult(
                    candidate.index,
                    UnitStatus.REJECTED,
                    f"interval {conflict.interval_start} is already held as a "
                    f"{conflict.interval_seconds} s reading of this device "
                    f"(unit 0x{conflict.digest.hex()}), not {unit.interval_seconds} s: one "
                    "interval grid per device",
                    Rejection.INTERVAL_MISMATCH,
                )
            elif conflict is not None:
                evidence.append(_evidence_row(candidate, conflict, detected_at))
                results[candidate.index] = UnitResult(
                    candidate.index,
                    UnitStatus.REJECTED,
                    f"conflicting reading: interval {conflict.interval_start} already has "
                    f"{conflict.energy_wh} Wh signed by this device "
                    f"(unit 0x{conflict.digest.hex()}); kept as evidence",
                    Rejection.CONFLICT,
                )
            else:
                batch_units.setdefault(unit.device_id, []).append(candidate)
                results[candidate.index] = UnitResult(candidate.index, UnitStatus.VALID)

        if any(result.status == UnitStatus.REJECTED for result in results.values()):
            self._insert_evidence(connection, evidence)
            return 0
        return self._insert_batch(connection, fresh, results)

    @staticmethod
    def _stored_readings(
        connection: Any, fresh: list[_Candidate]
    ) -> dict[int, dict[int, _StoredReading]]:
        """Stored readings inside each device's span of this batch: one range query."""
        spans: dict[int, tuple[int, int]] = {}
        for candidate in fresh:
            unit = candidate.unit
            low, high = spans.get(unit.device_id, (unit.first_interval_start, unit.end))
            spans[unit.device_id] = (min(low, unit.first_interval_start), max(high, unit.end))
        if not spans:
            return {}
        rows = select_with_rows(
            connection,
            "spans",
            [("device_id", BigInteger()), ("low", BigInteger()), ("high", BigInteger())],
            [(device_id, low, high) for device_id, (low, high) in spans.items()],
            "SELECT r.device_id, r.interval_start, r.energy_wh, r.interval_seconds, "
            f"r.unit_id, u.digest FROM spans s JOIN {READINGS} r ON r.device_id = s.device_id "
            "AND r.interval_start >= s.low AND r.interval_start < s.high "
            f"JOIN {METER_UNITS} u ON u.id = r.unit_id",
        )
        stored: dict[int, dict[int, _StoredReading]] = {}
        for device_id, interval_start, energy_wh, interval_seconds, unit_id, digest in rows:
            stored.setdefault(device_id, {})[interval_start] = _StoredReading(
                interval_start, energy_wh, interval_seconds, unit_id, digest, None
            )
        return stored

    @staticmethod
    def _insert_evidence(connection: Any, evidence: list[dict[str, Any]]) -> None:
        """Keep each (conflicting unit, contradicted unit) pair once, however often resent."""
        if not evidence:
            return
        known = {
            (conflicting, existing)
            for conflicting, existing in connection.execute(
                select(ConflictEvidence.conflicting_digest, ConflictEvidence.existing_digest).where(
                    ConflictEvidence.conflicting_digest.in_(  # type: ignore[attr-defined]
                        [row["conflicting_digest"] for row in evidence]
                    )
                )
            )
        }
        new_rows: dict[tuple[bytes, bytes], dict[str, Any]] = {}
        for row in evidence:
            pair = (row["conflicting_digest"], row["existing_digest"])
            if pair not in known:
                new_rows.setdefault(pair, row)
        if new_rows:
            connection.execute(insert(ConflictEvidence), list(new_rows.values()))
            log.warning("conflict evidence stored", count=len(new_rows))

    @staticmethod
    def _insert_batch(
        connection: Any, fresh: list[_Candidate], results: dict[int, UnitResult]
    ) -> int:
        if not fresh:
            return 0
        received_at = datetime.now(UTC)
        unit_rows = [
            (
                c.unit.device_id,
                c.unit.first_interval_start,
                c.unit.interval_seconds,
                len(c.unit.energy_wh),
                c.unit.sequence,
                json.dumps(c.unit.energy_wh, separators=(",", ":")),
                c.unit.signature,
                c.digest,
                received_at,
            )
            for c in fresh
        ]
        unit_ids = {
            bytes(digest): unit_id
            for unit_id, digest in insert_rows(
                connection, MeterUnitRecord.__table__, UNIT_COLUMNS, unit_rows, ("id", "digest")
            )
        }
        reading_rows = [
            (unit.device_id, interval_start, energy_wh, unit.interval_seconds, unit_id)
            for candidate in fresh
            for unit, unit_id in ((candidate.unit, unit_ids[candidate.digest]),)
            for interval_start, energy_wh in candidate.rows
        ]
        insert_rows(connection, Reading.__table__, READING_COLUMNS, reading_rows)
        for candidate in fresh:
            results[candidate.index] = UnitResult(candidate.index, UnitStatus.ACCEPTED)
        return len(reading_rows)


# ─── Helpers ───────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class _StoredReading:
    """A reading already signed for (device, interval): stored, or earlier in the batch."""

    interval_start: int
    energy_wh: int
    interval_seconds: int
    unit_id: int | None
    digest: bytes
    unit: MeterUnit | None  # set when the other unit is in this batch (not stored)


def _parse(raw: Mapping[str, Any] | MeterUnit) -> MeterUnit | UnitResult:
    """A MeterUnit in EIP-712 range, or a rejection saying which field is wrong."""
    if isinstance(raw, MeterUnit):
        unit = raw
    else:
        try:
            unit = MeterUnit.from_json(raw)
        except AttestationError as error:
            return _rejected(Rejection.MALFORMED, error.reason)
    try:
        unit.check_shape()
    except AttestationError as error:
        return _rejected(Rejection.INVALID_FIELD, error.reason)
    if unit.interval_seconds not in SETTLED_INTERVAL_SECONDS:
        return _rejected(
            Rejection.INVALID_FIELD,
            f"intervalSeconds {unit.interval_seconds} is not a length the market settles "
            f"({', '.join(str(s) for s in sorted(SETTLED_INTERVAL_SECONDS))})",
        )
    # Store only the signature form DisputeResolver accepts (same digest, same signer), so
    # whoever posts a unit first cannot make the stored copy unusable in a dispute.
    unit = unit.with_canonical_signature()
    if unit.sequence > INT64_MAX or unit.device_id > INT64_MAX:
        return _rejected(
            Rejection.INVALID_FIELD, "sequence and deviceId above 2**63-1 are not supported"
        )
    return unit


def _rejected(rejection: Rejection, reason: str) -> UnitResult:
    return UnitResult(-1, UnitStatus.REJECTED, reason, rejection)


def _with_index(result: UnitResult, index: int) -> UnitResult:
    return UnitResult(index, result.status, result.reason, result.rejection)


def _collect_rows(
    candidate: _Candidate,
    stored: dict[int, _StoredReading] | None,
    batch_units: list[_Candidate] | None,
) -> _StoredReading | None:
    """Fill `candidate.rows` with the readings it adds; return the first contradicted
    reading instead when one exists. Per-reading lookups only when the unit overlaps
    stored readings or another unit of the batch: the common case is a plain copy."""
    unit = candidate.unit
    starts = unit.interval_starts
    overlapping = [
        other
        for other in batch_units or ()
        if other.unit.first_interval_start < unit.end and unit.first_interval_start < other.unit.end
    ]
    if not stored and not overlapping:
        candidate.rows = list(zip(starts, unit.energy_wh, strict=True))
        return None
    known: dict[int, _StoredReading] = dict(stored or {})
    for other in overlapping:
        for interval_start, energy_wh in zip(
            other.unit.interval_starts, other.unit.energy_wh, strict=True
        ):
            known.setdefault(
                interval_start,
                _StoredReading(
                    interval_start,
                    energy_wh,
                    other.unit.interval_seconds,
                    None,
                    other.digest,
                    other.unit,
                ),
            )
    rows: list[tuple[int, int]] = []
    for interval_start, energy_wh in zip(starts, unit.energy_wh, strict=True):
        prior = known.get(interval_start)
        if prior is None:
            rows.append((interval_start, energy_wh))
        elif prior.energy_wh != energy_wh or prior.interval_seconds != unit.interval_seconds:
            return prior
    candidate.rows = rows
    return None


def _evidence_row(
    candidate: _Candidate, prior: _StoredReading, detected_at: datetime
) -> dict[str, Any]:
    return {
        "device_id": candidate.unit.device_id,
        "interval_start": prior.interval_start,
        "existing_unit_id": prior.unit_id,
        "existing_digest": prior.digest,
        "existing_unit": json.dumps(prior.unit.to_json()) if prior.unit is not None else None,
        "conflicting_digest": candidate.digest,
        "conflicting_unit": json.dumps(candidate.unit.to_json()),
        "detected_at": detected_at,
    }


def _database_reason(error: OperationalError) -> str:
    message = str(error.orig) if error.orig is not None else str(error)
    if "locked" in message or "busy" in message:
        return "database is locked by another writer; retry shortly"
    return f"database unavailable: {message.splitlines()[0] if message else 'no answer'}"
