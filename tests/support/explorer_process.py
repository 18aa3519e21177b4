"""`gridflex explorer` as a child process for tests: ready once `/health` shows the index
at the chain head, as `make demo` waits for it; stopped with SIGTERM."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from gridflex.chain.anvil import free_port
from support.processes import terminate


@dataclass
class ExplorerServer:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self) -> None:
        terminate(self.process, timeout=15)


@contextmanager
def explorer_process(
    rpc_url: str, deployments_dir: Path, data_dir: Path, oracles: list[str], timeout: float = 60
) -> Iterator[ExplorerServer]:
    """`gridflex explorer` as a child; ready once `/health` shows the index at the head."""
    port = free_port()
    log_path = data_dir / "explorer.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if "GRIDFLEX" not in k and k != "DATABASE_URL"}
    command = [
        sys.executable, "-m", "gridflex.cli.main", "explorer", "--rpc-url", rpc_url,
        "--deployments-dir", str(deployments_dir), "--data-dir", str(data_dir),
        "--port", str(port), "--poll-seconds", "0.5",
    ] + [arg for url in oracles for arg in ("--oracle", url)]  # fmt: skip
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            command, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = ExplorerServer(f"http://127.0.0.1:{port}", process, log_path)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"explorer exited {process.returncode}:\n{log_path.read_text()}")
            try:
                health = httpx.get(server.url + "/health", timeout=2).json()
                if (
                    health["indexed_block"] is not None
                    and health["indexed_block"] >= health["chain_head"]
                ):
                    break
            except (httpx.HTTPError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"explorer did not catch up:\n{log_path.read_text()}")
            time.sleep(0.2)
        yield server
    finally:
        server.stop()
