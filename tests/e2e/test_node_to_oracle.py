"""Acceptance of signed metering, end to end with real parts only: a real anvil with the
protocol deployed, devices registered on-chain by `gridflex node register`, a real oracle
process (`gridflex oracle serve`, SQLite file) and the node's real outbox and sender.

1. A node streams a day of five devices' readings: each reading is stored exactly once,
   with the value the device measured, and streaming again changes nothing.
2. The oracle is SIGKILLed in the middle of a stream and restarted on the same port and
   database: the node backs off, then catches up; nothing it saw acknowledged is missing,
   nothing is duplicated, every reading is there.
3. A batch holding one unit the oracle refuses (its device was never registered): the
   refused unit is dead-lettered and the rest of the batch is stored.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_support import (
    INTERVALS_PER_DAY,
    PASSWORD,
    RegisteredNode,
    expected_energy_wh,
    node_cli,
)
from support.clock import DAY, last_midnight
from support.oracle_process import OracleServer, start_oracle
from support.stores import OracleStore, digests, outbox_dead_letters, outbox_units

from gridflex.rules.attestation import DeviceSigningKey, MeterUnit, verify_unit
from gridflex.rules.eip712 import KeyType
from node.devices.simulated import simulated_device
from node.keystore import load_node
from node.meter_loop import MeteredDevice, MeterLoop
from node.outbox import Outbox
from node.sender import Backoff, Sender, SendStats

pytestmark = pytest.mark.integration

DEVICES = 5
PAGE_SIZE = 40


def oracle_database(oracle_env: dict[str, str]) -> Path:
    return Path(oracle_env["GRIDFLEX_ORACLE_DATA_DIR"]) / "oracle.db"


def served_readings(oracle_url: str, device_id: int) -> tuple[list[dict[str, Any]], int]:
    """Every reading of a device from the public read API, page by page; (readings, pages)."""
    readings: list[dict[str, Any]] = []
    cursor: int | None = None
    pages = 0
    while True:
        params = {"limit": PAGE_SIZE} | ({} if cursor is None else {"cursor": cursor})
        response = httpx.get(f"{oracle_url}/v1/devices/{device_id}/readings", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        readings += page["readings"]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            return readings, pages


def ingest_counters(oracle_url: str) -> list[str]:
    """The oracle's ingest metrics (units, readings, batches): unchanged = nothing arrived."""
    text = httpx.get(f"{oracle_url}/metrics").text
    return [line for line in text.splitlines() if line.startswith("gridflex_oracle_")]


def on_chain_key(node: RegisteredNode, device_id: int) -> DeviceSigningKey:
    device = node.protocol.device(device_id)
    return DeviceSigningKey(KeyType(device.key_type), device.key_x, device.key_y)


def stream_summary(*args: str) -> dict[str, Any]:
    output = node_cli("stream", *args, "--json")
    return json.loads(output.strip().splitlines()[-1])


def test_a_day_of_five_devices_is_stored_once_each_as_measured_and_a_rerun_changes_nothing(
    registered_node: RegisteredNode, oracle_env: dict[str, str], tmp_path: Path
) -> None:
    node = registered_node
    devices = node.state.devices
    assert len({device.kind for device in devices}) == DEVICES  # five kinds of physics
    assert [device.key_type for device in devices].count(KeyType.P256) == 2
    end = last_midnight()
    start = end - DAY
    oracle = start_oracle(tmp_path, oracle_env)
    try:
        summary = stream_summary(
            "--oracle", oracle.url, "--backfill-hours", "24", "--end", str(end)
        )
        # 96 intervals fit one unit: one signed unit per device, each acknowledged.
        assert summary["signedUnits"] == summary["ackedUnits"] == DEVICES
        assert (summary["rejectedUnits"], summary["deadLetters"]) == (0, 0)

        store = OracleStore.read(oracle_database(oracle_env))
        assert store.readings_rows == DEVICES * INTERVALS_PER_DAY
        assert store.units_rows == store.distinct_unit_sequences() == DEVICES
        assert store.conflicts_rows == 0
        for device in devices:
            assert device.device_id is not None
            expected = expected_energy_wh(device, start, end)
            assert len(expected) == INTERVALS_PER_DAY
            assert store.energy_of(device.device_id) == expected

            served, pages = served_readings(oracle.url, device.device_id)
            assert pages == math.ceil(INTERVALS_PER_DAY / PAGE_SIZE)
            assert [reading["interval_start"] for reading in served] == list(expected)
            assert [reading["energy_wh"] for reading in served] == list(expected.values())
            # What the oracle serves re-verifies against the key registered on-chain.
            for digest in {reading["unit_digest"] for reading in served}:
                unit_json = httpx.get(f"{oracle.url}/v1/units/{digest}").json()
                unit = MeterUnit.from_json(unit_json)
                verified = verify_unit(unit, node.domain, on_chain_key(node, device.device_id))
                assert "0x" + verified.hex() == digest
        assert outbox_units(node.outbox_path) == {}
        assert outbox_dead_letters(node.outbox_path) == 0

        counters = ingest_counters(oracle.url)
        again = stream_summary("--oracle", oracle.url, "--backfill-hours", "24", "--end", str(end))
        assert (again["signedUnits"], again["ackedUnits"], again["retries"]) == (0, 0, 0)
        assert ingest_counters(oracle.url) == counters  # not even a duplicate was posted
        assert OracleStore.read(oracle_database(oracle_env)) == store
    finally:
        oracle.stop()


