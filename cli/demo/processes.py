"""Child processes of ours (`gridflex oracle serve`, `gridflex node run`, `gridflex explorer`)
started by the demo and the tests: each in its own process group with its output in a log
file, waited for until it answers over HTTP, and stopped so that nothing outlives us
(SIGTERM to the group, SIGKILL after a grace period, always reaped; an atexit hook covers an
interpreter that exits without stopping them)."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx

from gridflex.errors import GridFlexError


class ChildFailedError(GridFlexError):
    """A child exited early or never answered."""


def gridflex_command(*args: str) -> list[str]:
    """`gridflex <args>` with this interpreter (works without the console script on PATH)."""
    return [sys.executable, "-m", "cli.main", *args]


@dataclass
class ChildProcess:
    """One started child; `stop()` is idempotent."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    url: str | None = None
    _atexit: Callable[[], None] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signum)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM to the whole group, SIGKILL if it has not exited within `timeout`."""
        if self._atexit is not None:
            atexit.unregister(self._atexit)
            self._atexit = None
        if self.alive:
            self._signal_group(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.process.wait(timeout=timeout)
        # Grandchildren (if any) go with the group even when the leader exited first.
        self._signal_group(signal.SIGKILL)

    def kill(self) -> None:
        """SIGKILL: no shutdown hook, no flush, no goodbye (a crash or an OOM kill)."""
        if self.alive:
            self._signal_group(signal.SIGKILL)
        self.process.wait(timeout=10)

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
        """Polls `condition` until true; fails with the child's log tail if it exits first
        or `timeout` passes (then the child is stopped)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive:
                raise ChildFailedError(
                    f"{self.name} exited with {self.process.returncode}:\n{self.log()[-4000:]}"
                )
            if condition():
                return
            time.sleep(0.1)
        self.stop()
        raise ChildFailedError(
            f"{self.name}: no {what} within {timeout:.0f}s:\n{self.log()[-4000:]}"
        )

    def wait_http(self, path: str = "/health", timeout: float = 30.0) -> None:
        """Until `GET url+path` answers (any status)."""
        assert self.url is not None, f"{self.name} has no URL"
        url = self.url + path

        def answers() -> bool:
            try:
                httpx.get(url, timeout=1.0)
                return True
            except httpx.HTTPError:
                return False

        self.wait_for(answers, f"answer at {path}", timeout)


Child = TypeVar("Child", bound=ChildProcess)


def spawn(
    name: str,
    argv: Sequence[str],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    url: str | None = None,
    inherit_gridflex_env: bool = False,
    child_class: type[Child] = ChildProcess,  # type: ignore[assignment]
) -> Child:
    """Start `argv` in a new session with stdout+stderr appended to `log_path`.

    Unless `inherit_gridflex_env`, the parent's `GRIDFLEX_*` and `DATABASE_URL` variables
    are dropped so a child is configured by `env` alone, not by whatever the caller has set.
    """
    full_env = dict(os.environ)
    if not inherit_gridflex_env:
        full_env = {k: v for k, v in full_env.items() if not k.startswith("GRIDFLEX")}
        full_env.pop("DATABASE_URL", None)
    full_env |= dict(env or {})
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    child = child_class(name, process, log_path, url)
    child._atexit = child.stop
    atexit.register(child._atexit)
    return child


# ─── The explorer ─────────────────────────────────────────────────────────────────────


def spawn_explorer(
    *,
    rpc_url: str,
    deployments_dir: Path,
    data_dir: Path,
    oracles: Sequence[str],
    port: int,
    poll_seconds: float | None = None,
) -> ChildProcess:
    """`gridflex explorer` on 127.0.0.1:`port` (log in `<data_dir>/explorer.log`)."""
    argv = gridflex_command(
        "explorer", "--rpc-url", rpc_url, "--deployments-dir", str(deployments_dir),
        "--data-dir", str(data_dir), "--port", str(port),
        *(["--poll-seconds", str(poll_seconds)] if poll_seconds else []),
        *(arg for url in oracles for arg in ("--oracle", url)),
    )  # fmt: skip
    return spawn(
        "explorer", argv, log_path=data_dir / "explorer.log", cwd=data_dir,
        url=f"http://127.0.0.1:{port}",
    )  # fmt: skip


def explorer_at_head(url: str) -> bool:
    """The explorer's `/health` shows its index at the chain head (`indexed_block` is null
    before its first pass)."""
    try:
        health = httpx.get(url + "/health", timeout=2).json()
    except (httpx.HTTPError, ValueError):
        return False
    indexed = health.get("indexed_block")
    return indexed is not None and indexed >= health.get("chain_head", 0)
