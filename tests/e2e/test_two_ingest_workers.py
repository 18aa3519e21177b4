"""The oracle scales out behind the same API: two `gridflex oracle serve` processes over
one PostgreSQL database take a fleet's units concurrently, every unit sent to both at once
(a node retrying against a load balancer, or two balancers). Every acknowledged unit is
stored exactly once, the readings table holds each (device, interval) exactly once, and
nothing acknowledged is missing."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from support.oracle_process import start_oracle
from support.postgres import POSTGRES_ADMIN_URL, postgres_available

from gridflex.chain.anvil import AnvilProcess
from gridflex.chain.protocol import Protocol
from gridflex.rules.attestation import MeterUnit, meter_domain_separator, sign_unit
from gridflex.rules.eip712 import secp256k1_device_key
from gridflex.rules.types import DeviceKind, zone_id

pytestmark = pytest.mark.integration

DEVICES = 60
UNITS_PER_DEVICE = 6
INTERVALS_PER_UNIT = 4
INTERVAL = 900
BATCH = 25


@pytest.fixture
def shared_database() -> Iterator[str]:
    reason = postgres_available()
    if reason is not None:
        pytest.skip(reason)
    import psycopg

    name = f"gridflex_workers_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield name
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_two_ingest_workers_over_one_postgresql_lose_and_duplicate_nothing(
    anvil: AnvilProcess, e2e_protocol: Protocol, deployments_dir: Path, tmp_path: Path,
    shared_database: str,
) -> None:  # fmt: skip
    w3 = e2e_protocol.client.w3
    owner_account = Account.create()
    w3.provider.make_request("anvil_setBalance", [owner_account.address, hex(10**21)])
    owner = e2e_protocol.as_account(owner_account)
    device_keys = [bytes(Account.create().key) for _ in range(DEVICES)]
    proofs = [
        secp256k1_device_key(k, owner.address, w3.eth.chain_id, owner.registry.address)
        for k in device_keys
    ]
    ids = owner.register_devices(DeviceKind.HEAT_PUMP, 3_000, zone_id("NL-WORKERS-01"), proofs)
    registered = owner.latest_block_timestamp()
    first = registered - registered % INTERVAL + INTERVAL
    domain = meter_domain_separator(w3.eth.chain_id, owner.registry.address)
    units = [
        sign_unit(
            MeterUnit(
                device_id, first + u * INTERVALS_PER_UNIT * INTERVAL, INTERVAL, u + 1,
                tuple(100 + device_id + u * 10 + i for i in range(INTERVALS_PER_UNIT)),
            ),
            domain, key,
        )
        for device_id, key in zip(ids, device_keys, strict=True)
        for u in range(UNITS_PER_DEVICE)
    ]  # fmt: skip

    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{shared_database}"
    workers = []
    for number in range(2):
        env = {
            "GRIDFLEX_ORACLE_RPC_URL": anvil.url,
            "GRIDFLEX_ORACLE_DEPLOYMENTS_DIR": str(deployments_dir),
            "GRIDFLEX_ORACLE_DATA_DIR": str(tmp_path / f"worker{number}"),
            "GRIDFLEX_ORACLE_DATABASE_URL": url,
        }
        (tmp_path / f"worker{number}").mkdir()
        workers.append(start_oracle(tmp_path, env))
    try:
        rng = random.Random(14)
        batches = [units[i : i + BATCH] for i in range(0, len(units), BATCH)]
        # Every batch to both workers, in shuffled order, four requests at a time.
        sends = [(batch, worker) for batch in batches for worker in workers]
        rng.shuffle(sends)

        def send(item: tuple[list[MeterUnit], object]) -> list[str]:
            batch, worker = item
            body = {"units": [unit.to_json() for unit in batch]}
            response = httpx.post(worker.url + "/v1/readings", json=body, timeout=120)  # type: ignore[attr-defined]
            assert response.status_code == 200, response.text
            return [result["status"] for result in response.json()["results"]]

        with ThreadPoolExecutor(4) as pool:
            statuses = [s for batch_statuses in pool.map(send, sends) for s in batch_statuses]
    finally:
        for worker in workers:
            worker.stop()

    assert len(statuses) == 2 * len(units)
    assert set(statuses) <= {"accepted", "duplicate"}
    assert statuses.count("accepted") == len(units), "each unit accepted by exactly one worker"

    import psycopg

    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{shared_database}") as db:
        (stored_units,) = db.execute("SELECT count(*) FROM meter_units").fetchone()
        (readings,) = db.execute("SELECT count(*) FROM readings").fetchone()
        (distinct,) = db.execute(
            "SELECT count(*) FROM (SELECT DISTINCT device_id, interval_start FROM readings) d"
        ).fetchone()
        (evidence,) = db.execute("SELECT count(*) FROM conflict_evidence").fetchone()
    assert stored_units == len(units), "every acknowledged unit stored, none twice"
    assert readings == distinct == DEVICES * UNITS_PER_DEVICE * INTERVALS_PER_UNIT
    assert evidence == 0, "a unit stored twice is not a conflict"