def test_one_refused_unit_is_dead_lettered_and_the_rest_of_its_batch_is_stored(
    registered_node: RegisteredNode, oracle_env: dict[str, str], tmp_path: Path
) -> None:
    """The real oracle answers `valid` for the units of a refused batch that passed every
    check; the node resends them without the refused one (it used to retry forever)."""
    node = registered_node
    end = last_midnight()
    state, _owner, keys = load_node(node.data_dir, PASSWORD)
    device = state.devices[0]
    assert device.device_id is not None
    unregistered = MeteredDevice(
        10**9, simulated_device(device.kind, device.capacity_w, device.seed), keys[device.name]
    )
    registered = MeteredDevice(
        device.device_id,
        simulated_device(device.kind, device.capacity_w, device.seed),
        keys[device.name],
    )
    oracle = start_oracle(tmp_path, oracle_env)
    try:
        with Outbox(node.outbox_path, [oracle.url]) as outbox:
            signed = MeterLoop(outbox, [unregistered, registered], node.domain).backfill(
                end - 2 * DAY, end
            )
            assert signed == 4  # two days of each device, in one batch
            sender = Sender(outbox, batch_size=10)
            stats = sender.drain(timeout_s=30)
            sender.close()
        assert (stats.acked, stats.rejected) == (2, 2)
        assert outbox_units(node.outbox_path) == {}
        assert outbox_dead_letters(node.outbox_path) == 2
        store = OracleStore.read(oracle_database(oracle_env))
        assert store.units_rows == 2
        assert store.energy_of(device.device_id) == expected_energy_wh(device, end - 2 * DAY, end)
    finally:
        oracle.stop()


# ─── SIGKILL mid-stream ────────────────────────────────────────────────────────────────

DAYS_OF_HISTORY = 6
BATCH_SIZE = 2
ACKED_BEFORE_KILL = 3 * BATCH_SIZE
FAST_BACKOFF = {"base_s": 0.05, "cap_s": 0.4}
"""Short delays keep the test quick; the growth and the jitter are the node's own."""


@dataclass(frozen=True)
class RecordingBackoff(Backoff):
    """The node's backoff, remembering each (attempt, delay) it handed out."""

    delays: list[tuple[int, float]] = field(default_factory=list)

    def delay_s(self, attempt: int, rng: random.Random) -> float:
        delay = super().delay_s(attempt, rng)
        self.delays.append((attempt, delay))
        return delay


