"""The node's durable outbox: one SQLite file (WAL, synchronous=FULL) per node.

Every unit is signed and committed here BEFORE it is sent, and deleted only when every
configured oracle has finished with it (acknowledged it after its commit, or rejected it
permanently, which dead-letters it for that oracle with the reason). A crash at any point
loses nothing: on restart, `pending` returns what each oracle still needs, in order.

Per-device sequence numbers and the metering watermark (end of the last attested
interval) are allocated in the same transaction as the unit they belong to, so a restart
never reuses a sequence and never signs an interval twice (a second, different signed
value for the same interval would be evidence of fraud).

Tables: sequences(device_id, next_sequence, attested_until), units(id, device_id,
sequence, first_interval_start, payload JSON), deliveries(unit_id, oracle, outcome),
dead_letters(unit_id, oracle, device_id, sequence, payload, reason, at).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from gridflex.rules.attestation import MeterUnit

SCHEMA = """
CREATE TABLE IF NOT EXISTS sequences (
    device_id TEXT PRIMARY KEY,            -- uint256 as decimal text
    next_sequence INTEGER NOT NULL,
    attested_until INTEGER                 -- end (exclusive) of the last signed interval
);
CREATE TABLE IF NOT EXISTS units (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- creation order = send order
    device_id TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    first_interval_start INTEGER NOT NULL,
    interval_count INTEGER NOT NULL,
    payload TEXT NOT NULL,                 -- MeterUnit.to_json(), signed
    created_at REAL NOT NULL,
    UNIQUE (device_id, sequence)
);
CREATE TABLE IF NOT EXISTS deliveries (
    unit_id INTEGER NOT NULL REFERENCES units(id) ON DELETE CASCADE,
    oracle TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('acked', 'rejected')),
    PRIMARY KEY (unit_id, oracle)
);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    unit_id INTEGER NOT NULL,
    oracle TEXT NOT NULL,
    device_id TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    payload TEXT NOT NULL,
    reason TEXT NOT NULL,
    at REAL NOT NULL
);
"""


@dataclass(frozen=True)
class OutboxUnit:
    """A stored unit with its outbox row id (the handle for ack/reject)."""

    unit_id: int
    unit: MeterUnit


@dataclass(frozen=True)
class DeadLetter:
    unit_id: int
    oracle: str
    unit: MeterUnit
    reason: str


class Outbox:
    """Durable store of signed units for a fixed set of oracles (`oracles`)."""

    def __init__(self, path: Path, oracles: Sequence[str]) -> None:
        if not oracles:
            raise ValueError("the outbox needs at least one oracle URL")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.oracles = tuple(dict.fromkeys(oracles))
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(SCHEMA)
        # Oracles dropped from the config no longer hold units back.
        self._delete_finished()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ─── Writing signed units ─────────────────────────────────────────────────────────

    def attested_until(self, device_id: int) -> int | None:
        """End (exclusive, unix s) of the last interval signed for `device_id`."""
        row = self._db.execute(
            "SELECT attested_until FROM sequences WHERE device_id = ?", (str(device_id),)
        ).fetchone()
        return None if row is None else row[0]

    def next_sequence(self, device_id: int) -> int:
        row = self._db.execute(
            "SELECT next_sequence FROM sequences WHERE device_id = ?", (str(device_id),)
        ).fetchone()
        return 0 if row is None else int(row[0])

    def append(
        self,
        device_id: int,
        first_interval_start: int,
        interval_seconds: int,
        energy_wh: Sequence[int],
        sign: Callable[[MeterUnit], MeterUnit],
    ) -> OutboxUnit:
        """Allocate the device's next sequence, sign the unit and store it, atomically.

        Refuses intervals before the device's watermark: they are already signed.
        """
        key = str(device_id)
        with self._transaction():
            row = self._db.execute(
                "SELECT next_sequence, attested_until FROM sequences WHERE device_id = ?", (key,)
            ).fetchone()
            sequence, attested_until = (0, None) if row is None else row
            if attested_until is not None and first_interval_start < attested_until:
                raise ValueError(
                    f"device {device_id}: intervals before {attested_until} are already signed"
                )
            unit = sign(
                MeterUnit(
                    device_id, first_interval_start, interval_seconds, sequence, tuple(energy_wh)
                )
            )
            cursor = self._db.execute(
                "INSERT INTO units (device_id, sequence, first_interval_start, interval_count,"
                " payload, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (key, sequence, first_interval_start, len(energy_wh),
                 json.dumps(unit.to_json()), time.time()),
            )  # fmt: skip
            self._db.execute(
                "INSERT INTO sequences (device_id, next_sequence, attested_until) VALUES (?, ?, ?)"
                " ON CONFLICT (device_id) DO UPDATE SET next_sequence = excluded.next_sequence,"
                " attested_until = excluded.attested_until",
                (key, sequence + 1, unit.end),
            )
        assert cursor.lastrowid is not None
        return OutboxUnit(cursor.lastrowid, unit)

    # ─── Reading and finishing units ──────────────────────────────────────────────────

    def pending(self, oracle: str, limit: int) -> list[OutboxUnit]:
        """Units `oracle` has neither acknowledged nor rejected, oldest first."""
        rows = self._db.execute(
            "SELECT id, payload FROM units WHERE NOT EXISTS ("
            " SELECT 1 FROM deliveries d WHERE d.unit_id = units.id AND d.oracle = ?)"
            " ORDER BY id LIMIT ?",
            (oracle, limit),
        ).fetchall()
        return [OutboxUnit(row[0], MeterUnit.from_json(json.loads(row[1]))) for row in rows]

    def pending_count(self, oracle: str) -> int:
        (count,) = self._db.execute(
            "SELECT COUNT(*) FROM units WHERE NOT EXISTS ("
            " SELECT 1 FROM deliveries d WHERE d.unit_id = units.id AND d.oracle = ?)",
            (oracle,),
        ).fetchone()
        return int(count)

    def stored_count(self) -> int:
        (count,) = self._db.execute("SELECT COUNT(*) FROM units").fetchone()
        return int(count)

    def ack(self, oracle: str, unit_ids: Iterable[int]) -> None:
        """`oracle` committed these units; delete those every oracle is done with."""
        with self._transaction():
            self._db.executemany(
                "INSERT OR IGNORE INTO deliveries (unit_id, oracle, outcome)"
                " VALUES (?, ?, 'acked')",
                [(unit_id, oracle) for unit_id in unit_ids],
            )
            self._delete_finished()

    def reject(self, oracle: str, unit_id: int, reason: str) -> None:
        """`oracle` refused the unit for good: dead-letter it for that oracle, never resend."""
        with self._transaction():
            row = self._db.execute(
                "SELECT device_id, sequence, payload FROM units WHERE id = ?", (unit_id,)
            ).fetchone()
            if row is None:
                return
            self._db.execute(
                "INSERT INTO dead_letters (unit_id, oracle, device_id, sequence, payload, reason,"
                " at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (unit_id, oracle, row[0], row[1], row[2], reason, time.time()),
            )
            self._db.execute(
                "INSERT OR IGNORE INTO deliveries (unit_id, oracle, outcome)"
                " VALUES (?, ?, 'rejected')",
                (unit_id, oracle),
            )
            self._delete_finished()

    def dead_letters(self) -> list[DeadLetter]:
        rows = self._db.execute(
            "SELECT unit_id, oracle, payload, reason FROM dead_letters ORDER BY id"
        ).fetchall()
        return [
            DeadLetter(row[0], row[1], MeterUnit.from_json(json.loads(row[2])), row[3])
            for row in rows
        ]

    # ─── Internals ────────────────────────────────────────────────────────────────────

    def _delete_finished(self) -> None:
        placeholders = ",".join("?" * len(self.oracles))
        self._db.execute(
            "DELETE FROM units WHERE id IN (SELECT unit_id FROM deliveries"
            f" WHERE oracle IN ({placeholders}) GROUP BY unit_id HAVING COUNT(*) = ?)",
            (*self.oracles, len(self.oracles)),
        )

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error): one writer, all or nothing."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
