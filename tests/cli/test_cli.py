"""The `gridflex` command as a user runs it: deploy to a running chain, the demo end to
end, and readable failures."""

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

from gridflex.chain.anvil import AnvilProcess, free_port
from gridflex.cli.main import app
from gridflex.config import get_settings

pytestmark = pytest.mark.integration
GRIDFLEX = [sys.executable, "-m", "gridflex.cli.main"]


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
        "DisputeResolver",
    }  # fmt: skip
    assert record["contracts"]["FlexMarket"]["address"] in result.output
    assert any(e.get("name") == "createRequest" for e in record["contracts"]["FlexMarket"]["abi"])


def test_deploy_to_unreachable_rpc_says_so_and_exits_nonzero(deployments_dir: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(app, ["deploy", "--rpc-url", url])
    assert result.exit_code == 1
    assert f"no chain answers at {url}" in result.output
    assert not list(deployments_dir.iterdir())


def test_demo_json_settles_one_event_and_conserves_escrow() -> None:
    completed = subprocess.run(
        [*GRIDFLEX, "demo", "--json"], capture_output=True, text=True, timeout=300, check=False
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    (request,) = json.loads(completed.stdout)["requests"]
    assert request["awarded_w"] == 50_000
    assert request["delivered_wh"] == 45_000
    assert request["payouts"] > 0 and request["fees"] > 0
    assert request["payouts"] + request["fees"] + request["refund"] == request["escrow"]


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
