"""GridFlex benchmarks. Each subcommand measures one thing on real parts and prints a
summary (or JSON with --json); BENCHMARKS.md records the figures with these commands.

    python scripts/bench.py ingest [--devices 50] [--days 40] [--batch 50] [--json]
    python scripts/bench.py settle [--devices 100000] [--store sqlite|postgresql] [--json]
    python scripts/bench.py fleet [--devices 100000] [--store sqlite|postgresql] [--json]
    python scripts/bench.py load [--rate 5000] [--duration 300] [--database-url URL] [--json]
    python scripts/bench.py explorer [--requests 100] [--readings 10000] [--repeat 30] [--json]
    python scripts/bench.py demo [--devices 50] [--runs 3] [--json]
    python scripts/bench.py all [--write BENCHMARKS.md]      # `make bench`

`ingest`: an Osaka anvil with the protocol deployed and devices registered; a real
`gridflex oracle serve` process on loopback with a SQLite file; signed 96-interval units
POSTed over HTTP in batches. Reports readings/s and units/s through the API, plus on one
core in this process: the oracle's verification path (digest + signature check against
the registered key) and raw coincurve ecrecover of the same digests, for comparison.

`load`: a sustained, paced ingest run against a real oracle process on loopback (SQLite
file by default, or a fresh PostgreSQL database created on the server of `--database-url`
and dropped afterwards): requests are sent on a fixed schedule at `--rate` readings/s for
`--duration` seconds by a few client threads. Reports acknowledged readings, the achieved
rate and p50/p95/p99/max latency, then stops the oracle and checks in its database that
every acknowledged unit is stored and the readings table holds exactly the acknowledged
readings: zero lost, none extra.

`settle`: the oracle's own measurement of ONE request from its own store, in its two
production steps (`oracle.measurement.read_inputs`, `compute_report`). The store is the
oracle's schema (`oracle.db.init_db`, SQLite file or a fresh PostgreSQL database), filled
untimed in bulk: per device the 16 readings a day CAISO 10-in-10 reads for a 1-hour event
(12 adjustment-window + 4 event intervals of 15 minutes) on the event day and the 14 days
before it (10 weekdays: a full pool), all pointing to one meter unit. The request facts are
synthetic (N devices in 4 bids, 80% awarded). `read_s` (reading the inputs: readings into
the history block, conflict evidence) is timed against `bare_read_s`, the same SQL text
through the same driver's cursor with `fetchall()` only; `compute_s` (baselines, delivery,
records, used readings, both leaf sets and roots, EIP-712 signature) against
`numpy_floor_s`, one `history.sum()` over the same block. Best of three each (the reads
interleaved). `state_bytes_per_reading`: SQLite file size or PostgreSQL
`pg_total_relation_size('readings')` over the readings stored (units and signatures not
included: one unit only).

`explorer`: an explorer database (SQLite file, or `--database-url`) filled through the
indexer's own projection with N synthetic settled requests (4 bids of 2 devices each,
report, settlement, device records with per-interval curves) and M signed readings spread
over the devices; then every page and the main API answers are requested `--repeat` times
in process (FastAPI TestClient) and the server time of each is read from the app's
`Server-Timing` header (handler + template + database; no network), after the startup heap
is frozen as `gridflex explorer` does. Reports p50/p95/max.

`demo`: `gridflex demo --json` as a subprocess, `--runs` times: the whole network (anvil,
3 oracle processes, node processes) and the market story. `story_s` is the demo's own
clock from start to the printed summary; `wall_s` adds interpreter start and shutdown of
every process. Reports min / median / max and the phases of the median run.

`all` (`make bench`): every benchmark above plus the gas snapshot (`forge test
--match-contract Gas`), each in its own process, then rewrites the generated block of
BENCHMARKS.md (between `<!-- make bench: start -->` and `<!-- make bench: end -->`) with
the machine's description, one table per benchmark and the command behind each figure.
The hand-written analysis around it is left as it is.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import random
import resource
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import numpy as np
import typer
from coincurve import PublicKey
from eth_account import Account
from sqlalchemy import insert, text

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from gridflex.chain.anvil import AnvilProcess, anvil_dev_account, free_port  # noqa: E402
from gridflex.chain.client import ChainClient  # noqa: E402
from gridflex.chain.compiler import load_artifacts  # noqa: E402
from gridflex.chain.deploy import ProtocolParams, deploy_protocol  # noqa: E402
from gridflex.chain.deployments import save_deployment  # noqa: E402
from gridflex.chain.protocol import Protocol  # noqa: E402
from gridflex.logging import configure_logging  # noqa: E402
from gridflex.rules import native  # noqa: E402
from gridflex.rules.attestation import (  # noqa: E402
    DeviceSigningKey,
    MeterUnit,
    meter_domain_separator,
    sign_unit,
    unit_digest,
    unit_digests,
    verify_unit,
)
from gridflex.rules.baselines import (  # noqa: E402
    SECONDS_PER_DAY,
    EventWindow,
    block_starts,
    reading_span,
)
from gridflex.rules.eip712 import (  # noqa: E402
    DeviceKey,
    KeyType,
    device_key_proof_digest,
    sign_digest_secp256k1,
)
from gridflex.rules.measurement import AwardedBid, RequestFacts, RequestRows  # noqa: E402
from gridflex.rules.reports import Quality  # noqa: E402
from gridflex.rules.types import BaselineMethod, DeviceKind, zone_id  # noqa: E402
from oracle.config import OracleSettings  # noqa: E402
from oracle.db import create_oracle_engine, init_db  # noqa: E402
from oracle.measurement import (  # noqa: E402
    compute_report,
    device_chunks,
    driver_sql,
    read_inputs,
    readings_query,
)
from oracle.models import MeterUnitRecord  # noqa: E402

app = typer.Typer(help=__doc__, no_args_is_help=True)
INTERVAL_S = 900
INTERVALS_PER_DAY = 96


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _start_oracle(
    workdir: Path,
    rpc_url: str,
    database_url: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("GRIDFLEX") and k != "DATABASE_URL"
    }
    env |= {
        "GRIDFLEX_ORACLE_DATA_DIR": str(workdir / "oracle"),
        "GRIDFLEX_ORACLE_DEPLOYMENTS_DIR": str(workdir),
        "GRIDFLEX_ORACLE_RPC_URL": rpc_url,
        "GRIDFLEX_ORACLE_MAX_BODY_BYTES": str(64 * 1024 * 1024),
        "GRIDFLEX_LOG_LEVEL": "WARNING",
    }
    if database_url is not None:
        env["GRIDFLEX_ORACLE_DATABASE_URL"] = database_url
    env |= extra_env or {}
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "oracle", "serve", "--port", str(port)],
        cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=(workdir / "oracle.log").open("wb"),
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError((workdir / "oracle.log").read_text())
        try:
            httpx.get(url + "/health", timeout=1).raise_for_status()
            return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("oracle did not start")


def _deploy_with_devices(
    anvil: AnvilProcess, workdir: Path, devices: int
) -> tuple[bytes, list[tuple[int, bytes]]]:
    """The protocol deployed on `anvil` (record in `workdir`) and `devices` batteries of
    10 kW registered; returns the meter domain and (device id, signing key) pairs."""
    artifacts = load_artifacts()
    client = ChainClient.from_url(anvil.url, anvil_dev_account(0).key.hex(), artifacts)
    protocol = Protocol(client, deploy_protocol(client, ProtocolParams.local(), artifacts))
    save_deployment(protocol.deployment, workdir)
    chain_id, registry = client.chain_id, protocol.registry.address
    zone = zone_id("BENCH-01")
    _log(f"registering {devices} devices...")
    keys: list[tuple[int, bytes]] = []
    digest = device_key_proof_digest(protocol.address, chain_id, registry)
    batch_size = 200  # DeviceRegistry.MAX_BATCH
    for first in range(0, devices, batch_size):
        batch = [secrets.token_bytes(32) for _ in range(min(batch_size, devices - first))]
        proofs = [
            DeviceKey(KeyType.SECP256K1, bytes.fromhex(Account.from_key(k).address[2:]),
                      sign_digest_secp256k1(k, digest))
            for k in batch
        ]  # fmt: skip
        ids = protocol.register_devices(DeviceKind.BATTERY, 10_000, zone, proofs)
        keys += list(zip(ids, batch, strict=True))
    return meter_domain_separator(chain_id, registry), keys


@app.callback()
def main() -> None:
    """Benchmarks on real parts; see each subcommand."""
    configure_logging("WARNING")  # on stderr: stdout carries only the result (`--json`)


@app.command()
def ingest(
    devices: Annotated[int, typer.Option(help="Registered devices.")] = 50,
    days: Annotated[int, typer.Option(help="Days of 96-interval units per device.")] = 40,
    batch: Annotated[int, typer.Option(help="Units per HTTP request.")] = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Oracle ingest over HTTP into SQLite, and signature-check speed vs raw ecrecover."""
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp, AnvilProcess() as anvil:
        workdir = Path(tmp)
        domain, keys = _deploy_with_devices(anvil, workdir, devices)

        _log(f"signing {devices * days} units of {INTERVALS_PER_DAY} intervals...")
        now = int(time.time())
        first_day = (now // 86400 - days - 1) * 86400
        units: list[MeterUnit] = []
        for device_id, device_key in keys:
            for day in range(days):
                energy = tuple(rng.randint(-2_500, 2_500) for _ in range(INTERVALS_PER_DAY))
                unit = MeterUnit(device_id, first_day + day * 86400, INTERVAL_S, day, energy)
                units.append(sign_unit(unit, domain, device_key))
        rng.shuffle(units)
        bodies = [
            json.dumps({"units": [u.to_json() for u in units[i : i + batch]]}).encode()
            for i in range(0, len(units), batch)
        ]

        oracle, url = _start_oracle(workdir, anvil.url)
        try:
            with httpx.Client(timeout=60) as http:
                warm = http.post(url + "/v1/readings", content=bodies[0],
                                 headers={"content-type": "application/json"})  # fmt: skip
                warm.raise_for_status()  # first batch also warms the registry cache
                started = time.perf_counter()
                for body in bodies[1:]:
                    response = http.post(url + "/v1/readings", content=body,
                                         headers={"content-type": "application/json"})  # fmt: skip
                    response.raise_for_status()
                elapsed = time.perf_counter() - started
        finally:
            oracle.terminate()
            oracle.wait(timeout=20)
        sent_units = len(units) - len(json.loads(bodies[0])["units"])

    # One core, this process: the oracle's verification path vs raw ecrecover.
    signing_keys = {
        device_id: DeviceSigningKey(
            KeyType.SECP256K1, bytes(12) + bytes.fromhex(Account.from_key(key).address[2:])
        )
        for device_id, key in keys
    }
    parsed = [MeterUnit.from_json(u.to_json()) for u in units]
    started = time.perf_counter()
    for unit in parsed:
        verify_unit(unit, domain, signing_keys[unit.device_id])
    signatures_per_s = len(parsed) / (time.perf_counter() - started)
    digests = [unit_digest(u, domain) for u in units]
    recoverable = [u.signature[:64] + bytes((u.signature[64] - 27,)) for u in units]
    started = time.perf_counter()
    for digest, signature in zip(digests, recoverable, strict=True):
        PublicKey.from_signature_and_message(signature, digest, hasher=None)
    raw_recover_per_s = len(digests) / (time.perf_counter() - started)

    result = {
        "benchmark": "ingest",
        "devices": devices,
        "units": sent_units,
        "intervals_per_unit": INTERVALS_PER_DAY,
        "batch_units": batch,
        "seconds": round(elapsed, 3),
        "readings_per_s": round(sent_units * INTERVALS_PER_DAY / elapsed),
        "units_per_s": round(sent_units / elapsed),
        "signatures_per_s": round(signatures_per_s),
        "raw_recover_per_s": round(raw_recover_per_s),
        "signature_ratio": round(signatures_per_s / raw_recover_per_s, 3),
        "database": "sqlite (WAL, synchronous=FULL)",
    }
    if as_json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>20}: {value}")


