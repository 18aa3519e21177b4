"""Database engine for the explorer: SQLite (WAL, so pages read while the indexer writes)
by default, PostgreSQL via `DATABASE_URL`; the same sqlmodel code for both."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlmodel import SQLModel

from explorer.models import ALL_TABLES


def create_explorer_engine(url: str) -> Engine:
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=8)
    path = url.removeprefix("sqlite:///")
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    return engine


def init_db(engine: Engine) -> None:
    """Create the explorer's missing tables (idempotent), and only those: other packages'
    tables may share `SQLModel.metadata` in the same process."""
    SQLModel.metadata.create_all(engine, tables=[t.__table__ for t in ALL_TABLES])  # type: ignore[attr-defined]
