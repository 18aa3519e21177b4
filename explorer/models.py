"""The explorer's tables. `chain_events` is the source of truth (every GridFlex log, keyed
by block number, block hash and log index, so a replay is idempotent); the other chain
tables are projections recomputed from it (`explorer.projection`). Oracle data (device
records, per-interval curves, readings) comes from the oracles' public API
(`explorer.records`). Table names start with `explorer_`.

No foreign-key constraints: projections are deleted and rebuilt as a whole after a
rollback, in any order; the joins run on primary keys and indexed columns.

Token amounts exceed 64 bits (18 decimals), so they are stored as decimal text
(`TokenAmount`) and come back as Python ints, exact on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Index, String, Text, UniqueConstraint
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class TokenAmount(TypeDecorator[int]):
    """An unbounded integer stored as decimal text."""

    impl = String(80)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        return None if value is None else str(int(value))

    def process_result_value(self, value: Any, dialect: Any) -> int | None:
        return None if value is None else int(value)


def amount_field(**kwargs: Any) -> Any:
    return Field(default=0, sa_type=TokenAmount, **kwargs)


def big_int_field(**kwargs: Any) -> Any:
    return Field(default=0, sa_type=BigInteger, **kwargs)


# ─── Indexer state ────────────────────────────────────────────────────────────────────


class IndexerCursor(SQLModel, table=True):
    """Which chain the database follows and the next block to index (one row)."""

    __tablename__ = "explorer_indexer_cursor"

    id: int = Field(default=1, primary_key=True)
    chain_id: int = Field(sa_type=BigInteger)
    genesis_hash: str
    deployed_at_block: int = Field(sa_type=BigInteger)
    deployment_block_hash: str
    next_block: int = Field(sa_type=BigInteger)
    chain_head: int = big_int_field()
    """The chain head seen at the last poll (for `/health`)."""


class IndexedBlock(SQLModel, table=True):
    """Hash and time of indexed blocks: every block holding a GridFlex event (their times
    date the events) and the last `reorg_depth` batch ends (to find a fork point)."""

    __tablename__ = "explorer_indexed_blocks"

    number: int = Field(primary_key=True, sa_type=BigInteger)
    hash: str
    timestamp: int = Field(sa_type=BigInteger)


class ChainEvent(SQLModel, table=True):
    """One decoded GridFlex log."""

    __tablename__ = "explorer_chain_events"
    __table_args__ = (UniqueConstraint("block_number", "block_hash", "log_index"),)

    id: int | None = Field(default=None, primary_key=True)
    block_number: int = Field(sa_type=BigInteger, index=True)
    block_hash: str
    log_index: int
    tx_hash: str
    timestamp: int = Field(sa_type=BigInteger)
    contract: str
    name: str = Field(index=True)
    args: str = Field(sa_type=Text)
    """The decoded arguments as JSON (bytes as 0x-hex, ints exact)."""


# ─── Projections of the events ────────────────────────────────────────────────────────


class Device(SQLModel, table=True):
    __tablename__ = "explorer_devices"

    device_id: int = Field(primary_key=True, sa_type=BigInteger)
    owner: str = Field(index=True)
    kind: int
    capacity_w: int = Field(sa_type=BigInteger)
    zone: str = Field(index=True)
    key_type: int
    key_x: str
    key_y: str
    active: bool = True
    registered_at: int = Field(sa_type=BigInteger)


class Request(SQLModel, table=True):
    """A flexibility request with its clearing, report and settlement outcome."""

    __tablename__ = "explorer_requests"

    request_id: int = Field(primary_key=True, sa_type=BigInteger)
    operator: str = Field(index=True)
    zone: str = Field(index=True)
    direction: int
    power_w: int = Field(sa_type=BigInteger)
    window_start: int = Field(sa_type=BigInteger)
    window_end: int = Field(sa_type=BigInteger)
    interval_seconds: int
    price_cap_per_kwh: int = amount_field()
    availability_price_per_kwh: int = amount_field()
    gate_closure: int = Field(sa_type=BigInteger)
    baseline_method: int
    pricing_rule: int
    settlement_token: str
    escrow: int = amount_field()
    created_at: int = Field(sa_type=BigInteger, index=True)
    status: str = "open"
    awarded_w: int = big_int_field()
    clearing_price: int = amount_field()
    accepted_bids: int = 0
    bid_count: int = 0
    bids_placed: int = 0
    """Bids ever placed, displaced ones included: the next bid's `sequence`."""
    report_round: int | None = None
    dispute_ends_at: int | None = Field(default=None, sa_type=BigInteger)
    payouts: int = amount_field()
    fees: int = amount_field()
    refund: int = amount_field()
    slashed: int = amount_field()
    delivered_wh: int = big_int_field()
    closed_at: int | None = Field(default=None, sa_type=BigInteger)
    """When it settled, expired or was cancelled."""