SETTLE_BIDS = 4
SETTLE_EVENT_DAY = 20159  # Wednesday 2025-03-12
SETTLE_HISTORY_DAYS = 14
"""Days stored before the event day: 10 weekdays, what CAISO 10-in-10 averages."""
SETTLE_EVENT_INTERVALS = 4
"""A 1-hour event, 17:00-18:00: with the 12-interval adjustment window, 16 readings a day."""


def _settle_facts(devices: int, rng: np.random.Generator) -> RequestFacts:
    """One cleared CAISO 10-in-10 request: `devices` in `SETTLE_BIDS` bids, 80% awarded."""
    start = SETTLE_EVENT_DAY * SECONDS_PER_DAY + 17 * 3600
    window = EventWindow(start, start + SETTLE_EVENT_INTERVALS * INTERVAL_S, INTERVAL_S)
    capacity_w = rng.integers(3_000, 10_000, size=devices).tolist()
    bids = []
    for index in range(SETTLE_BIDS):
        members = range(index * devices // SETTLE_BIDS, (index + 1) * devices // SETTLE_BIDS)
        capacities = {1 + d: capacity_w[d] for d in members}
        bids.append(AwardedBid(index, sum(capacities.values()) * 8 // 10, capacities))
    return RequestFacts(
        1, 0, "0x" + "11" * 20, 31337, "0x" + "22" * 20, 0,
        int(BaselineMethod.CAISO_10_OF_10), window, SETTLE_BIDS, tuple(bids),
    )  # fmt: skip


def _settle_rows(facts: RequestFacts, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """The stored readings `[rows, 5]` (device, start, Wh, seconds, unit), per 8,192 devices:
    household loads of 400-2,400 Wh per 15 minutes at the method's times of day on the
    event day and the `SETTLE_HISTORY_DAYS` before it, 0-800 Wh less during the event."""
    window = facts.window
    starts = np.array(block_starts(BaselineMethod(facts.baseline_method), window), np.int64)
    days = np.arange(-SETTLE_HISTORY_DAYS, 1, dtype=np.int64) * SECONDS_PER_DAY
    times = (days[:, None] + starts[None, :]).reshape(-1)
    event = np.isin(times, window.interval_starts)
    device_ids = np.array(sorted(d for bid in facts.bids for d in bid.device_capacity_w))
    for begin in range(0, len(device_ids), 8192):
        ids = device_ids[begin : begin + 8192]
        wh = rng.integers(400, 2_400, size=(len(ids), len(times)))
        wh[:, event] -= rng.integers(0, 800, size=(len(ids), int(event.sum())))
        rows = np.empty((len(ids), len(times), 5), dtype=np.int64)
        rows[:, :, 0] = ids[:, None]
        rows[:, :, 1] = times[None, :]
        rows[:, :, 2] = wh
        rows[:, :, 3] = window.interval_seconds
        rows[:, :, 4] = 1
        yield rows.reshape(-1, 5)


def _fill_store(engine: Any, facts: RequestFacts, rng: np.random.Generator) -> int:
    """The oracle's schema (`oracle.db.init_db`) filled in bulk: one meter unit that every
    reading points to (its foreign key; units and signatures are not part of the figure)
    and the readings (SQLite `executemany`, PostgreSQL `COPY`). Returns the reading count."""
    init_db(engine)
    unit = {
        "device_id": 1, "first_interval_start": 0, "interval_seconds": INTERVAL_S,
        "interval_count": 1, "sequence": 0, "energy_wh": "[0]", "signature": b"",
        "digest": b"\0" * 32, "received_at": datetime.now(UTC),
    }  # fmt: skip
    with engine.begin() as connection:
        connection.execute(insert(MeterUnitRecord).values(id=1, **unit))
    count = 0
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        columns = "device_id, interval_start, energy_wh, interval_seconds, unit_id"
        if engine.dialect.name == "sqlite":
            cursor.execute("BEGIN")  # the oracle's connections run in autocommit mode
        for rows in _settle_rows(facts, rng):
            if engine.dialect.name == "sqlite":
                cursor.executemany(
                    f"INSERT INTO readings ({columns}) VALUES (?, ?, ?, ?, ?)", rows.tolist()
                )
            else:
                with cursor.copy(f"COPY readings ({columns}) FROM STDIN") as copy:
                    for row in rows.tolist():
                        copy.write_row(row)
            count += len(rows)
        raw.commit()
        if engine.dialect.name == "sqlite":
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        else:
            raw.driver_connection.autocommit = True  # type: ignore[union-attr]
            cursor.execute("VACUUM ANALYZE readings")
    finally:
        raw.close()
    return count


def _bare_read(engine: Any, facts: RequestFacts) -> float:
    """Seconds to fetch the rows `read_history` fetches, with the same SQL and driver."""
    rows = RequestRows.of(facts)
    span = reading_span(facts.baseline_method, facts.window)
    started = time.perf_counter()
    with engine.connect() as connection:
        for chunk in device_chunks(rows.device_id):
            query = readings_query(chunk, span, facts.window.interval_seconds)
            cursor = connection.connection.cursor()
            cursor.execute(*driver_sql(connection, query))
            cursor.fetchall()
            cursor.close()
    return time.perf_counter() - started


def _timed_reads(engine: Any, facts: RequestFacts) -> tuple[float, float, Any]:
    """(read_inputs s, bare read s, the inputs): best of three, interleaved so that both
    reads see the same cache state."""
    bare_s = read_s = float("inf")
    for _ in range(3):
        bare_s = min(bare_s, _bare_read(engine, facts))
        started = time.perf_counter()
        inputs = read_inputs(engine, facts)
        read_s = min(read_s, time.perf_counter() - started)
    return read_s, bare_s, inputs


def _best_of(runs: int, call: Any) -> tuple[float, Any]:
    best, value = float("inf"), None
    for _ in range(runs):
        started = time.perf_counter()
        value = call()
        best = min(best, time.perf_counter() - started)
    return best, value


@app.command()
def settle(
    devices: Annotated[int, typer.Option(help="Awarded devices in the request.")] = 100_000,
    store: Annotated[str, typer.Option(help="sqlite or postgresql.")] = "sqlite",
    database_url: Annotated[
        str, typer.Option(help="PostgreSQL server for --store postgresql (a fresh database).")
    ] = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
    seed: Annotated[int, typer.Option(help="Seed of the synthetic readings.")] = 7,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The oracle's own measurement of one request from its own store to a signed report,
    in two parts, each against a floor measured in the same run."""
    rng = np.random.default_rng(seed)
    facts = _settle_facts(devices, rng)
    key = "0x" + "42" * 32
    with contextlib.ExitStack() as stack:
        if store == "sqlite":
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            url = f"sqlite:///{workdir / 'oracle.db'}"
        else:
            url = stack.enter_context(_fresh_postgres(database_url))
        engine = create_oracle_engine(OracleSettings(database_url=url))
        stack.callback(engine.dispose)
        _log(f"filling a {store} store for {devices} devices...")
        started = time.perf_counter()
        readings = _fill_store(engine, facts, rng)
        fill_s = time.perf_counter() - started
        if store == "sqlite":
            state_bytes = (workdir / "oracle.db").stat().st_size
        else:
            with engine.connect() as connection:
                state_bytes = connection.execute(
                    text("SELECT pg_total_relation_size('readings')")
                ).scalar_one()
        _log("measuring...")
        read_s, bare_s, inputs = _timed_reads(engine, facts)
    floor_s, _ = _best_of(3, inputs.history.sum)
    compute_s, report = _best_of(3, lambda: compute_report(facts, inputs, key))
    qualities = np.bincount([int(r.quality) for r in report.trees.records], minlength=4)
    result = {
        "benchmark": "settle",
        "store": store,
        "devices": devices,
        "method": "CAISO_10_OF_10",
        "native": native.available(),
        "readings_stored": readings,
        "state_bytes_per_reading": round(state_bytes / readings, 1),
        "fill_s": round(fill_s, 1),
        "read_s": round(read_s, 3),
        "bare_read_s": round(bare_s, 3),
        "read_ratio": round(read_s / bare_s, 2),
        "compute_s": round(compute_s, 3),
        "numpy_floor_s": round(floor_s, 4),
        "compute_ratio": round(compute_s / floor_s, 1),
        "history_shape": list(inputs.history.shape),
        "ok_devices": int(qualities[Quality.OK]),
        "fallback_devices": int(qualities[Quality.FALLBACK]),
        "insufficient_devices": int(qualities[Quality.INSUFFICIENT_DATA]),
        "signed": report.signature is not None,
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
    }
    if as_json:
        print(json.dumps(result))
    else:
        for name, value in result.items():
            print(f"{name:>24}: {value}")


# ─── A fleet of pooled devices, end to end ─────────────────────────────────────────────

FLEET_DEVICE_W = 3_000
FLEET_PER_OWNER = 200
FLEET_REPORT_DELAY_S = 30


def _tx_gas(protocol: Protocol, tx_hash: str) -> int:
    return int(protocol.client.w3.eth.get_transaction_receipt(tx_hash)["gasUsed"])


def _rss_gib(pid: int) -> float:
    """Peak resident memory of a live process (VmHWM), GiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 2**20, 2)
    return 0.0


@app.command()
def fleet(
    devices: Annotated[int, typer.Option(help="Pooled devices (two pools).")] = 100_000,
    store: Annotated[str, typer.Option(help="sqlite or postgresql.")] = "sqlite",
    database_url: Annotated[
        str, typer.Option(help="PostgreSQL server for --store postgresql (a fresh database).")
    ] = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
    claims: Annotated[int, typer.Option(help="Member claims sampled.")] = 1_000,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """One request served by two pools of `devices` 3 kW devices through the real oracle
    process and store: onboarding (batch registration, one consent per owner of 200
    devices), readings signed and ingested over HTTP, the oracle's measurement, report and
    settlement, then `claims` member claims. Prints each phase's time, the gas of every
    transaction on the request's path, the measurement's parts against floors measured in
    the same run (the production functions on the oracle's store), and peak memory."""
    from gridflex.chain.anvil import increase_time
    from gridflex.chain.facts import read_request_facts
    from gridflex.rules.pools import consent_digest, dispatch_shares
    from gridflex.rules.reports import DeviceRecord
    from gridflex.rules.types import RequestSpec, RequestStatus

    phases: dict[str, float] = {}
    gas: dict[str, int] = {}
    zone = zone_id("FLEET-01")
    oracle_key = Account.create()
    started_all = time.perf_counter()
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        # --prune-history: a full history of 100,000 devices' onboarding is ~40 GB of anvil
        # state on disk (~/.foundry/anvil/tmp); the story only ever reads the latest state.
        anvil = stack.enter_context(
            AnvilProcess(extra_args=["--gas-limit", "200000000", "--prune-history", "64"])
        )
        artifacts = load_artifacts()
        client = ChainClient.from_url(anvil.url, anvil_dev_account(0).key.hex(), artifacts)
        governance = Protocol(client, deploy_protocol(client, ProtocolParams.local(), artifacts))
        save_deployment(governance.deployment, workdir)
        w3 = client.w3

        def funded(flex: int = 0) -> Protocol:
            account = Account.create()
            w3.provider.make_request("anvil_setBalance", [account.address, hex(10**24)])
            if flex:
                governance.send(governance.token.functions.transfer(account.address, flex))
            return governance.as_account(account)

        w3.provider.make_request("anvil_setBalance", [oracle_key.address, hex(10**24)])
        governance.seat_oracle(oracle_key, 1)
        db_url = None
        if store == "postgresql":
            db_url = stack.enter_context(_fresh_postgres(database_url))
        oracle, oracle_url = _start_oracle(workdir, anvil.url, db_url, {
            "GRIDFLEX_ORACLE_SIGNER_KEY": oracle_key.key.hex(),
            "GRIDFLEX_ORACLE_CLOCK": "chain",
            "GRIDFLEX_ORACLE_COMMITTEE_POLL_SECONDS": "0.5",
            "GRIDFLEX_ORACLE_REPORT_DELAY_SECONDS": str(FLEET_REPORT_DELAY_S),
        })  # fmt: skip
        stack.callback(oracle.kill)
        store_url = db_url or f"sqlite:///{workdir / 'oracle' / 'oracle.db'}"

        # ── onboarding: batch registration, one consent and one enrolment per owner ──
        _log(f"onboarding {devices} devices...")
        started = time.perf_counter()
        operators = [funded(10**6 * 10**18) for _ in range(2)]
        for operator in operators:
            operator.stake(10**6 * 10**18)
        pool_ids = [op.create_pool(1_500, f"fleet pool {i}") for i, op in enumerate(operators)]
        chain_id, registry = client.chain_id, governance.registry.address
        meters: list[tuple[int, bytes, Protocol]] = []
        register_gas = enroll_gas = 0
        for first in range(0, devices, FLEET_PER_OWNER):
            count = min(FLEET_PER_OWNER, devices - first)
            owner = funded()
            digest = device_key_proof_digest(owner.address, chain_id, registry)
            device_keys = [secrets.token_bytes(32) for _ in range(count)]
            proofs = [
                DeviceKey(
                    KeyType.SECP256K1, bytes.fromhex(Account.from_key(k).address[2:]),
                    sign_digest_secp256k1(k, digest),
                )
                for k in device_keys
            ]  # fmt: skip
            ids = owner.register_devices(DeviceKind.BATTERY, FLEET_DEVICE_W, zone, proofs)
            register_gas += _tx_gas(owner, governance.events(
                governance.registry, "DeviceRegistered", from_block=w3.eth.block_number,
                deviceId=ids[0])[0].tx_hash)  # fmt: skip
            pool = (first // FLEET_PER_OWNER) % 2
            deadline = owner.latest_block_timestamp() + 86_400
            consent = consent_digest(
                chain_id, governance.pools.address, pool_ids[pool], owner.address, ids, 0, deadline
            )
            signature = sign_digest_secp256k1(owner.client.account.key, consent)
            operators[pool].enroll(pool_ids[pool], owner.address, ids, 0, deadline, signature)
            enroll_gas += _tx_gas(operators[pool], governance.events(
                governance.pools, "MemberJoined", from_block=w3.eth.block_number,
                deviceId=ids[0])[0].tx_hash)  # fmt: skip
            meters += [(d, k, owner) for d, k in zip(ids, device_keys, strict=True)]
        phases["onboard_s"] = time.perf_counter() - started
        gas["registerBatch_per_device"] = register_gas // devices
        gas["enroll_per_device"] = enroll_gas // devices

        # ── the request, two pool bids, clearing ──
        increase_time(w3, 2)
        dso = funded()
        governance.grant_grid_operator(dso.address)
        token = dso.client.deploy(artifacts["FlexToken"], dso.address, 10**30)
        capacities = [governance.pool_capacity(p, zone) for p in pool_ids]
        bids_w = [c // 2 for c in capacities]
        now = governance.latest_block_timestamp()
        start = now - now % INTERVAL_S + 2 * 3600
        spec = RequestSpec(
            zone=zone, power_w=sum(bids_w), window_start=start, window_end=start + 4 * INTERVAL_S,
            price_cap_per_kwh=3 * 10**17, availability_price_per_kwh=0,
            gate_closure=start - INTERVAL_S, settlement_token=token.address,
            interval_seconds=INTERVAL_S, baseline_method=BaselineMethod.MBMA,
        )  # fmt: skip
        request_id, _ = dso.create_request(spec)
        bid_indices = [
            op.bid_as_pool(request_id, p, w, 2 * 10**17)
            for op, p, w in zip(operators, pool_ids, bids_w, strict=True)
        ]
        increase_time(w3, spec.gate_closure - governance.latest_block_timestamp())
        governance.clear(request_id)

        # ── readings: each member's node signs the interval before and the window ──
        increase_time(w3, spec.window_end + 1 - governance.latest_block_timestamp())
        _log("signing readings...")
        started = time.perf_counter()
        domain = meter_domain_separator(chain_id, registry)
        asked = dispatch_shares(bids_w[0], {d: FLEET_DEVICE_W for d, _, _ in meters})
        units = []
        for device_id, key, _ in meters:
            reduced = asked[device_id] * 2 * INTERVAL_S // 3600 * (70 + device_id % 30) // 100
            energy = (600, *[600 - reduced] * 4)
            units.append(
                sign_unit(
                    MeterUnit(device_id, start - INTERVAL_S, INTERVAL_S, 1, energy), domain, key
                )
            )
        phases["sign_s"] = time.perf_counter() - started
        _log(f"ingesting {len(units)} units...")
        started = time.perf_counter()
        batches = [units[i : i + 500] for i in range(0, len(units), 500)]

        def post(batch: list[MeterUnit]) -> None:
            body = {"units": [u.to_json() for u in batch]}
            httpx.post(oracle_url + "/v1/readings", json=body, timeout=300).raise_for_status()

        with ThreadPoolExecutor(4) as pool_executor:
            list(pool_executor.map(post, batches))
        phases["ingest_s"] = time.perf_counter() - started

        # ── the oracle measures, signs and posts the report ──
        _log("waiting for the report...")
        increase_time(w3, FLEET_REPORT_DELAY_S + 1)
        started = time.perf_counter()
        while governance.request(request_id).status != RequestStatus.REPORTED:
            if oracle.poll() is not None:
                raise RuntimeError((workdir / "oracle.log").read_text()[-4000:])
            time.sleep(0.5)
        phases["report_s"] = time.perf_counter() - started
        (submitted,) = governance.report_submissions(request_id)
        gas["submitReport"] = _tx_gas(governance, submitted.tx_hash)

        # The production measurement on the oracle's own store, timed against floors.
        facts = read_request_facts(governance, request_id)
        engine = create_oracle_engine(OracleSettings(database_url=store_url))
        read_s, bare_s, inputs = _timed_reads(engine, facts)
        engine.dispose()
        floor_s, _ = _best_of(3, inputs.history.sum)
        compute_s, report = _best_of(3, lambda: compute_report(facts, inputs, "0x" + "42" * 32))
        assert report.trees.delivered_wh == governance.reported_delivery(request_id)

        increase_time(w3, governance.dispute_window() + 1)
        started = time.perf_counter()
        while governance.request(request_id).status != RequestStatus.SETTLED:
            time.sleep(0.5)
        phases["settle_s"] = time.perf_counter() - started
        settled = governance.events(governance.market, "RequestSettled", requestId=request_id)
        gas["finalize"] = _tx_gas(governance, settled[0].tx_hash)
        for name, event in (("createRequest", "RequestCreated"), ("clear", "RequestCleared")):
            logged = governance.events(governance.market, event, requestId=request_id)
            gas[name] = _tx_gas(governance, logged[0].tx_hash)
        placed = governance.events(governance.market, "PoolBidPlaced", requestId=request_id)
        gas["bidAsPool"] = max(_tx_gas(governance, e.tx_hash) for e in placed)

        # ── member claims, sampled ──
        _log(f"claiming {claims} members' shares...")
        started = time.perf_counter()
        claim_gas, paid = [], 0
        rng = random.Random(7)
        for device_id, _, owner in rng.sample(meters, min(claims, len(meters))):
            body = httpx.get(
                f"{oracle_url}/v1/reports/{request_id}/devices/{device_id}", timeout=60
            ).json()
            record = DeviceRecord.from_json(body["record"])
            proof = [bytes.fromhex(n[2:]) for n in body["recordProof"]]
            paid += owner.claim_member_shares(request_id, [record], [proof])
            paid_event = governance.events(
                governance.pools, "MemberPaid", from_block=w3.eth.block_number, deviceId=device_id
            )
            claim_gas.append(_tx_gas(owner, paid_event[-1].tx_hash))
        phases["claims_s"] = time.perf_counter() - started
        gas["claim_1device_mean"] = sum(claim_gas) // len(claim_gas)
        oracle_rss = _rss_gib(oracle.pid)

    result = {
        "benchmark": "fleet",
        "store": store,
        "devices": devices,
        "owners": -(-devices // FLEET_PER_OWNER),
        "bids": [int(i) for i in bid_indices],
        "phases_s": {k: round(v, 1) for k, v in phases.items()},
        "total_s": round(time.perf_counter() - started_all, 1),
        "units_per_s": round(len(units) / phases["ingest_s"]),
        "read_s": round(read_s, 3),
        "bare_read_s": round(bare_s, 3),
        "read_ratio": round(read_s / bare_s, 2),
        "compute_s": round(compute_s, 3),
        "numpy_floor_s": round(floor_s, 5),
        "compute_ratio": round(compute_s / floor_s, 1),
        "measure_us_per_device": round((read_s + compute_s) / devices * 1e6, 1),
        "gas": gas,
        "claims": len(claim_gas),
        "claimed": str(paid),
        "peak_rss_gib": {
            "bench": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
            "oracle": oracle_rss,
        },
    }
    if as_json:
        print(json.dumps(result))
    else:
        for name, value in result.items():
            print(f"{name:>24}: {value}")


# ─── Sustained ingest load ─────────────────────────────────────────────────────────────


@dataclass
class _LoadLog:
    """What the client saw, appended from its worker threads."""

    latencies_s: list[float] = field(default_factory=list)
    """Per request: from its scheduled send time to the answer (no coordinated omission)."""
    acked_units: list[MeterUnit] = field(default_factory=list)
    acked_readings: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


LOAD_CHAIN_BEHIND_S = 50 * SECONDS_PER_DAY
FLEET_CADENCE_LOAD = (
    "load", "--devices", "100000", "--intervals-per-unit", "1", "--units-per-request", "500",
    "--rate", "20000", "--duration", "60", "--workers", "2",
    "--database-url", "postgresql://postgres@127.0.0.1:5432/postgres",
)  # fmt: skip
"""The live-ingest figure of issue 14: a fleet of 100,000 devices, one reading per unit."""


def _paced_units(
    keys: list[tuple[int, bytes]],
    domain: bytes,
    requests: int,
    units_per_request: int,
    intervals_per_unit: int,
    rng: random.Random,
) -> list[list[MeterUnit]]:
    """Signed units for `requests` batches, every device's intervals consecutive and in the
    past: what a fleet of nodes sends while catching up on its history."""
    units_per_device = math.ceil(requests * units_per_request / len(keys))
    span_s = units_per_device * intervals_per_unit * INTERVAL_S
    if span_s > LOAD_CHAIN_BEHIND_S - 2 * SECONDS_PER_DAY:
        raise typer.BadParameter(
            f"each device would send {span_s // SECONDS_PER_DAY} days of readings: more "
            "than the chain's past holds; use more devices or fewer readings"
        )
    first = (int(time.time()) - span_s - SECONDS_PER_DAY) // SECONDS_PER_DAY * SECONDS_PER_DAY
    slots = (
        (sequence, device_id, device_key)
        for sequence in range(units_per_device)
        for device_id, device_key in keys
    )
    units = []
    for sequence, device_id, device_key in itertools.islice(slots, requests * units_per_request):
        start = first + sequence * intervals_per_unit * INTERVAL_S
        energy = tuple(rng.randint(-2_500, 2_500) for _ in range(intervals_per_unit))
        unit = MeterUnit(device_id, start, INTERVAL_S, sequence, energy)
        units.append(sign_unit(unit, domain, device_key))
    return [units[i : i + units_per_request] for i in range(0, len(units), units_per_request)]


def _post_paced(
    url: str, batch: list[MeterUnit], body: bytes, due: float, http: httpx.Client, log: _LoadLog
) -> None:
    delay = due - time.perf_counter()
    if delay > 0:
        time.sleep(delay)
    try:
        response = http.post(
            url + "/v1/readings", content=body, headers={"content-type": "application/json"}
        )
        outcome = str(response.status_code)
        acked = response.status_code == 200 and all(
            result["status"] in ("accepted", "duplicate") for result in response.json()["results"]
        )
    except httpx.HTTPError as error:
        outcome, acked = type(error).__name__, False
    except (ValueError, KeyError, TypeError):  # a 200 whose body is not the answer contract
        outcome, acked = "malformed answer", False
    latency = time.perf_counter() - due
    with log.lock:
        log.latencies_s.append(latency)
        if acked:
            log.acked_units += batch
            log.acked_readings += sum(len(unit.energy_wh) for unit in batch)
        else:
            log.refused[outcome] = log.refused.get(outcome, 0) + 1


def _stored(database_url: str, acked: list[MeterUnit], domain: bytes) -> dict[str, int]:
    """Rows in the oracle's database, and how many acknowledged units are missing."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            readings = connection.execute(text("SELECT COUNT(*) FROM readings")).scalar_one()
            digests = {
                bytes(d) for (d,) in connection.execute(text("SELECT digest FROM meter_units"))
            }
    finally:
        engine.dispose()
    missing = sum(1 for digest in unit_digests(acked, domain) if digest not in digests)
    return {"readings_rows": readings, "unit_rows": len(digests), "acked_units_missing": missing}


@contextmanager
def _fresh_postgres(server_url: str) -> Iterator[str]:
    """A new database on the server of `server_url` (psycopg URL), dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    admin_url = make_url(server_url).set(drivername="postgresql")
    name = f"gridflex_load_{secrets.token_hex(4)}"
    admin = admin_url.render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.set(drivername="postgresql+psycopg", database=name).render_as_string(
            hide_password=False
        )
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _percentile(sorted_values: list[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, max(0, math.ceil(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


@app.command()
def load(
    rate: Annotated[float, typer.Option(help="Target readings per second.")] = 5_000,
    duration: Annotated[float, typer.Option(help="Seconds of sustained load.")] = 300,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="A PostgreSQL server URL (postgresql://user@host:port/db): the run uses a fresh "
            "database on that server. Default: a SQLite file."
        ),
    ] = None,
    devices: Annotated[int, typer.Option(help="Registered devices sending.")] = 1_000,
    units_per_request: Annotated[int, typer.Option(help="Signed units per HTTP request.")] = 10,
    intervals_per_unit: Annotated[int, typer.Option(help="15-minute readings per unit.")] = 16,
    clients: Annotated[int, typer.Option(help="Concurrent client connections.")] = 8,
    workers: Annotated[
        int,
        typer.Option(
            help="`gridflex oracle serve` processes over the one store, the client spreading "
            "requests over them as a load balancer would (the oracle scales out behind its API)."
        ),
    ] = 1,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Paced ingest at `rate` readings/s for `duration` s; proves no acknowledged loss."""
    if database_url is not None and not database_url.startswith("postgres"):
        raise typer.BadParameter(
            "only PostgreSQL URLs; SQLite is the default", param_hint="--database-url"
        )
    readings_per_request = units_per_request * intervals_per_unit
    requests = math.ceil(rate * duration / readings_per_request)
    period_s = readings_per_request / rate
    rng = random.Random(11)
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        # The chain starts LOAD_CHAIN_BEHIND_S in the past: devices registered on it exist
        # before the past intervals the fleet sends (a reading before its device's
        # registration is refused), and the oracle's reading-age limit still admits them.
        genesis = int(time.time()) - LOAD_CHAIN_BEHIND_S
        anvil = stack.enter_context(
            AnvilProcess(extra_args=["--prune-history", "64", "--timestamp", str(genesis)])
        )
        store_url = (
            stack.enter_context(_fresh_postgres(database_url))
            if database_url is not None
            else f"sqlite:///{workdir / 'oracle' / 'oracle.db'}"
        )
        domain, keys = _deploy_with_devices(anvil, workdir, devices)
        _log(f"signing {requests * units_per_request} units of {intervals_per_unit} intervals...")
        batches = _paced_units(keys, domain, requests, units_per_request, intervals_per_unit, rng)
        bodies = [json.dumps({"units": [u.to_json() for u in b]}).encode() for b in batches]
        oracles = [
            _start_oracle(workdir, anvil.url, None if database_url is None else store_url)
            for _ in range(workers)
        ]
        urls = [url for _, url in oracles]
        log = _LoadLog()
        try:
            _log(f"{requests} requests of {readings_per_request} readings, one every "
                 f"{period_s * 1000:.1f} ms, {clients} connections...")  # fmt: skip
            https = [stack.enter_context(httpx.Client(timeout=60)) for _ in range(clients)]
            started = time.perf_counter() + 0.5
            with ThreadPoolExecutor(clients) as pool:
                sends = [
                    pool.submit(
                        _post_paced,
                        urls[index % workers],
                        batch,
                        body,
                        started + index * period_s,
                        https[index % clients],
                        log,
                    )
                    for index, (batch, body) in enumerate(zip(batches, bodies, strict=True))
                ]
                for send in sends:
                    send.result()  # a bug in the client must not vanish into a thread
            elapsed = time.perf_counter() - started
        finally:
            for oracle, _ in oracles:
                oracle.terminate()
            for oracle, _ in oracles:
                oracle.wait(timeout=30)
        stored = _stored(store_url, log.acked_units, domain)

    # Raw signature recovery of (up to 20,000 of) the same units, one core, this process:
    # the floor every oracle's ingest stands on.
    sample = [u for b in batches for u in b][:20_000]
    digests = [unit_digest(u, domain) for u in sample]
    recoverable = [u.signature[:64] + bytes((u.signature[64] - 27,)) for u in sample]
    t0 = time.perf_counter()
    for digest, signature in zip(digests, recoverable, strict=True):
        PublicKey.from_signature_and_message(signature, digest, hasher=None)
    raw_recover_per_s = len(sample) / (time.perf_counter() - t0)
    latencies = sorted(log.latencies_s)
    result = {
        "benchmark": "load",
        "database": "postgresql" if database_url else "sqlite (WAL, synchronous=FULL)",
        "workers": workers,
        "devices": devices,
        "intervals_per_unit": intervals_per_unit,
        "units_per_request": units_per_request,
        "target_readings_per_s": rate,
        "duration_s": round(elapsed, 1),
        "requests": requests,
        "readings_per_request": readings_per_request,
        "acked_readings": log.acked_readings,
        "achieved_readings_per_s": round(log.acked_readings / elapsed),
        "achieved_units_per_s": round(len(log.acked_units) / elapsed),
        "raw_recover_per_s": round(raw_recover_per_s),
        "units_to_raw_recover": round(len(log.acked_units) / elapsed / raw_recover_per_s, 3),
        "refused_requests": log.refused,
        "latency_p50_ms": round(_percentile(latencies, 0.50) * 1000, 1),
        "latency_p95_ms": round(_percentile(latencies, 0.95) * 1000, 1),
        "latency_p99_ms": round(_percentile(latencies, 0.99) * 1000, 1),
        "latency_max_ms": round(latencies[-1] * 1000, 1),
        **stored,
        "lost_acked_readings": max(0, log.acked_readings - stored["readings_rows"]),
    }
    if as_json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>26}: {value}")
    if stored["acked_units_missing"] or stored["readings_rows"] < log.acked_readings:
        raise typer.Exit(1)


def _fill_explorer(engine: Any, requests: int, readings: int, devices: int) -> dict[str, Any]:
    """Synthetic chain events folded by the indexer's projection, plus oracle data."""
    from sqlmodel import Session

    from explorer.models import (
        ChainEvent,
        DeviceResult,
        EventInterval,
        IndexedBlock,
        IndexerCursor,
        Reading,
    )
    from explorer.projection import apply_event

    rng = random.Random(11)
    owners = [f"0x{index + 1:040x}" for index in range(devices // 2)]
    operator, token, oracle = "0x" + "a" * 40, "0x" + "b" * 40, "0x" + "c" * 40
    zone = "0x" + "d" * 64
    clock = 1_780_000_000
    block = 0
    events: list[ChainEvent] = []

    def emit(contract: str, name: str, **args: Any) -> None:
        nonlocal block, clock
        block += 1
        clock += 12
        events.append(
            ChainEvent(
                block_number=block, block_hash=f"0x{block:064x}", log_index=0,
                tx_hash=f"0x{block:064x}", timestamp=clock, contract=contract, name=name,
                args=json.dumps(args),
            )
        )  # fmt: skip

    emit("OracleCommittee", "OracleAdded", oracle=oracle, id=1, bond=10**21)
    for device_id in range(1, devices + 1):
        owner = owners[(device_id - 1) // 2]
        emit("DeviceRegistry", "DeviceRegistered", deviceId=device_id, owner=owner, zone=zone,
             kind=device_id % 6, capacityW=5_000 + 1_000 * (device_id % 5), keyType=0,
             keyX="0x" + "0" * 64, keyY="0x" + "0" * 64)  # fmt: skip
    for owner in owners:
        emit("Staking", "Staked", account=owner, amount=1_000 * 10**18)
    results, intervals = [], []
    for request_id in range(1, requests + 1):
        start = clock - clock % 900 + 7200
        params = {
            "zone": zone, "direction": 0, "powerW": 40_000, "windowStart": start,
            "windowEnd": start + 3600, "intervalSeconds": 900, "priceCapPerKWh": 25 * 10**16,
            "availabilityPricePerKWh": 10**16, "gateClosure": start - 1800,
            "baselineMethod": 0, "pricingRule": 0, "settlementToken": token,
        }  # fmt: skip
        emit("FlexMarket", "RequestCreated", requestId=request_id, operator=operator,
             zone=zone, params=params, escrow=105 * 10**17)  # fmt: skip
        chosen = rng.sample(range(1, devices + 1), 8)
        for bid_index in range(4):
            pair = sorted(chosen[2 * bid_index : 2 * bid_index + 2])
            bidder = owners[(pair[0] - 1) // 2]
            emit("FlexMarket", "BidPlaced", requestId=request_id, bidIndex=bid_index,
                 bidder=bidder, powerW=10_000, pricePerKWh=(10 + bid_index) * 10**16,
                 bond=10**20, deviceIds=pair)  # fmt: skip
            emit("Staking", "StakeLocked", account=bidder, by=oracle, amount=10**20)
        for bid_index in range(4):
            emit("FlexMarket", "Awarded", requestId=request_id, bidIndex=bid_index,
                 bidder=owners[0], awardedW=10_000, pricePerKWh=10**17)  # fmt: skip
        emit("FlexMarket", "RequestCleared", requestId=request_id, awardedW=40_000,
             clearingPrice=13 * 10**16, acceptedBids=4)  # fmt: skip
        root = f"0x{request_id:064x}"
        emit("FlexMarket", "ReportSubmitted", requestId=request_id, round=0,
             report={"devicesRoot": root, "readingsRoot": root}, deliveredWh=[9_000] * 4,
             signerBitmap=1, disputeEndsAt=clock + 3600)  # fmt: skip
        for bid_index in range(4):
            emit("FlexMarket", "BidSettled", requestId=request_id, bidIndex=bid_index,
                 bidder=owners[0], deliveredWh=9_000, utilization=9 * 10**17,
                 availability=9 * 10**16, fee=99 * 10**14, slashed=0)  # fmt: skip
        emit("FlexMarket", "RequestSettled", requestId=request_id, payouts=39_204 * 10**14,
             fees=396 * 10**14, refund=654 * 10**16, slashed=0)  # fmt: skip
        for bid_index in range(4):
            for device_id in chosen[2 * bid_index : 2 * bid_index + 2]:
                results.append(DeviceResult(
                    request_id=request_id, round=0, device_id=device_id, bid_index=bid_index,
                    baseline_wh=8_000, metered_wh=3_500, delivered_wh=4_500, quality=0,
                    source="http://oracle", devices_root=root,
                ))  # fmt: skip
                for offset in range(0, 3600, 900):
                    intervals.append(EventInterval(
                        request_id=request_id, device_id=device_id, interval_start=start + offset,
                        baseline_wh=2_000, metered_wh=875, delivered_wh=1_125,
                    ))  # fmt: skip
    per_device = readings // devices
    first = clock - per_device * 900
    with Session(engine) as session:
        session.add(IndexerCursor(chain_id=31337, genesis_hash="0x0", deployed_at_block=0,
                                  deployment_block_hash="0x0", next_block=block + 1,
                                  chain_head=block))  # fmt: skip
        session.add(IndexedBlock(number=block, hash=f"0x{block:064x}", timestamp=clock))
        for event in events:
            session.add(event)
            apply_event(session, event)
        session.add_all(results)
        session.add_all(intervals)
        session.add_all(
            Reading(device_id=device_id, interval_start=first + 900 * i,
                    energy_wh=rng.randint(-500, 2_500), unit_digest="0x" + "e" * 64)
            for device_id in range(1, devices + 1) for i in range(per_device)
        )  # fmt: skip
        session.commit()
    return {"events": len(events), "owner": owners[0], "device": 1, "request": requests // 2}


@app.command()
def explorer(
    requests: Annotated[int, typer.Option(help="Settled requests indexed.")] = 100,
    readings: Annotated[int, typer.Option(help="Signed readings indexed.")] = 10_000,
    devices: Annotated[int, typer.Option(help="Devices the readings are spread over.")] = 20,
    repeat: Annotated[int, typer.Option(help="Requests per page measured.")] = 30,
    database_url: Annotated[str | None, typer.Option(help="Default: a SQLite file.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Server time of each explorer page over a filled database (p50/p95/max, ms)."""
    from fastapi.testclient import TestClient

    from explorer.service import build_app, open_context
    from explorer.settings import ExplorerSettings
    from gridflex.chain.connect import connect
    from gridflex.chain.deployments import Deployment

    with tempfile.TemporaryDirectory() as workdir:
        settings = ExplorerSettings(data_dir=Path(workdir), database_url=database_url)
        # No chain: the pages read only the database (the verify check is not measured).
        context = open_context(
            settings, connect(settings.rpc_url), Deployment(chain_id=31337, deployed_at_block=0)
        )
        _log(f"filling: {requests} requests, {readings} readings over {devices} devices...")
        filled = _fill_explorer(context.engine, requests, readings, devices)
        pages = {
            "overview": "/",
            "requests": "/requests",
            "request": f"/requests/{filled['request']}",
            "devices": "/devices",
            "device": f"/devices/{filled['device']}",
            "account": f"/accounts/{filled['owner']}",
            "api_overview": "/api/overview",
            "api_request": f"/api/requests/{filled['request']}",
            "api_device": f"/api/devices/{filled['device']}",
            "api_readings_page": f"/api/devices/{filled['device']}/readings?limit=1000",
            "settlements_csv": "/api/settlements.csv",
        }
        timings: dict[str, dict[str, float]] = {}
        with TestClient(build_app(context)) as client:
            for name, path in pages.items():
                samples = []
                for attempt in range(repeat + 3):
                    answer = client.get(path)
                    answer.raise_for_status()
                    if attempt >= 3:  # warm-up: first template compile, caches
                        samples.append(float(answer.headers["Server-Timing"].split("dur=")[1]))
                samples.sort()
                timings[name] = {
                    "p50_ms": round(samples[len(samples) // 2], 2),
                    "p95_ms": round(samples[min(len(samples) - 1, int(len(samples) * 0.95))], 2),
                    "max_ms": round(samples[-1], 2),
                    "bytes": len(answer.content),
                }
        context.engine.dispose()
        context.http.close()
    result = {
        "benchmark": "explorer",
        "database": "sqlite" if database_url is None else database_url.split(":", 1)[0],
        "requests": requests,
        "readings": readings,
        "devices": devices,
        "events": filled["events"],
        "repeat": repeat,
        "pages": timings,
    }
    if as_json:
        print(json.dumps(result))
    else:
        print(json.dumps(result, indent=2))


@app.command()
def demo(
    devices: Annotated[int, typer.Option(help="Devices in the demo network.")] = 50,
    runs: Annotated[int, typer.Option(min=1, help="Repetitions.")] = 3,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """`gridflex demo --json` end to end, timed."""
    samples = []
    for run in range(runs):
        _log(f"demo run {run + 1}/{runs} with {devices} devices...")
        started = time.perf_counter()
        completed = subprocess.run(
            [sys.executable, "-m", "cli.main", "demo", "--json", "--devices",
             str(devices)],
            capture_output=True, text=True, timeout=900, cwd=REPO_ROOT, check=False,
        )  # fmt: skip
        wall_s = time.perf_counter() - started
        if completed.returncode != 0:
            raise SystemExit(f"demo failed:\n{completed.stderr[-4000:]}")
        summary = json.loads(completed.stdout)
        samples.append((summary["seconds"], round(wall_s, 1), summary["phases"]))
    samples.sort(key=lambda sample: sample[0])
    story = [s[0] for s in samples]
    wall = sorted(s[1] for s in samples)
    result = {
        "benchmark": "demo",
        "devices": devices,
        "runs": runs,
        "story_s": {"min": story[0], "median": story[len(story) // 2], "max": story[-1]},
        "wall_s": {"min": wall[0], "median": wall[len(wall) // 2], "max": wall[-1]},
        "median_phases": samples[len(samples) // 2][2],
    }
    if as_json:
        print(json.dumps(result))
    else:
        print(json.dumps(result, indent=2))


# ─── make bench ───────────────────────────────────────────────────────────────────────

BLOCK_START, BLOCK_END = "<!-- make bench: start -->", "<!-- make bench: end -->"
GAS_TARGETS = {
    "registerDevice": 120_000, "registerDeviceP256": 120_000, "bid_5devices": 150_000,
    "submitReport_3sigs_10bids": 150_000, "finalize_10bids_perBid": 60_000,
    "withdraw": 50_000, "challenge_96intervals": 260_000, "rebut_96intervals": 150_000,
    "resolve_2signers": 200_000,
}  # fmt: skip


def _command_output(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, check=False).stdout
    except OSError:
        return ""


def _machine() -> dict[str, str]:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        "unknown",
    )  # fmt: skip
    memory_kib = int(Path("/proc/meminfo").read_text().split()[1])
    forge = next(iter(sorted(REPO_ROOT.glob("node_modules/@foundry-rs/forge-*/bin/forge"))), None)
    solc = _command_output([str(REPO_ROOT / "scripts" / "solc"), "--version"]).strip()
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "memory": f"{memory_kib / 2**20:.0f} GiB",
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "python": sys.version.split()[0],
        "forge": _command_output([str(forge), "--version"]).splitlines()[0] if forge else "-",
        "solc": solc.splitlines()[-1] if solc else "-",
    }


def _run_json(*args: str, timeout: float = 1800) -> dict:
    argv = [sys.executable, str(Path(__file__).resolve()), *args, "--json"]
    _log("$ python scripts/bench.py " + " ".join([*args, "--json"]))
    completed = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT, check=False
    )
    if completed.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{completed.stderr[-4000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _gas() -> dict[str, int]:
    forge = next(iter(sorted(REPO_ROOT.glob("node_modules/@foundry-rs/forge-*/bin/forge"))))
    _log("$ forge test --match-contract Gas")
    subprocess.run(
        [str(forge), "test", "--match-contract", "Gas"], cwd=REPO_ROOT, check=True,
        capture_output=True,
    )  # fmt: skip
    snapshot = json.loads((REPO_ROOT / "snapshots" / "gridflex.json").read_text())
    return {name: int(value) for name, value in snapshot.items()}


def _count(refused: int | dict[str, int]) -> int:
    """Refused requests: a total, or counts by reason."""
    return sum(refused.values()) if isinstance(refused, dict) else int(refused)


def _table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def render_block(machine: dict[str, str], results: dict[str, dict]) -> str:
    """The generated markdown between the markers (pure: tested without running anything)."""
    parts = [
        BLOCK_START,
        "## Latest `make bench` run",
        "",
        _table(["machine", ""], [[k, v] for k, v in machine.items()]),
    ]
    if "gas" in results:
        gas = results["gas"]
        parts += [
            "", "### Gas (snapshot)", "", "Command: `forge test --match-contract Gas` "
            "(writes `snapshots/gridflex.json`).", "",
            _table(["operation", "gas", "target", "met"], [
                [name, f"{value:,}", f"{GAS_TARGETS[name]:,}" if name in GAS_TARGETS else "-",
                 ("yes" if value <= GAS_TARGETS[name] else "**no**") if name in GAS_TARGETS
                 else "-"]
                for name, value in sorted(gas.items())
            ]),
        ]  # fmt: skip
    if "ingest" in results:
        r = results["ingest"]
        parts += [
            "", "### Oracle ingest", "", "Command: `python scripts/bench.py ingest --json`.", "",
            _table(["readings/s (HTTP, SQLite)", "units/s", "signatures/s (1 core)",
                    "raw ecrecover/s (1 core)", "ratio"],
                   [[f"{r['readings_per_s']:,.0f}", f"{r['units_per_s']:,.0f}",
                     f"{r['signatures_per_s']:,.0f}", f"{r['raw_recover_per_s']:,.0f}",
                     f"{r['signature_ratio']:.2f}"]]),
        ]  # fmt: skip
    settles = [results[key] for key in ("settle", "settle_postgresql") if key in results]
    if settles:
        parts += [
            "", "### Measurement of one request at scale (the oracle's own path)", "",
            "Command: `python scripts/bench.py settle --devices N --store STORE --json`: "
            "`read_inputs` against a bare `fetchall` of the same SQL, `compute_report` against "
            "one numpy pass over the same readings (targets <= 2x and <= 20x).", "",
            _table(["store", "devices", "read_s", "bare read_s", "read ratio", "compute_s",
                    "numpy floor_s", "compute ratio", "bytes / reading", "peak RSS"],
                   [[r["store"], f"{r['devices']:,}", r["read_s"], r["bare_read_s"],
                     f"{r['read_ratio']}x", r["compute_s"], r["numpy_floor_s"],
                     f"{r['compute_ratio']}x", r["state_bytes_per_reading"],
                     f"{r['peak_rss_gib']} GiB"] for r in settles]),
        ]  # fmt: skip
    fleets = [results[key] for key in ("fleet", "fleet_postgresql") if key in results]
    if fleets:
        parts += [
            "", "### A request served by pools of 100,000 devices (issue 14)", "",
            "Command: `python scripts/bench.py fleet --devices 100000 --store STORE --json`: "
            "onboarding (batch registration, one consent per owner of 200 devices), readings "
            "signed and ingested over HTTP by a real oracle process, its report and settlement, "
            "1,000 member claims. Measurement: the oracle's own functions on its store, against "
            "a bare read and one numpy pass (targets <= 2x and <= 20x).", "",
            _table(["store", "devices", "onboard s", "ingest s", "units/s", "report s",
                    "read ratio", "compute ratio", "us / device", "claims s", "peak RSS oracle"],
                   [[r["store"], f"{r['devices']:,}", r["phases_s"]["onboard_s"],
                     r["phases_s"]["ingest_s"], f"{r['units_per_s']:,}",
                     r["phases_s"]["report_s"], f"{r['read_ratio']}x",
                     f"{r['compute_ratio']}x", r["measure_us_per_device"],
                     r["phases_s"]["claims_s"], f"{r['peak_rss_gib']['oracle']} GiB"]
                    for r in fleets]),
            "", "Gas on the request's path:", "",
            _table(["transaction", *[r["store"] for r in fleets]],
                   [[name, *[f"{r['gas'][name]:,}" for r in fleets]]
                    for name in fleets[0]["gas"]]),
        ]  # fmt: skip
    if "demo" in results:
        r = results["demo"]
        story, wall = r["story_s"], r["wall_s"]
        parts += [
            "", "### `make demo`", "",
            f"Command: `python scripts/bench.py demo --devices {r['devices']} --runs "
            f"{r['runs']} --json` (`gridflex demo --json`: anvil, 3 oracle processes, node "
            "processes, the market story). Target: the story in under 2 minutes.", "",
            _table(["devices", "runs", "story s (min / median / max)", "wall s (median)"],
                   [[r["devices"], r["runs"],
                     f"{story['min']} / {story['median']} / {story['max']}", wall["median"]]]),
            "", "Phases of the median run:", "",
            _table(["phase", "s"], [[p["phase"], p["seconds"]] for p in r["median_phases"]]),
        ]  # fmt: skip
    if "explorer" in results:
        r = results["explorer"]
        parts += [
            "", "### Explorer pages (server time)", "",
            f"Command: `python scripts/bench.py explorer --json` ({r['requests']} settled "
            f"requests, {r['readings']:,} readings, {r['database']}, {r['repeat']} requests per "
            "page; the app's `Server-Timing`). Target: under 300 ms.", "",
            _table(["page", "p50 ms", "p95 ms", "max ms"],
                   [[name, t["p50_ms"], t["p95_ms"], t["max_ms"]]
                    for name, t in r["pages"].items()]),
        ]  # fmt: skip
    if "load" in results:
        r = results["load"]
        parts += [
            "", "### Sustained ingest", "",
            f"Command: `python scripts/bench.py load --duration {r['duration_s']:.0f} --json` "
            "(the 5-minute runs on both stores are recorded further down with their "
            "commands).", "",
            _table(["store", "s", "acked readings", "readings/s", "p50 / p95 / p99 / max ms",
                    "lost", "refused"],
                   [[r["database"], r["duration_s"], f"{r['acked_readings']:,}",
                     f"{r['achieved_readings_per_s']:,}",
                     f"{r['latency_p50_ms']} / {r['latency_p95_ms']} / {r['latency_p99_ms']} / "
                     f"{r['latency_max_ms']}", r["lost_acked_readings"],
                     _count(r["refused_requests"])]]),
        ]  # fmt: skip
    if "load_fleet" in results:
        r = results["load_fleet"]
        parts += [
            "", "### Live ingest at fleet cadence", "",
            f"Command: `python scripts/bench.py {' '.join(FLEET_CADENCE_LOAD)} --json`: "
            f"single-interval units from {r['devices']:,} devices, {r['workers']} "
            "`gridflex oracle serve` workers over one store. Target: 17,000 units/s, "
            "stated as a ratio to raw signature recovery (one core, same run).", "",
            _table(["store", "workers", "units/s", "raw recovery/s", "ratio", "lost", "refused"],
                   [[r["database"], r["workers"], f"{r['achieved_units_per_s']:,}",
                     f"{r['raw_recover_per_s']:,}", r["units_to_raw_recover"],
                     r["lost_acked_readings"], _count(r["refused_requests"])]]),
        ]  # fmt: skip
    parts.append(BLOCK_END)
    return "\n".join(parts)


def write_block(path: Path, block: str) -> None:
    """Replaces the generated block (or inserts it after the title) and leaves the rest."""
    text = path.read_text()
    if BLOCK_START in text and BLOCK_END in text:
        before, rest = text.split(BLOCK_START, 1)
        after = rest.split(BLOCK_END, 1)[1]
        text = before + block + after
    else:
        title, _, body = text.partition("\n\n")
        text = f"{title}\n\n{block}\n\n{body}"
    path.write_text(text)


@app.command("all")
def run_all(
    write: Annotated[Path | None, typer.Option(help="Markdown file to rewrite.")] = None,
    demo_runs: Annotated[int, typer.Option(help="Demo repetitions.")] = 3,
    load_seconds: Annotated[int, typer.Option(help="Sustained ingest run length.")] = 60,
) -> None:
    """Every benchmark, then the generated tables (stdout, or --write FILE)."""
    machine = _machine()
    results: dict[str, dict] = {"gas": _gas()}
    results["ingest"] = _run_json("ingest")
    results["settle"] = _run_json("settle", "--devices", "100000")
    results["settle_postgresql"] = _run_json(
        "settle", "--devices", "100000", "--store", "postgresql"
    )
    results["fleet"] = _run_json("fleet", "--devices", "100000", timeout=3600)
    results["fleet_postgresql"] = _run_json(
        "fleet", "--devices", "100000", "--store", "postgresql", timeout=3600
    )
    results["demo"] = _run_json("demo", "--runs", str(demo_runs))
    results["explorer"] = _run_json("explorer")
    results["load"] = _run_json("load", "--duration", str(load_seconds))
    results["load_fleet"] = _run_json(*FLEET_CADENCE_LOAD, timeout=3600)
    block = render_block(machine, results)
    if write is None:
        print(block)
    else:
        write_block(write, block)
        _log(f"rewrote the generated block of {write}")


if __name__ == "__main__":
    app()
