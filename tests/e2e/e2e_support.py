"""Helpers for the end-to-end tests: the `gridflex node` CLI as a device owner runs it, what
the simulated devices say each interval should hold, and reads of the node's outbox and the
oracle's database straight from their SQLite files (the way an auditor would check them)."""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from gridflex.attestation import MeterUnit, unit_digest
from gridflex.chain.protocol import Protocol
from gridflex.cli.main import app
from node.devices.simulated import simulated_device
from node.state import DeviceRecord, NodeState

PASSWORD = "end-to-end node password"
FAST_SCRYPT_N = 2**10
FLEX = 10**18
DAY = 86_400
INTERVAL = 900
INTERVALS_PER_DAY = DAY // INTERVAL


@dataclass
class RegisteredNode:
    """A node after `gridflex node init` and `gridflex node register`."""

    data_dir: Path
    state: NodeState
    protocol: Protocol
    domain: bytes

    @property
    def outbox_path(self) -> Path:
        return self.data_dir / "outbox.sqlite"


def node_cli(*args: str) -> str:
    """`gridflex node <args>` in-process; fails the test with the output on a non-zero exit."""
    result = CliRunner().invoke(app, ["node", *args])
    assert result.exit_code == 0, result.output
    return result.output


def last_midnight() -> int:
    """The most recent UTC midnight: history ending there is entirely in the past."""
    now = int(time.time())
    return now - now % DAY


def expected_energy_wh(device: DeviceRecord, start: int, end: int) -> dict[int, int]:
    """{interval start: Wh} as the device's simulated adapter reads it (a pure function of
    its seed and the time, so a fresh adapter recomputes exactly what the node signed)."""
    adapter = simulated_device(device.kind, device.capacity_w, device.seed)
    return {
        interval_start: adapter.read_interval_energy_wh(interval_start, INTERVAL)
        for interval_start in range(start, end, INTERVAL)
    }


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
