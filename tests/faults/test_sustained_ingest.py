"""Sustained ingest (deep: minutes): `scripts/bench.py load` drives a real oracle over
loopback at 5,000 readings/s for a minute, on SQLite and on PostgreSQL, and proves in the
database afterwards that no acknowledged reading was lost. The figures (rate, latency
percentiles) belong in BENCHMARKS.md, not in assertions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.postgres import POSTGRES_ADMIN_URL, postgres_available

pytestmark = pytest.mark.deep

BENCH = Path(__file__).resolve().parents[2] / "scripts" / "bench.py"
LOAD_SECONDS = 60


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_minute_at_5000_readings_per_second_loses_no_acknowledged_reading(
    database: str,
) -> None:
    command = [sys.executable, str(BENCH), "load", "--duration", str(LOAD_SECONDS), "--json"]
    if database == "postgresql":
        reason = postgres_available()
        if reason is not None:
            pytest.skip(reason)
        command += ["--database-url", POSTGRES_ADMIN_URL]
    env = {key: value for key, value in os.environ.items() if not key.startswith("GRIDFLEX")}
    run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr[-4000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["acked_readings"] > 0
    assert result["acked_units_missing"] == 0
    assert result["lost_acked_readings"] == 0
    assert result["readings_rows"] >= result["acked_readings"]
