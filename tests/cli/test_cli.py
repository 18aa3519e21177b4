"""The `gridflex` command as a user runs it: deploy to a running chain, `chain up`, and
readable failures (the demo's own run is in tests/e2e/test_demo.py)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from gridflex.chain.anvil import AnvilProcess, free_port
from gridflex.config import get_settings

pytestmark = pytest.mark.integration
GRIDFLEX = [sys.executable, "-m", "cli.main"]


@pytest.fixture
def deployments_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GRIDFLEX_DEPLOYMENTS_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_deploy_writes_deployment_record_usable_by_cast(
    anvil: AnvilProcess, deployments_dir: Path
) -> None:
    result = CliRunner().invoke(app, ["deploy", "--rpc-url", anvil.url])
    assert result.exit_code == 0, result.output
    record = json.loads((deployments_dir / "31337.json").read_text())
    assert set(record["contracts"]) == {
        "FlexToken", "DeviceRegistry", "Staking", "OracleCommittee", "FlexMarket",
        "DisputeResolver", "DeliveryDispute", "PoolRegistry",
    }  # fmt: skip
    assert record["contracts"]["FlexMarket"]["address"] in result.output
    assert any(e.get("name") == "createRequest" for e in record["contracts"]["FlexMarket"]["abi"])


def test_deploy_to_unreachable_rpc_says_so_and_exits_nonzero(deployments_dir: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(app, ["deploy", "--rpc-url", url])
    assert result.exit_code == 1
    assert f"no chain answers at {url}" in result.output
    assert not list(deployments_dir.iterdir())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--oracles", "3", "--threshold", "1"], "--threshold 1 must be a majority of --oracles 3"),
        (["--oracles", "2", "--threshold", "3"], "--threshold 3 must be a majority of --oracles 2"),
        (["--scenario", "fraud", "--oracles", "5", "--threshold", "3"], "own 2-of-3 committee"),
    ],
)
def test_demo_refuses_a_bad_committee_before_starting_anything(
    args: list[str], message: str
) -> None:
    """(The demo itself runs in tests/e2e/test_demo.py.)"""
    completed = subprocess.run(
        [*GRIDFLEX, "demo", "--json", *args], capture_output=True, text=True, timeout=60,
        check=False, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert completed.returncode == 2
    assert message in completed.stderr
    assert completed.stdout == ""


def test_unknown_command_is_a_readable_usage_error() -> None:
    completed = subprocess.run(
        [*GRIDFLEX, "deploi"], capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "COLUMNS": "120"},
    )  # fmt: skip
    assert completed.returncode == 2
    assert "No such command" in completed.stderr


def test_chain_up_deploys_then_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "GRIDFLEX_DEPLOYMENTS_DIR": str(tmp_path)}
    process = subprocess.Popen(
        [*GRIDFLEX, "chain", "up", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    try:
        record = tmp_path / "31337.json"
        deadline = time.monotonic() + 120
        while not record.exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
        assert record.exists(), "chain up did not write a deployment record"
        assert json.loads(record.read_text())["rpcUrl"] == f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    with pytest.raises(ConnectionRefusedError):  # anvil is gone: nothing listens any more
        socket.create_connection(("127.0.0.1", port), timeout=2)
