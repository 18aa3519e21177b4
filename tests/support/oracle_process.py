"""A real oracle process for tests: `gridflex oracle serve` as a child on a free port (or a
given one, to restart an oracle where its nodes expect it), stopped cleanly or SIGKILLed."""

from __future__ import annotations

from pathlib import Path

from cli.demo.processes import ChildProcess, gridflex_command, spawn
from gridflex.chain.anvil import free_port


class OracleServer(ChildProcess):
    """`gridflex oracle serve` as a child process."""

    @property
    def port(self) -> int:
        assert self.url is not None
        return int(self.url.rsplit(":", 1)[1])


def start_oracle(
    workdir: Path, env: dict[str, str], timeout: float = 30.0, *, port: int | None = None
) -> OracleServer:
    """Start an oracle with `GRIDFLEX_ORACLE_*` settings in `env`; wait until it serves.

    `port` None picks a free one. The log is appended to, so a restart on the same port
    keeps the earlier run's lines."""
    port = free_port() if port is None else port
    server = spawn(
        f"oracle on port {port}",
        gridflex_command("oracle", "serve", "--port", str(port)),
        log_path=workdir / f"oracle-{port}.log",
        env=env | {"GRIDFLEX_LOG_LEVEL": "INFO"},
        cwd=workdir,
        url=f"http://127.0.0.1:{port}",
        child_class=OracleServer,
    )
    server.wait_http("/metrics", timeout=timeout)
    return server
