"""`gridflex explorer` as a child process for tests: ready once `/health` shows the index
at the chain head, as `make demo` waits for it; stopped with SIGTERM."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cli.demo.processes import ChildProcess, explorer_at_head, spawn_explorer
from gridflex.chain.anvil import free_port

ExplorerServer = ChildProcess


@contextmanager
def explorer_process(
    rpc_url: str, deployments_dir: Path, data_dir: Path, oracles: list[str], timeout: float = 60
) -> Iterator[ExplorerServer]:
    """`gridflex explorer` as a child; ready once `/health` shows the index at the head."""
    data_dir.mkdir(parents=True, exist_ok=True)
    server = spawn_explorer(
        rpc_url=rpc_url, deployments_dir=deployments_dir, data_dir=data_dir, oracles=oracles,
        port=free_port(), poll_seconds=0.5,
    )  # fmt: skip
    try:
        assert server.url is not None
        server.wait_for(lambda: explorer_at_head(server.url or ""), "index at the head", timeout)
        yield server
    finally:
        server.stop(timeout=15)
