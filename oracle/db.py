"""Database engines: one sqlmodel code path for SQLite (default) and PostgreSQL.

SQLite runs in WAL mode so the read API never blocks ingest, with `synchronous=FULL`: the
oracle acknowledges a batch only after commit and the node then deletes its copy, so a
commit must survive a power loss, not just a process crash (NORMAL in WAL mode may lose
the last commits on power loss). The cost is one WAL fsync per batch (up to 48,000
readings), which is why batches exist. Write transactions start with `BEGIN IMMEDIATE` so
a second process on the same file waits on `busy_timeout` instead of failing mid-batch.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.schema import CreateTable
from sqlmodel import SQLModel

from oracle import models  # also registers the tables on SQLModel.metadata
from oracle.config import OracleSettings

WRITER_BEGIN_OPTION = "sqlite_begin"
LEGACY_SEQUENCE_CONSTRAINT = "uq_meter_units_sequence"
"""UNIQUE (device_id, sequence) of stores created before a sequence could be reused."""


def create_oracle_engine(settings: OracleSettings) -> Engine:
    """An engine for the configured database, SQLite pragmas applied on every connection."""
    url = settings.resolved_database_url
    if not settings.is_sqlite:
        return create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=8)

    database_path = url.removeprefix("sqlite:///")
    if database_path and database_path != ":memory:":
        Path(database_path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={
            "check_same_thread": False,
            "timeout": settings.sqlite_busy_timeout_ms / 1000,
        },
    )
    busy_timeout_ms = settings.sqlite_busy_timeout_ms

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        # Let SQLAlchemy's "begin" hook below emit BEGIN itself (pysqlite's own is deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql(
            connection.get_execution_options().get(WRITER_BEGIN_OPTION, "BEGIN")
        )

    return engine


def writer_engine(engine: Engine) -> Engine:
    """The same pool, with write transactions that take the SQLite write lock up front."""
    if engine.dialect.name != "sqlite":
        return engine
    return engine.execution_options(**{WRITER_BEGIN_OPTION: "BEGIN IMMEDIATE"})


def init_db(engine: Engine) -> None:
    """Create missing tables and migrate older stores (idempotent)."""
    SQLModel.metadata.create_all(engine)
    _drop_sequence_uniqueness(engine)


def _drop_sequence_uniqueness(engine: Engine) -> None:
    """Lift UNIQUE (device_id, sequence) from a store created with it: it would refuse a
    reused sequence (oracle.ingest) with an IntegrityError on every retry. Rows and ids are
    kept; SQLite cannot drop a constraint, so its table is rebuilt."""
    constraints = inspect(engine).get_unique_constraints(models.MeterUnitRecord.__tablename__)
    if not any(c["name"] == LEGACY_SEQUENCE_CONSTRAINT for c in constraints):
        return
    if engine.dialect.name != "sqlite":
        with engine.begin() as connection:
            connection.exec_driver_sql(
                f"ALTER TABLE meter_units DROP CONSTRAINT {LEGACY_SEQUENCE_CONSTRAINT}"
            )
        return
    table = models.MeterUnitRecord.__table__  # type: ignore[attr-defined]
    create = str(CreateTable(table).compile(dialect=engine.dialect))
    rebuilt = create.replace("CREATE TABLE meter_units ", "CREATE TABLE meter_units_rebuilt ", 1)
    columns = ", ".join(column.name for column in table.columns)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        # SQLite's table rebuild: foreign keys off outside the transaction, checked before
        # the commit (readings and evidence keep pointing at the same ids).
        cursor.execute("PRAGMA foreign_keys=OFF")
        cursor.execute("BEGIN IMMEDIATE")
        try:
            cursor.execute(rebuilt)
            cursor.execute(
                f"INSERT INTO meter_units_rebuilt ({columns}) SELECT {columns} FROM meter_units"
            )
            cursor.execute("DROP TABLE meter_units")
            cursor.execute("ALTER TABLE meter_units_rebuilt RENAME TO meter_units")
            broken = cursor.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"meter_units rebuild broke foreign keys: {broken[:3]}")
            cursor.execute("COMMIT")
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
        finally:
            cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        raw.close()


def ping(engine: Engine) -> None:
    """Raise if the database does not answer a trivial query."""
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