@dataclass
class NodeRun:
    """`Sender.drain` on a thread. Its progress hook (called between batches) pauses once
    when `pause_after_acked` units are acknowledged, so the kill lands mid-stream."""

    sender: Sender
    pause_after_acked: int
    paused: threading.Event = field(default_factory=threading.Event)
    resume: threading.Event = field(default_factory=threading.Event)
    stats: SendStats | None = None
    error: BaseException | None = None

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self._drain, name="node-sender", daemon=True)

    def _on_progress(self, stats: SendStats) -> None:
        if stats.acked >= self.pause_after_acked and not self.paused.is_set():
            self.paused.set()
            self.resume.wait(timeout=30)

    def _drain(self) -> None:
        try:
            self.stats = self.sender.drain(timeout_s=60, on_progress=self._on_progress)
        except BaseException as error:
            self.error = error


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_oracle_sigkilled_mid_stream_loses_no_acknowledged_reading_and_duplicates_none(
    registered_node: RegisteredNode, oracle_env: dict[str, str], tmp_path: Path
) -> None:
    node = registered_node
    end = last_midnight()
    start = end - DAYS_OF_HISTORY * DAY
    state, _owner, keys = load_node(node.data_dir, PASSWORD)
    metered = [
        MeteredDevice(
            device.device_id,  # type: ignore[arg-type]  # registered by the fixture
            simulated_device(device.kind, device.capacity_w, device.seed),
            keys[device.name],
        )
        for device in state.devices
    ]
    oracles: list[OracleServer] = [start_oracle(tmp_path, oracle_env)]
    first_oracle = oracles[0]
    run: NodeRun | None = None
    try:
        with Outbox(node.outbox_path, [first_oracle.url]) as outbox:
            signed_units = MeterLoop(outbox, metered, node.domain).backfill(start, end)
            assert signed_units == DEVICES * DAYS_OF_HISTORY  # one 96-interval unit a day
            signed = digests(outbox_units(node.outbox_path), node.domain)
            backoff = RecordingBackoff(**FAST_BACKOFF)
            sender = Sender(outbox, batch_size=BATCH_SIZE, backoff=backoff)
            run = NodeRun(sender, pause_after_acked=ACKED_BEFORE_KILL)
            run.thread.start()

            # Some batches acknowledged; the node resumes sending as the oracle dies.
            assert run.paused.wait(timeout=30), "the node acknowledged nothing"
            run.resume.set()
            first_oracle.kill()

            # Down: the node retries with growing, jittered delays and drops nothing. Once
            # it has failed a post, every answer received before the kill is recorded. With
            # one oracle an acknowledged unit is deleted from the outbox in the ack's own
            # transaction: acknowledged = signed and no longer in the outbox.
            wait_for(lambda: sender.stats.retries >= 3, 10, "the node to retry")
            pending_at_kill = set(outbox_units(node.outbox_path))
            acked_before_kill = {signed[unit_id] for unit_id in set(signed) - pending_at_kill}
            assert len(acked_before_kill) >= ACKED_BEFORE_KILL
            assert pending_at_kill, "the stream finished before the kill: not mid-stream"
            retries_at_kill = sender.stats.retries
            wait_for(lambda: sender.stats.retries >= retries_at_kill + 2, 10, "more retries")
            assert set(outbox_units(node.outbox_path)) == pending_at_kill
            assert run.thread.is_alive() and run.error is None
            attempts = [attempt for attempt, _delay in backoff.delays]
            assert attempts == list(range(len(attempts)))  # consecutive failures back off
            for attempt, delay in backoff.delays:
                assert 0 <= delay <= min(backoff.cap_s, backoff.base_s * 2**attempt)

            # Every acknowledged unit survived the SIGKILL in the oracle's database file.
            at_kill = OracleStore.read(oracle_database(oracle_env))
            assert acked_before_kill <= set(at_kill.units)

            oracles.append(start_oracle(tmp_path, oracle_env, port=first_oracle.port))
            run.thread.join(timeout=60)
            assert not run.thread.is_alive(), "the node did not catch up"
            assert run.error is None, repr(run.error)
            assert run.stats is not None
            sender.close()

        # Caught up: the node holds nothing, and saw every unit acknowledged exactly once.
        assert run.stats.acked == signed_units and run.stats.rejected == 0
        assert run.stats.retries >= retries_at_kill + 2
        assert outbox_units(node.outbox_path) == {}
        assert outbox_dead_letters(node.outbox_path) == 0

        store = OracleStore.read(oracle_database(oracle_env))
        assert set(store.units) == set(signed.values())  # acknowledged ones included
        assert store.units_rows == store.distinct_unit_sequences() == signed_units
        assert store.readings_rows == DEVICES * DAYS_OF_HISTORY * INTERVALS_PER_DAY
        assert store.conflicts_rows == 0
        for device in state.devices:
            assert device.device_id is not None
            expected = expected_energy_wh(device, start, end)
            assert store.energy_of(device.device_id) == expected
    finally:
        if run is not None:
            run.resume.set()
        for oracle in oracles:
            oracle.stop()
