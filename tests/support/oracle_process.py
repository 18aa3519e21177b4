"""A real oracle process for tests: `gridflex oracle serve` as a child on a free port (or a
given one, to restart an oracle where its nodes expect it), stopped cleanly or SIGKILLed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from gridflex.chain.anvil import free_port
from support.processes import terminate


@dataclass
class OracleServer:
    """`gridflex oracle serve` as a child process."""

    url: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit within 10 s; always reaped."""
        terminate(self.process)

    def kill(self) -> None:
        """SIGKILL: no shutdown hook, no flush, no goodbye (a crash or an OOM kill)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_oracle(
    workdir: Path, env: dict[str, str], timeout: float = 30.0, *, port: int | None = None
) -> OracleServer:
    """Start an oracle with `GRIDFLEX_ORACLE_*` settings in `env`; wait until it serves.

    `port` None picks a free one. The log is appended to, so a restart on the same port
    keeps the earlier run's lines."""
    port = free_port() if port is None else port
    log_path = workdir / f"oracle-{port}.log"
    full_env = {key: value for key, value in os.environ.items() if "GRIDFLEX" not in key}
    full_env.pop("DATABASE_URL", None)
    full_env |= env | {"GRIDFLEX_LOG_LEVEL": "INFO"}
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "gridflex.cli.main", "oracle", "serve", "--port", str(port)],
            cwd=workdir,
            env=full_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = OracleServer(f"http://127.0.0.1:{port}", port, process, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"oracle exited with {process.returncode}:\n{server.log()}")
        try:
            httpx.get(server.url + "/metrics", timeout=1.0)
            return server
        except httpx.HTTPError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"oracle did not answer within {timeout}s:\n{server.log()}")
