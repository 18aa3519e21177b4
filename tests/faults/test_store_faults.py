"""The oracle's database fails under a streaming node: locked by another writer, the disk
full (a real ENOSPC on a 4 MiB tmpfs, where mounting is allowed), or the file size limit
reached (EFBIG from RLIMIT_FSIZE set on the running oracle: needs no privilege).

During the fault the API answers 503 with Retry-After and a reason, the node keeps the
units in its outbox and backs off; after it, the node delivers them. Nothing the oracle
acknowledged is lost, nothing is stored twice, nothing is dead-lettered."""

from __future__ import annotations

import contextlib
import errno
import resource
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from fault_support import Fleet
from support.chain import anvil_behind_wall_clock
from support.clock import DAY, last_midnight
from support.oracle_process import OracleServer, start_oracle
from support.stores import OracleStore, digests, outbox_dead_letters, outbox_units
from web3 import Web3

from gridflex.chain.anvil import AnvilProcess
from node.meter_loop import MeterLoop
from node.outbox import Outbox
from node.sender import Backoff, Sender

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def anvil() -> Iterator[AnvilProcess]:
    """This module's own anvil, its chain 4 days behind the wall clock: the fleet registers
    before the two past days the meter backfills (a reading before its device's
    registration is refused)."""
    with anvil_behind_wall_clock(4) as process:
        yield process


@pytest.fixture(scope="module")
def w3(anvil: AnvilProcess) -> Web3:
    return Web3(Web3.HTTPProvider(anvil.url))


INTERVALS_PER_DAY = 96
FAST_BACKOFF = Backoff(base_s=0.05, cap_s=0.2)


class StoreFault:
    """A way for the oracle's store to fail; `reason` is in the 503's detail."""

    reason: str

    def prepare(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)

    def begin(self, oracle: OracleServer, data_dir: Path) -> None:
        raise NotImplementedError

    def end(self) -> None:
        raise NotImplementedError

    def cleanup(self) -> None:
        pass


@dataclass
class DatabaseLocked(StoreFault):
    """Another process holds SQLite's write lock longer than the oracle's busy timeout."""

    reason: str = "locked"
    blocker: sqlite3.Connection | None = None

    def begin(self, oracle: OracleServer, data_dir: Path) -> None:
        self.blocker = sqlite3.connect(data_dir / "oracle.db", isolation_level=None)
        self.blocker.execute("BEGIN IMMEDIATE")

    def end(self) -> None:
        assert self.blocker is not None
        self.blocker.execute("ROLLBACK")
        self.blocker.close()


@dataclass
class DiskFull(StoreFault):
    """The oracle's data dir is a small tmpfs; a ballast file takes all its free space."""

    reason: str = "full"
    mount_point: Path | None = None
    ballast: Path | None = None

    def prepare(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            mounted = subprocess.run(
                ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(data_dir)],
                capture_output=True,
                text=True,
            )
        except FileNotFoundError:
            pytest.skip("cannot mount a tmpfs here: no mount command")
        if mounted.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip() or 'not root'}")
        self.mount_point = data_dir

    def begin(self, oracle: OracleServer, data_dir: Path) -> None:
        self.ballast = data_dir / "ballast"
        chunk = bytes(64 * 1024)
        with self.ballast.open("wb", buffering=0) as ballast:
            try:
                while True:
                    ballast.write(chunk)
            except OSError as error:
                assert error.errno == errno.ENOSPC
        with contextlib.suppress(OSError), self.ballast.open("ab", buffering=0) as ballast:
            while ballast.write(b"\0"):  # the last bytes of a partial chunk too
                pass

    def end(self) -> None:
        assert self.ballast is not None
        self.ballast.unlink()

    def cleanup(self) -> None:
        if self.mount_point is not None:
            subprocess.run(["umount", "--lazy", str(self.mount_point)], check=False)


