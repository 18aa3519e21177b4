"""GridFlex benchmarks. Each subcommand measures one thing on real parts and prints a
summary (or JSON with --json); BENCHMARKS.md records the figures with these commands.

    python scripts/bench.py ingest [--devices 50] [--days 40] [--batch 50] [--json]

`ingest`: an Osaka anvil with the protocol deployed and devices registered; a real
`gridflex oracle serve` process on loopback with a SQLite file; signed 96-interval units
POSTed over HTTP in batches. Reports readings/s and units/s through the API, plus on one
core in this process: the oracle's verification path (digest + signature check against
the registered key) and raw coincurve ecrecover of the same digests, for comparison.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer
from coincurve import PublicKey
from eth_account import Account

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from gridflex.attestation import (  # noqa: E402
    DeviceSigningKey,
    MeterUnit,
    meter_domain_separator,
    sign_unit,
    unit_digest,
    verify_unit,
)
from gridflex.chain.anvil import AnvilProcess, anvil_dev_account, free_port  # noqa: E402
from gridflex.chain.client import ChainClient  # noqa: E402
from gridflex.chain.compiler import load_artifacts  # noqa: E402
from gridflex.chain.deploy import ProtocolParams, deploy_protocol  # noqa: E402
from gridflex.chain.deployments import save_deployment  # noqa: E402
from gridflex.chain.protocol import DeviceKind, Protocol, zone_id  # noqa: E402
from gridflex.eip712 import KeyType, secp256k1_device_key  # noqa: E402

app = typer.Typer(help=__doc__, no_args_is_help=True)
INTERVAL_S = 900
INTERVALS_PER_DAY = 96


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _start_oracle(workdir: Path, rpc_url: str) -> tuple[subprocess.Popen[bytes], str]:
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
    process = subprocess.Popen(
        [sys.executable, "-m", "gridflex.cli.main", "oracle", "serve", "--port", str(port)],
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


@app.callback()
def main() -> None:
    """Benchmarks on real parts; see each subcommand."""


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
        artifacts = load_artifacts()
        client = ChainClient.from_url(anvil.url, anvil_dev_account(0).key.hex(), artifacts)
        protocol = Protocol(client, deploy_protocol(client, ProtocolParams.local(), artifacts))
        save_deployment(protocol.deployment, workdir)
        chain_id, registry = client.chain_id, protocol.registry.address
        domain = meter_domain_separator(chain_id, registry)
        zone = zone_id("BENCH-01")

        _log(f"registering {devices} devices...")
        keys: list[tuple[int, bytes]] = []
        for _ in range(devices):
            device_key = Account.create().key
            proof = secp256k1_device_key(device_key, protocol.address, chain_id, registry)
            keys.append(
                (protocol.register_device(DeviceKind.BATTERY, 10_000, zone, proof), device_key)
            )

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


if __name__ == "__main__":
    app()
