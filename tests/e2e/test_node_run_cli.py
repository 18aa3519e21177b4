"""`gridflex node run` as a device owner runs it: `--once` ticks once against anvil and
prints the status; without an oracle it says so in one line."""

from __future__ import annotations

import pytest
from e2e_support import RegisteredNode, node_cli
from typer.testing import CliRunner

from gridflex.chain.anvil import AnvilProcess
from gridflex.cli.main import app

pytestmark = pytest.mark.integration


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
