"""Reads of the node's outbox and the oracle's database straight from their SQLite files
(the way an auditor would check them): what is still pending, what is stored, how often."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from gridflex.rules.attestation import MeterUnit, unit_digest

# ─── The node's outbox file ────────────────────────────────────────────────────────────


def outbox_units(outbox_path: Path) -> dict[int, MeterUnit]:
    """Units still in the outbox (signed, not yet finished by every oracle), by row id."""
    with closing(sqlite3.connect(outbox_path)) as db:
        rows = db.execute("SELECT id, payload FROM units ORDER BY id").fetchall()
    return {unit_id: MeterUnit.from_json(json.loads(payload)) for unit_id, payload in rows}


def outbox_dead_letters(outbox_path: Path) -> int:
    with closing(sqlite3.connect(outbox_path)) as db:
        return int(db.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0])


def digests(units: dict[int, MeterUnit], domain: bytes) -> dict[int, bytes]:
    return {unit_id: unit_digest(unit, domain) for unit_id, unit in units.items()}


# ─── The oracle's database file ────────────────────────────────────────────────────────


@dataclass(frozen=True)
class OracleStore:
    """What an oracle's SQLite file holds, read with plain SQL."""

    readings: dict[tuple[int, int], tuple[int, int]]
    """(device id, interval start) -> (Wh, unit row id); the table's primary key."""
    readings_rows: int
    units: dict[bytes, tuple[int, int]]
    """unit digest -> (device id, sequence)."""
    units_rows: int
    conflicts_rows: int

    @classmethod
    def read(cls, database_path: Path) -> OracleStore:
        with closing(sqlite3.connect(database_path)) as db:
            readings = db.execute(
                "SELECT device_id, interval_start, energy_wh, unit_id FROM readings"
            ).fetchall()
            units = db.execute("SELECT digest, device_id, sequence FROM meter_units").fetchall()
            conflicts = db.execute("SELECT COUNT(*) FROM conflict_evidence").fetchone()[0]
        return cls(
            readings={(device, start): (energy, unit) for device, start, energy, unit in readings},
            readings_rows=len(readings),
            units={bytes(digest): (device, sequence) for digest, device, sequence in units},
            units_rows=len(units),
            conflicts_rows=int(conflicts),
        )

    def energy_of(self, device_id: int) -> dict[int, int]:
        """{interval start: Wh} stored for one device."""
        return {
            start: energy
            for (device, start), (energy, _unit) in self.readings.items()
            if device == device_id
        }

    def distinct_unit_sequences(self) -> int:
        return len(set(self.units.values()))
