"""`gridflex node run` as a device owner runs it: `--once` ticks once against anvil and
prints the status; without an oracle it says so in one line; with `--metrics-port` the
running loop serves its Prometheus metrics."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from e2e_support import RegisteredNode, node_cli
from prometheus_client.parser import text_string_to_metric_families
from support.chain import wait_for
from typer.testing import CliRunner

from cli.main import app
from gridflex.chain.anvil import AnvilProcess, free_port, increase_time

pytestmark = pytest.mark.integration
GRIDFLEX = [sys.executable, "-m", "cli.main"]


def test_node_run_once_prints_devices_and_commitments(
    registered_node: RegisteredNode, anvil: AnvilProcess
) -> None:
    output = node_cli("run", "--once", "--rpc-url", anvil.url, "--oracle", "http://127.0.0.1:9")
    assert registered_node.state.owner in output
    for device in registered_node.state.devices:
        assert str(device.device_id) in output
        assert device.kind.name in output
    assert "no current commitments" in output
    # A second run resumes from the node database (no error, same devices).
    again = node_cli("run", "--once", "--rpc-url", anvil.url, "--oracle", "http://127.0.0.1:9")
    assert registered_node.state.owner in again
    assert (registered_node.data_dir / "outbox.sqlite").is_file()


def test_node_run_without_an_oracle_fails_readably(
    registered_node: RegisteredNode, anvil: AnvilProcess
) -> None:
    result = CliRunner().invoke(app, ["node", "run", "--once", "--rpc-url", anvil.url])
    assert result.exit_code == 1
    assert "no oracle: pass --oracle URL" in result.output


def test_node_run_serves_prometheus_metrics_while_it_runs(
    registered_node: RegisteredNode, anvil: AnvilProcess, tmp_path: Path
) -> None:
    """The live loop as a process: its metrics show the signed units piling up for an
    oracle that does not answer, and the failed posts."""
    # Intervals complete after the registration (the node signs none before it).
    increase_time(registered_node.protocol.client.w3, 2 * 3600)
    port = free_port()
    unreachable_oracle = f"http://127.0.0.1:{free_port()}"
    command = [
        *GRIDFLEX, "node", "run", "--rpc-url", anvil.url, "--oracle", unreachable_oracle,
        "--poll-seconds", "0.5", "--metrics-port", str(port),
    ]  # fmt: skip
    log_path = tmp_path / "node-run.log"
    with log_path.open("wb") as log:
        node = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:

        def scraped() -> dict[str, float]:
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            except httpx.HTTPError:
                return {}
            return {
                sample.name + str(sorted(sample.labels.items())): sample.value
                for family in text_string_to_metric_families(text)
                for sample in family.samples
            }

        pending_key = f"gridflex_node_pending_units[('oracle', '{unreachable_oracle}')]"

        def failing_and_pending() -> bool:
            metrics = scraped()
            return (
                metrics.get("gridflex_node_send_failures_total[]", 0) >= 1
                and metrics.get(pending_key, 0) >= 1
            )

        wait_for(failing_and_pending, "metrics of a node whose oracle is down", timeout=60)
        metrics = scraped()
        assert metrics["gridflex_node_units_signed_total[]"] == metrics[pending_key]
        assert metrics["gridflex_node_units_acked_total[]"] == 0
        assert node.poll() is None, log_path.read_text()
    finally:
        node.terminate()
        node.wait(timeout=15)
