"""`gridflex explorer` as the demo runs it: a child process that catches up with the chain
(`/health`), serves the pages, and exits 0 on SIGTERM; a chain that does not answer stops
it at once with exit code 2 and the fix."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from explorer_market import IndexedMarket
from support.explorer_process import explorer_process

from gridflex.chain.anvil import AnvilProcess, free_port
from gridflex.chain.deployments import save_deployment

pytestmark = pytest.mark.integration


def test_serves_after_catching_up_and_exits_cleanly_on_sigterm(
    indexed_market: IndexedMarket, anvil: AnvilProcess, tmp_path: Path
) -> None:
    deployments = tmp_path / "deployments"
    save_deployment(indexed_market.market.governance.deployment, deployments)
    with explorer_process(anvil.url, deployments, tmp_path / "data", []) as server:
        health = httpx.get(server.url + "/health", timeout=5).json()
        assert health["indexed_block"] >= health["chain_head"]
        request_id = indexed_market.market.request_ids[0]
        assert httpx.get(f"{server.url}/requests/{request_id}", timeout=5).status_code == 200
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=15) == 0
    assert (tmp_path / "data" / "explorer.db").is_file()


def test_unreachable_chain_stops_with_the_fix(tmp_path: Path) -> None:
    dead_rpc = f"http://127.0.0.1:{free_port()}"
    finished = subprocess.run(
        [sys.executable, "-m", "cli.main", "explorer", "--rpc-url", dead_rpc,
         "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert finished.returncode == 2
    assert "does not answer" in finished.stderr and "--rpc-url" in finished.stderr
