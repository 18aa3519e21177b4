"""The oracle's tables (sqlmodel, the same code on SQLite and PostgreSQL) and the public
shapes the read API returns.

- `meter_units`: every accepted signed unit, verbatim (energy as compact JSON text), so
  anyone can re-verify it from `GET /v1/units/{digest}`.
- `readings`: one row per (device, interval start) with its interval length, written once,
  never updated: a second different signed value is evidence of fraud, not an update.
- `conflict_evidence`: the signed units that contradict a stored reading (fraud proofs).

Device ids and sequences are BIGINT: registry ids are sequential and nodes count sequences
from zero, so a value above 2**63-1 is refused at ingest rather than stored lossy.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

INT64_MAX = 2**63 - 1
"""Largest id, sequence or time the store holds (BIGINT); larger input is refused (4xx)."""
MAX_REPORT_ROUND = 2**16 - 1
"""Report rounds are uint16 on chain (`FlexMarket.reportRound`)."""

# BIGINT ids on PostgreSQL; INTEGER on SQLite, where only that type aliases the rowid.
ROW_ID = BigInteger().with_variant(Integer(), "sqlite")

# ─── meter_units ───────────────────────────────────────────────────────────────────────


class MeterUnitBase(SQLModel):
    device_id: int = Field(sa_type=BigInteger)
    first_interval_start: int = Field(sa_type=BigInteger)
    interval_seconds: int
    interval_count: int
    sequence: int = Field(sa_type=BigInteger)


class MeterUnitRecord(MeterUnitBase, table=True):
    """A stored signed unit (row of `meter_units`)."""

    __tablename__ = "meter_units"
    # No (device_id, sequence) uniqueness: only the device key can sign a second unit under
    # a used sequence, and readings are unique per (device, interval) (oracle.ingest).

    id: int | None = Field(default=None, primary_key=True, sa_type=ROW_ID)
    energy_wh: str = Field(sa_column=Column(Text, nullable=False))
    """JSON array of int64 Wh, one per interval: compact and readable in SQL."""
    signature: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    digest: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False, unique=True))
    received_at: datetime


class MeterUnitPublic(SQLModel):
    """A stored unit as the API returns it: the signed fields plus where it came from.

    Field names are the signed EIP-712 ones (camelCase), so the JSON re-verifies as is.
    """

    digest: str
    deviceId: int
    firstIntervalStart: int
    intervalSeconds: int
    sequence: int
    energyWh: list[int]
    signature: str
    receivedAt: datetime


# ─── readings ──────────────────────────────────────────────────────────────────────────


class ReadingBase(SQLModel):
    device_id: int = Field(sa_type=BigInteger, primary_key=True)
    interval_start: int = Field(sa_type=BigInteger, primary_key=True)
    energy_wh: int = Field(sa_type=BigInteger)
    interval_seconds: int
    """Length of the interval the energy covers (its unit's `intervalSeconds`): measurement
    reads only readings of the request's length, so a 3,600 s reading never counts as 900 s."""


class Reading(ReadingBase, table=True):
    """One interval of one device; the primary key makes it exist at most once."""

    __tablename__ = "readings"
    # SQLite: the row lives in the primary-key b-tree itself (no rowid, no second index).
    __table_args__ = ({"sqlite_with_rowid": False},)

    unit_id: int = Field(foreign_key="meter_units.id", sa_type=BigInteger)


class ReadingPublic(SQLModel):
    interval_start: int
    interval_seconds: int
    energy_wh: int
    unit_digest: str


class ReadingPage(SQLModel):
    """One page of a device's readings; pass `next_cursor` back as `cursor` for the next."""

    device_id: int
    readings: list[ReadingPublic]
    next_cursor: int | None


# ─── conflict_evidence ─────────────────────────────────────────────────────────────────


class ConflictEvidenceBase(SQLModel):
    device_id: int = Field(sa_type=BigInteger)
    interval_start: int = Field(sa_type=BigInteger)
    existing_unit_id: int | None = Field(
        default=None, foreign_key="meter_units.id", sa_type=BigInteger
    )
    """The stored unit contradicted; None when both units came in the same batch."""


class ConflictEvidence(ConflictEvidenceBase, table=True):
    """A signed unit that contradicts another signed unit of the same device: a fraud proof."""

    __tablename__ = "conflict_evidence"
    __table_args__ = (
        Index("ix_conflict_evidence_device", "device_id", "interval_start"),
        UniqueConstraint("conflicting_digest", "existing_digest", name="uq_conflict_pair"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=ROW_ID)
    conflicting_digest: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    existing_digest: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    conflicting_unit: str = Field(sa_column=Column(Text, nullable=False))
    """The rejected unit as signed JSON (MeterUnit.to_json), signature included."""
    existing_unit: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    """The other unit's JSON when it is not stored (same-batch conflict)."""
    detected_at: datetime


# ─── oracle_reports, report_signatures ─────────────────────────────────────────────────


class OracleReport(SQLModel, table=True):
    """A report this oracle computed for one request and round, frozen once written: a
    restart serves (and signs) exactly the same bytes instead of re-measuring.

    `records` and `used_readings` are the tree inputs (JSON); the trees themselves are
    rebuilt from them when a proof is asked for.
    """

    __tablename__ = "oracle_reports"

    request_id: int = Field(sa_type=BigInteger, primary_key=True)
    round: int = Field(primary_key=True)
    digest: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    payload: str = Field(sa_column=Column(Text, nullable=False))
    """JSON: market, chainId, committee, deliveredWh, devicesRoot, readingsRoot."""
    records: str = Field(sa_column=Column(Text, nullable=False))
    """JSON array of DeviceRecord.to_json()."""
    used_readings: str = Field(sa_column=Column(Text, nullable=False))
    """JSON object {deviceId: "0x<packed (intervalStart, energyWh) pairs>"}."""
    signer: str | None = None
    signature: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    computed_at: datetime
    submitted_tx: str | None = None
    """Hash of this oracle's submitReport transaction, if it posted the report."""


class ReportSignature(SQLModel, table=True):
    """A committee signature over one of our report digests (ours or a peer's), kept after
    verification: the signer recovered from it is an active oracle."""

    __tablename__ = "report_signatures"

    request_id: int = Field(sa_type=BigInteger, primary_key=True)
    round: int = Field(primary_key=True)
    signer: str = Field(primary_key=True)
    """Checksummed address recovered from the signature."""
    digest: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    signature: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    source: str
    """`self` or the peer URL it came from."""
    received_at: datetime