class Bid(SQLModel, table=True):
    __tablename__ = "explorer_bids"

    request_id: int = Field(primary_key=True, sa_type=BigInteger)
    bid_index: int = Field(primary_key=True)
    bidder: str = Field(index=True)
    power_w: int = Field(sa_type=BigInteger)
    price_per_kwh: int = amount_field()
    bond: int = amount_field()
    device_ids: str
    """JSON list of the offered device ids."""
    placed_at: int = Field(sa_type=BigInteger)
    sequence: int = 0
    """Order of placement in the request (`Bid.sequence` on-chain): the merit order's
    tie-break, since a bid that displaced another took its slot (`bid_index`)."""
    awarded_w: int = big_int_field()
    settled: bool = False
    delivered_wh: int = big_int_field()
    utilization: int = amount_field()
    availability: int = amount_field()
    fee: int = amount_field()
    slashed: int = amount_field()

    @property
    def payout(self) -> int:
        return self.utilization + self.availability - self.fee


class BidDevice(SQLModel, table=True):
    """Which devices a bid offered: the device page's way to its events."""

    __tablename__ = "explorer_bid_devices"

    request_id: int = Field(primary_key=True, sa_type=BigInteger)
    bid_index: int = Field(primary_key=True)
    device_id: int = Field(primary_key=True, sa_type=BigInteger, index=True)


class Report(SQLModel, table=True):
    """One posted report round (`ReportSubmitted`), voided or standing."""

    __tablename__ = "explorer_reports"

    request_id: int = Field(primary_key=True, sa_type=BigInteger)
    round: int = Field(primary_key=True)
    devices_root: str
    readings_root: str
    delivered_wh: str
    """JSON list, per bid."""
    signer_bitmap: int = Field(sa_type=BigInteger)
    signers: str
    """JSON list of oracle addresses (from `OracleAdded` ids)."""
    dispute_ends_at: int = Field(sa_type=BigInteger)
    posted_at: int = Field(sa_type=BigInteger)
    tx_hash: str
    voided: bool = False


class LedgerEntry(SQLModel, table=True):
    """Money and stake moves per account: stake, unstake, locks, slashes, payouts, refunds,
    withdrawals. Derived from the events, one row per account affected."""

    __tablename__ = "explorer_ledger"
    __table_args__ = (Index("ix_ledger_account_time", "account", "timestamp"),)

    id: int | None = Field(default=None, primary_key=True)
    account: str
    kind: str = Field(index=True)
    amount: int = amount_field()
    token: str
    counterparty: str = ""
    """The contract that moved stake (lock, unlock, slash), else empty."""
    request_id: int | None = Field(default=None, sa_type=BigInteger)
    timestamp: int = Field(sa_type=BigInteger)
    block_number: int = Field(sa_type=BigInteger)
    tx_hash: str


class AccountStake(SQLModel, table=True):
    """`Staking.accountOf(account)` read at `block_number`, refreshed by the indexer for
    every account a batch's staking events touched (exact where replaying slashes could
    not tell `slash` from `slashUnlocked`)."""

    __tablename__ = "explorer_account_stakes"

    account: str = Field(primary_key=True)
    staked: int = amount_field()
    locked: int = amount_field()
    unbonding: int = amount_field()
    unbonding_release_at: int = big_int_field()
    block_number: int = Field(sa_type=BigInteger)


