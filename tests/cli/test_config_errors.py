"""A misconfigured oracle or node stops at start with exit code 2 (oracle, global
settings) or 1 (node) and one readable line per bad setting, named as the user sets it;
never a traceback, never a secret echoed back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

GRIDFLEX = [sys.executable, "-m", "cli.main"]
SECRET = "0xabc123"


@pytest.mark.parametrize(
    ("command", "setting", "value", "exit_code", "message"),
    [
        ("oracle", "GRIDFLEX_ORACLE_MAX_UNITS_PER_BATCH", "0", 2, "greater than or equal to 1"),
        ("oracle", "DATABASE_URL", "mysql://db/oracle", 2, "unsupported database URL 'mysql'"),
        ("oracle", "GRIDFLEX_ORACLE_RPC_URL", "ws://127.0.0.1:8545", 2, "http(s) JSON-RPC"),
        ("oracle", "GRIDFLEX_ORACLE_SIGNER_KEY", SECRET, 2, "32 bytes of hex"),
        ("node", "GRIDFLEX_NODE_BATCH_SIZE", "0", 1, "greater than or equal to 1"),
        ("node", "GRIDFLEX_NODE_ORACLE_URLS", "oracle-a:8600", 1, "must start with http://"),
        ("node", "GRIDFLEX_LOG_FORMAT", "xml", 2, "'console' or 'json'"),
    ],
)
def test_a_bad_setting_stops_the_command_with_one_readable_line(
    command: str, setting: str, value: str, exit_code: int, message: str, tmp_path: Path
) -> None:
    args = ["oracle", "serve", "--port", "1"] if command == "oracle" else ["node", "run"]
    env = {k: v for k, v in os.environ.items() if "GRIDFLEX" not in k and k != "DATABASE_URL"}
    run = subprocess.run(
        [*GRIDFLEX, *args],
        env=env | {setting: value},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = run.stdout + run.stderr
    assert run.returncode == exit_code, output
    assert "Traceback" not in output
    (line,) = [line for line in output.splitlines() if line.strip()]
    assert message in line
    assert setting.removeprefix("GRIDFLEX_ORACLE_") in line
    assert SECRET not in line
