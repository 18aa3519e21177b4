"""A local anvil chain (Osaka hardfork, so the P-256 precompile exists) for tests, the demo
and `gridflex chain up`, plus helpers that move chain time so a whole flexibility event
(gate closure, delivery window, dispute period) runs in seconds.

Time travel (`increase_time`, `mine`) is for local chains only: production code must not
depend on it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

import httpx
import structlog
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from gridflex.errors import AnvilError

log = structlog.get_logger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCAL_CHAIN_ID = 31337
ANVIL_HARDFORK = "osaka"

# anvil's default dev mnemonic: its accounts are public knowledge, for local chains only.
ANVIL_DEV_MNEMONIC = "test test test test test test test test test test test junk"


def anvil_dev_account(index: int = 0) -> LocalAccount:
    """Funded dev account `index` of a default anvil (0 = governance/deployer locally)."""
    Account.enable_unaudited_hdwallet_features()
    return Account.from_mnemonic(ANVIL_DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")


def find_anvil_binary(project_root: Path = REPO_ROOT) -> Path:
    """The real anvil binary: $ANVIL_BINARY, npm's platform package, .bin shim, then PATH.

    The platform binary is preferred over the node shim so stopping kills anvil itself.
    """
    candidates: list[Path] = []
    if env_binary := os.environ.get("ANVIL_BINARY"):
        candidates.append(Path(env_binary))
    npm_platform_dir = project_root / "node_modules" / "@foundry-rs"
    candidates.extend(sorted(npm_platform_dir.glob("anvil-*/bin/anvil")))
    candidates.append(project_root / "node_modules" / ".bin" / "anvil")
    if on_path := shutil.which("anvil"):
        candidates.append(Path(on_path))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise AnvilError("anvil not found: run `make install` (npm ci installs @foundry-rs/anvil)")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class AnvilProcess:
    """Runs anvil as a child process; use as a context manager or call start()/stop().

    anvil gets its own process group and an atexit hook, so it never outlives us.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        chain_id: int = LOCAL_CHAIN_ID,
        block_time: float | None = None,
        enforce_tx_gas_cap: bool = True,
        startup_timeout: float = 20.0,
        extra_args: list[str] | None = None,
        binary: Path | None = None,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.chain_id = chain_id
        self.block_time = block_time
        self.enforce_tx_gas_cap = enforce_tx_gas_cap
        self.startup_timeout = startup_timeout
        self.extra_args = extra_args or []
        self.binary = binary
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """HTTP JSON-RPC endpoint of this anvil."""
        return f"http://{self.host}:{self.port}"

    @property
    def command(self) -> list[str]:
        binary = self.binary or find_anvil_binary()
        args = [
            str(binary),
            "--hardfork", ANVIL_HARDFORK,
            "--host", self.host,
            "--port", str(self.port),
            "--chain-id", str(self.chain_id),
            "--quiet",
        ]  # fmt: skip
        if self.block_time is not None:
            args += ["--block-time", str(self.block_time)]
        if self.enforce_tx_gas_cap:
            # EIP-7825: one tx may use at most 2**24 gas; catch violations locally.
            args.append("--enable-tx-gas-limit")
        return args + self.extra_args

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> AnvilProcess:
        """Start anvil and block until its RPC answers eth_chainId."""
        if self.is_running:
            return self
        command = self.command
        log.info("starting anvil", url=self.url, hardfork=ANVIL_HARDFORK, chain_id=self.chain_id)
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        atexit.register(self.stop)
        self._wait_until_ready()
        return self

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        request = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                stderr = self._process.stderr.read().decode() if self._process.stderr else ""
                self._process = None
                raise AnvilError(f"anvil exited during startup: {stderr.strip()}")
            try:
                response = httpx.post(self.url, json=request, timeout=1.0)
                if response.status_code == 200 and "result" in response.json():
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise AnvilError(f"anvil did not answer on {self.url} within {self.startup_timeout}s")

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate anvil (SIGTERM, then SIGKILL) and reap it; safe to call twice."""
        process, self._process = self._process, None
        if process is None:
            return
        atexit.unregister(self.stop)
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=timeout)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=timeout)
        if process.stderr:
            process.stderr.close()
        log.info("anvil stopped", url=self.url)

    def wait(self) -> int:
        """Block until anvil exits (foreground mode of `gridflex chain up`)."""
        if self._process is None:
            raise AnvilError("anvil is not running")
        return self._process.wait()

    def __enter__(self) -> AnvilProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


# --------------------------------------------------------------------------------------------
# Time travel on local chains
# --------------------------------------------------------------------------------------------


def mine(w3: Web3, blocks: int = 1) -> None:
    """Mine `blocks` empty blocks now."""
    w3.provider.make_request("anvil_mine", [hex(blocks)])


def increase_time(w3: Web3, seconds: int) -> int:
    """Advance chain time by `seconds` and mine a block; returns the new block timestamp."""
    w3.provider.make_request("evm_increaseTime", [int(seconds)])
    mine(w3)
    return int(w3.eth.get_block("latest")["timestamp"])


def set_next_block_timestamp(w3: Web3, timestamp: int) -> None:
    """Pin the timestamp of the next mined block (e.g. exactly at a gate closure)."""
    w3.provider.make_request("evm_setNextBlockTimestamp", [int(timestamp)])


def set_balance(w3: Web3, address: str, wei: int) -> None:
    """Give `address` exactly `wei` of gas money."""
    w3.provider.make_request("anvil_setBalance", [address, hex(wei)])
