"""A node is offline for hours, then catches up. Two outages of the real node loop
(`NodeRunner`, outbox on disk) against a real oracle on chain time:

1. the node process is stopped while six hours of chain time pass, then a new runner on
   the same data directory resumes;
2. the node runs but its oracle is unreachable for three hours of chain time (it keeps
   attesting into its outbox and backs off), then the oracle comes back on the same port.

Afterwards every interval since the node's first one is attested exactly once (no unit
overlaps another, no sequence repeats) and stored by the oracle with the value the
device's meter shows."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from fault_support import ZONE, Fleet
from support.oracle_process import start_oracle
from support.stores import OracleStore, outbox_dead_letters, outbox_units
from web3 import Web3

from gridflex.chain.anvil import AnvilProcess, increase_time
from node.dispatch import CommandedDevice
from node.runner import NodeDevice, NodeRunner

pytestmark = pytest.mark.integration

INTERVAL = 900
HOUR = 3600
STOPPED_HOURS = 6
ORACLE_DOWN_HOURS = 3


def start_runner(fleet: Fleet, data_dir: Path, rpc_url: str, oracle_url: str) -> NodeRunner:
    devices = [
        NodeDevice(device.device_id, CommandedDevice(device.adapter), device.signing_key)  # type: ignore[arg-type]
        for device in fleet.devices
    ]
    return NodeRunner(fleet.owner, devices, ZONE, data_dir, rpc_url, [oracle_url])


def stored_interval_counts(database: Path) -> tuple[int, int]:
    """(intervals covered by the stored units, distinct (device, interval) among them)."""
    with closing(sqlite3.connect(database)) as db:
        covered = db.execute("SELECT SUM(interval_count) FROM meter_units").fetchone()[0]
        distinct = db.execute(
            "SELECT COUNT(*) FROM (SELECT DISTINCT device_id, interval_start FROM readings)"
        ).fetchone()[0]
    return int(covered), int(distinct)


def test_a_node_offline_for_hours_attests_every_interval_once_and_the_oracle_gets_all(
    fleet: Fleet, anvil: AnvilProcess, w3: Web3, oracle_env: dict[str, str], tmp_path: Path
) -> None:
    env = oracle_env | {"GRIDFLEX_ORACLE_CLOCK": "chain"}
    oracle = start_oracle(tmp_path, env)
    node_dir = tmp_path / "node"
    increase_time(w3, 2 * HOUR)  # the node's hour of history starts after the registration
    runner = start_runner(fleet, node_dir, anvil.url, oracle.url)
    first_start = runner.first_start
    try:
        runner.tick()
        runner.drain()
        runner.close()  # 1. the node process stops ...
        increase_time(w3, STOPPED_HOURS * HOUR)  # ... for six hours

        runner = start_runner(fleet, node_dir, anvil.url, oracle.url)
        assert runner.first_start == first_start  # resumed, not restarted from scratch
        report = runner.tick()
        assert report.units_signed == len(fleet.devices)  # the six hours, one unit each
        runner.drain()

        oracle.stop()  # 2. the oracle is unreachable while the node keeps metering
        for _ in range(ORACLE_DOWN_HOURS * HOUR // INTERVAL):
            increase_time(w3, INTERVAL)
            runner.tick()
        assert runner.sender.stats.retries > 0
        pending = outbox_units(runner.outbox.path)
        assert len(pending) == len(fleet.devices) * ORACLE_DOWN_HOURS * HOUR // INTERVAL

        oracle = start_oracle(tmp_path, env, port=oracle.port)
        runner.drain(timeout_s=60)
        end = runner.chain_time() // INTERVAL * INTERVAL
    finally:
        runner.close()
        oracle.stop()

    expected_intervals = (end - first_start) // INTERVAL
    assert expected_intervals >= (STOPPED_HOURS + ORACLE_DOWN_HOURS) * HOUR // INTERVAL
    node_outbox = node_dir / "outbox.sqlite"
    assert outbox_units(node_outbox) == {}
    assert outbox_dead_letters(node_outbox) == 0
    database = Path(env["GRIDFLEX_ORACLE_DATA_DIR"]) / "oracle.db"
    store = OracleStore.read(database)
    assert store.readings_rows == len(fleet.devices) * expected_intervals
    assert store.units_rows == store.distinct_unit_sequences()
    assert store.conflicts_rows == 0
    covered, distinct = stored_interval_counts(database)
    assert covered == distinct == store.readings_rows  # no interval in two units
    for device in fleet.devices:
        stored = store.energy_of(device.device_id)
        assert sorted(stored) == list(range(first_start, end, INTERVAL))
        meter = CommandedDevice(device.adapter)
        assert stored == {
            start: meter.read_interval_energy_wh(start, INTERVAL) for start in sorted(stored)
        }
