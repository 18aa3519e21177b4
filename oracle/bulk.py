"""Bulk statements for the ingest hot path, in each driver's fast form.

The same statements as SQLAlchemy expressions cost more per unit than the signature checks
(an expression per row, and on PostgreSQL a query text of thousands of placeholders that
psycopg re-parses every time). Here PostgreSQL takes each column as one array (`unnest`),
SQLite takes rows (`VALUES`, a few thousand parameters per statement). Values go through
the columns' own SQLAlchemy bind processors, so what is stored is what the ORM would store.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.types import TypeEngine

SQLITE_MAX_PARAMETERS = 32_766
"""SQLITE_MAX_VARIABLE_NUMBER since SQLite 3.32."""


def _postgresql(connection: Any) -> bool:
    return connection.dialect.name == "postgresql"


def _processed(
    connection: Any, types: Sequence[TypeEngine[Any]], rows: Sequence[Sequence[Any]]
) -> list[Sequence[Any]]:
    processors = [column_type.bind_processor(connection.dialect) for column_type in types]
    if not any(processors):
        return list(rows)
    columns = [
        _apply(processor, column) if processor is not None else column
        for processor, column in zip(processors, zip(*rows, strict=True), strict=True)
    ]
    return list(zip(*columns, strict=True))


def _apply(processor: Any, column: tuple[Any, ...]) -> tuple[Any, ...]:
    first = column[0]
    if all(value is first for value in column):  # one timestamp for a whole batch
        return (processor(first),) * len(column)
    return tuple(map(processor, column))


def _chunks(rows: Sequence[Any], width: int) -> list[Sequence[Any]]:
    size = max(1, SQLITE_MAX_PARAMETERS // width)
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def _source(
    connection: Any, types: Sequence[TypeEngine[Any]], rows: Sequence[Sequence[Any]]
) -> tuple[str, tuple[Any, ...]]:
    """A row source (`SELECT ...` or `VALUES ...`) of `rows` and its parameters."""
    if _postgresql(connection):
        arrays = ", ".join(f"%s::{t.compile(dialect=connection.dialect)}[]" for t in types)
        columns = tuple(list(column) for column in zip(*rows, strict=True))
        return f"SELECT * FROM unnest({arrays})", columns
    marks = "(" + ", ".join("?" * len(types)) + ")"
    return "VALUES " + ", ".join([marks] * len(rows)), tuple(v for row in rows for v in row)


def select_with_rows(
    connection: Any,
    name: str,
    columns: Sequence[tuple[str, TypeEngine[Any]]],
    rows: Sequence[Sequence[Any]],
    query: str,
) -> list[Any]:
    """`query` with `rows` as the table `name` (columns: name and type) in front of it:
    `WITH name (columns) AS (rows) query`, in as few statements as the driver allows."""
    if not rows:
        return []
    types = [column_type for _, column_type in columns]
    names = ", ".join(column for column, _ in columns)
    rows = _processed(connection, types, rows)
    chunks = [rows] if _postgresql(connection) else _chunks(rows, len(columns))
    found: list[Any] = []
    for chunk in chunks:
        source, parameters = _source(connection, types, chunk)
        found += connection.exec_driver_sql(
            f"WITH {name} ({names}) AS ({source}) {query}", parameters
        ).all()
    return found


def insert_rows(
    connection: Any,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    returning: Sequence[str] = (),
) -> list[Any]:
    """Insert `rows` (values in `columns` order) into `table`; the `returning` columns of
    the inserted rows, in no particular order (match them by a unique column)."""
    if not rows:
        return []
    types = [table.c[column].type for column in columns]
    rows = _processed(connection, types, rows)
    target = f"INSERT INTO {table.name} ({', '.join(columns)}) "
    suffix = f" RETURNING {', '.join(returning)}" if returning else ""
    chunks = [rows] if _postgresql(connection) else _chunks(rows, len(columns))
    inserted: list[Any] = []
    for chunk in chunks:
        source, parameters = _source(connection, types, chunk)
        result = connection.exec_driver_sql(target + source + suffix, parameters)
        if returning:
            inserted += result.all()
    return inserted