@dataclass
class FileSizeLimit(StoreFault):
    """RLIMIT_FSIZE of the running oracle lowered to its WAL's size: the next frame fails
    with EFBIG (Python ignores SIGXFSZ), which SQLite reports as a disk I/O error."""

    reason: str = "disk I/O error"
    pid: int = 0
    limits: tuple[int, int] = field(default=(resource.RLIM_INFINITY, resource.RLIM_INFINITY))

    def begin(self, oracle: OracleServer, data_dir: Path) -> None:
        self.pid = oracle.process.pid
        self.limits = resource.prlimit(self.pid, resource.RLIMIT_FSIZE)
        wal_bytes = (data_dir / "oracle.db-wal").stat().st_size
        resource.prlimit(self.pid, resource.RLIMIT_FSIZE, (wal_bytes, self.limits[1]))

    def end(self) -> None:
        resource.prlimit(self.pid, resource.RLIMIT_FSIZE, self.limits)


@pytest.fixture(
    params=[DatabaseLocked, DiskFull, FileSizeLimit],
    ids=["database-locked", "disk-full-tmpfs", "file-size-limit"],
)
def store_fault(request: pytest.FixtureRequest) -> Iterator[StoreFault]:
    fault: StoreFault = request.param()
    yield fault
    fault.cleanup()


def test_store_fault_is_a_503_with_retry_after_and_the_node_delivers_everything_after_it(
    store_fault: StoreFault, fleet: Fleet, oracle_env: dict[str, str], tmp_path: Path
) -> None:
    data_dir = Path(oracle_env["GRIDFLEX_ORACLE_DATA_DIR"])
    store_fault.prepare(data_dir)
    oracle = start_oracle(tmp_path, oracle_env | {"GRIDFLEX_ORACLE_SQLITE_BUSY_TIMEOUT_MS": "300"})
    outbox_path = tmp_path / "node" / "outbox.sqlite"
    outbox_path.parent.mkdir()
    first_day = last_midnight() - 2 * DAY
    devices = len(fleet.devices)
    try:
        with Outbox(outbox_path, [oracle.url]) as outbox:
            meter = MeterLoop(outbox, fleet.devices, fleet.domain)
            sender = Sender(outbox, backoff=FAST_BACKOFF)
            # Day 1 flows normally.
            assert meter.backfill(first_day, first_day + DAY) == devices
            signed = digests(outbox_units(outbox_path), fleet.domain)
            assert sender.drain(timeout_s=30).acked == devices

            store_fault.begin(oracle, data_dir)
            assert meter.backfill(first_day + DAY, first_day + 2 * DAY) == devices
            pending = outbox_units(outbox_path)
            signed |= digests(pending, fleet.domain)
            answer = httpx.post(
                oracle.url + "/v1/readings",
                json={"units": [unit.to_json() for unit in pending.values()]},
                timeout=30,
            )
            assert answer.status_code == 503, answer.text
            assert answer.headers["Retry-After"] == "2"
            assert store_fault.reason in answer.json()["detail"]
            assert "resend" in answer.json()["detail"]

            # The node backs off and keeps every unit; nothing is dead-lettered.
            for _ in range(3):
                sender.send_round()
                sender.links[oracle.url].next_attempt_at = 0.0  # no waiting in the test
            assert sender.stats.retries >= 3
            assert sender.stats.acked == devices
            assert set(outbox_units(outbox_path)) == set(pending)

            store_fault.end()
            stats = sender.drain(timeout_s=30)
            sender.close()
        assert stats.acked == 2 * devices and stats.rejected == 0
        assert outbox_units(outbox_path) == {}
        assert outbox_dead_letters(outbox_path) == 0

        store = OracleStore.read(data_dir / "oracle.db")
        assert set(store.units) == set(signed.values())
        assert store.units_rows == store.distinct_unit_sequences() == 2 * devices
        assert store.readings_rows == 2 * devices * INTERVALS_PER_DAY
        assert store.conflicts_rows == 0
        health = httpx.get(oracle.url + "/health", timeout=15).json()
        assert health["database"] == "ok"
    finally:
        oracle.stop()