class Oracle(SQLModel, table=True):
    __tablename__ = "explorer_oracles"

    oracle_id: int = Field(primary_key=True)
    address: str
    active: bool = True


class Challenge(SQLModel, table=True):
    __tablename__ = "explorer_challenges"

    challenge_id: int = Field(primary_key=True, sa_type=BigInteger)
    request_id: int = Field(sa_type=BigInteger, index=True)
    round: int
    device_id: int = Field(sa_type=BigInteger)
    interval_start: int = Field(sa_type=BigInteger)
    used_energy_wh: int = Field(sa_type=BigInteger)
    signed_energy_wh: int = Field(sa_type=BigInteger)
    challenger: str
    status: str = "pending"
    """pending, rebutted, resolved or moot (its round was settled by another challenge)."""


# ─── Oracle data ──────────────────────────────────────────────────────────────────────


class DeviceResult(SQLModel, table=True):
    """One device's record in a posted report, as an oracle publishes it."""

    __tablename__ = "explorer_device_results"

    request_id: int = Field(primary_key=True, sa_type=BigInteger)
    round: int = Field(primary_key=True)
    device_id: int = Field(primary_key=True, sa_type=BigInteger, index=True)
    bid_index: int
    baseline_wh: int = Field(sa_type=BigInteger)
    metered_wh: int = Field(sa_type=BigInteger)
    delivered_wh: int = Field(sa_type=BigInteger)
    quality: int
    source: str
    devices_root: str
    """The posted root this record belongs to: a record of a reverted report is stale."""


class EventInterval(SQLModel, table=True):
    """Baseline, metered and delivered energy of one device in one event interval,
    recomputed from the report's used readings with the rules core and the request's chain
    facts (`explorer.records.interval_curves`): an honest record is the sum of its curve."""

    __tablename__ = "explorer_event_intervals"

    request_id: int = Field(primary_key=True, sa_type=BigInteger)
    device_id: int = Field(primary_key=True, sa_type=BigInteger)
    interval_start: int = Field(primary_key=True, sa_type=BigInteger)
    baseline_wh: int = Field(sa_type=BigInteger)
    metered_wh: int = Field(sa_type=BigInteger)
    delivered_wh: int = Field(sa_type=BigInteger)


class Reading(SQLModel, table=True):
    """A device-signed interval reading served by an oracle."""

    __tablename__ = "explorer_readings"

    device_id: int = Field(primary_key=True, sa_type=BigInteger)
    interval_start: int = Field(primary_key=True, sa_type=BigInteger)
    energy_wh: int = Field(sa_type=BigInteger)
    unit_digest: str


class DeviceCheck(SQLModel, table=True):
    """The verify page of one device in one report round (`explorer.verification`), checked
    once against the roots it names: a view of other roots is checked again."""

    __tablename__ = "explorer_device_checks"

    request_id: int = Field(primary_key=True, sa_type=BigInteger)
    round: int = Field(primary_key=True)
    device_id: int = Field(primary_key=True, sa_type=BigInteger)
    devices_root: str
    readings_root: str
    body: str = Field(sa_type=Text)
    """The `DeviceVerification` as JSON."""


PROJECTION_TABLES: tuple[type[SQLModel], ...] = (
    Device, Request, Bid, BidDevice, Report, LedgerEntry, Oracle, Challenge,
)  # fmt: skip
ORACLE_DATA_TABLES: tuple[type[SQLModel], ...] = (
    DeviceResult, EventInterval, Reading, DeviceCheck,
)  # fmt: skip
ALL_TABLES: tuple[type[SQLModel], ...] = (
    IndexerCursor, IndexedBlock, ChainEvent, AccountStake,
    *PROJECTION_TABLES, *ORACLE_DATA_TABLES,
)  # fmt: skip
"""Every explorer table (prefixed `explorer_`, so it can share a database with others)."""
