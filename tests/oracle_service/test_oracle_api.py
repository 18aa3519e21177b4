"""Acceptance tests against a real oracle process (`gridflex oracle serve`) on a real anvil
with the protocol deployed and devices registered: the answer contract, every bad input
as a 4xx with a reason and an unchanged database, public reads, health and metrics."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from eth_account import Account
from oracle_testkit import INTERVAL, SimulatedMeter, past_slot, row_counts
from sqlalchemy import Engine, create_engine
from support.oracle_process import OracleServer, start_oracle
from support.postgres import POSTGRES_ADMIN_URL, postgres_available
from web3 import Web3

from gridflex.chain.anvil import AnvilProcess, anvil_dev_account, free_port, increase_time
from gridflex.chain.client import ChainClient
from gridflex.chain.compiler import load_artifacts
from gridflex.chain.deploy import ProtocolParams, deploy_protocol
from gridflex.chain.deployments import save_deployment
from gridflex.chain.protocol import Protocol
from gridflex.rules.attestation import (
    MeterUnit,
    meter_domain_separator,
    unit_digest,
    verify_unit,
)
from gridflex.rules.eip712 import p256_device_key, secp256k1_device_key
from gridflex.rules.types import DeviceKind, zone_id

pytestmark = pytest.mark.integration

ZONE = zone_id("NL-AMS-01")
MAX_UNITS = 40
MAX_BODY = 256 * 1024
CHAIN_HEAD_START_DAYS = 180
"""The module's chain starts this many days before the wall clock (see `anvil`)."""


@dataclass
class Network:
    """A deployed protocol with registered meters, its deployment record, and an oracle."""

    protocol: Protocol
    deployments_dir: Path
    domain: bytes
    battery: SimulatedMeter  # secp256k1, 10 kW
    heat_pump: SimulatedMeter  # P-256, 5 kW
    oracle: OracleServer
    store: Engine
    workdir: Path

    def post(self, units: list[MeterUnit] | list[dict[str, object]]) -> httpx.Response:
        payload = [unit.to_json() if isinstance(unit, MeterUnit) else unit for unit in units]
        return httpx.post(self.oracle.url + "/v1/readings", json={"units": payload}, timeout=30)

    def register(self, meter_key: bytes | ec.EllipticCurvePrivateKey, capacity_w: int) -> int:
        chain_id = self.protocol.client.chain_id
        registry = self.protocol.registry.address
        owner = self.protocol.address
        if isinstance(meter_key, ec.EllipticCurvePrivateKey):
            key = p256_device_key(meter_key, owner, chain_id, registry)
        else:
            key = secp256k1_device_key(meter_key, owner, chain_id, registry)
        return self.protocol.register_device(DeviceKind.BATTERY, capacity_w, ZONE, key)

    def new_meter(self, capacity_w: int = 10_000) -> SimulatedMeter:
        meter = SimulatedMeter(0, capacity_w, bytes(Account.create().key), self.domain)
        meter.device_id = self.register(meter.key, capacity_w)
        return meter


def _oracle_env(network_dir: Path, rpc_url: str, **extra: str) -> dict[str, str]:
    return {
        "GRIDFLEX_ORACLE_RPC_URL": rpc_url,
        "GRIDFLEX_ORACLE_DEPLOYMENTS_DIR": str(network_dir),
        "GRIDFLEX_ORACLE_DATA_DIR": str(network_dir / "oracle"),
        "GRIDFLEX_ORACLE_REGISTRY_POLL_SECONDS": "0.2",
        # These tests give each case its own day, up to ~150 days back (the chain starts
        # before them, see `anvil`); the time bounds are tested in test_registry_history.py.
        "GRIDFLEX_ORACLE_MAX_READING_AGE_SECONDS": str(200 * 86_400),
    } | extra


@pytest.fixture(scope="module")
def anvil() -> Iterator[AnvilProcess]:
    """This module's own anvil, its chain CHAIN_HEAD_START_DAYS behind the wall clock the
    oracle judges ages by: the devices are registered before the past days the cases
    sign (a reading before its device's registration is refused, issue 12 finding 9)."""
    genesis = int(time.time()) - CHAIN_HEAD_START_DAYS * 86_400
    with AnvilProcess(extra_args=["--timestamp", str(genesis)]) as process:
        yield process


@pytest.fixture(scope="module")
def w3(anvil: AnvilProcess) -> Web3:
    return Web3(Web3.HTTPProvider(anvil.url))


@pytest.fixture(scope="module")
def network(
    anvil: AnvilProcess, w3: Web3, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Network]:
    artifacts = load_artifacts()
    client = ChainClient(w3, anvil_dev_account(0), artifacts)
    protocol = Protocol(client, deploy_protocol(client, ProtocolParams.local(), artifacts))
    workdir = tmp_path_factory.mktemp("oracle-network")
    save_deployment(protocol.deployment, workdir)
    domain = meter_domain_separator(client.chain_id, protocol.registry.address)
    oracle = start_oracle(
        workdir,
        _oracle_env(
            workdir,
            anvil.url,
            GRIDFLEX_ORACLE_MAX_UNITS_PER_BATCH=str(MAX_UNITS),
            GRIDFLEX_ORACLE_MAX_BODY_BYTES=str(MAX_BODY),
            GRIDFLEX_ORACLE_SQLITE_BUSY_TIMEOUT_MS="300",
        ),
    )
    store = create_engine(f"sqlite:///{workdir / 'oracle' / 'oracle.db'}")
    network = Network(protocol, workdir, domain, None, None, oracle, store, workdir)  # type: ignore[arg-type]
    network.battery = network.new_meter(10_000)
    heat_pump_key = ec.generate_private_key(ec.SECP256R1())
    network.heat_pump = SimulatedMeter(
        network.register(heat_pump_key, 5_000), 5_000, heat_pump_key, domain
    )
    yield network
    oracle.stop()
    store.dispose()


def test_batch_is_accepted_and_a_resend_is_an_idempotent_duplicate(network: Network) -> None:
    start = past_slot(10)
    units = [
        network.battery.unit(start, list(range(96))),
        network.heat_pump.unit(start, [-300] * 96),
    ]
    before = row_counts(network.store)

    first = network.post(units)
    assert first.status_code == 200, first.text
    assert first.json() == {
        "results": [
            {"index": 0, "status": "accepted", "reason": None},
            {"index": 1, "status": "accepted", "reason": None},
        ]
    }
    after = row_counts(network.store)
    assert after["meter_units"] == before["meter_units"] + 2
    assert after["readings"] == before["readings"] + 192

    resent = network.post(units)
    assert resent.status_code == 200
    assert [result["status"] for result in resent.json()["results"]] == ["duplicate"] * 2
    assert row_counts(network.store) == after


# ─── Bad input: each a 4xx with a reason, and nothing stored ───────────────────────────


def _forged(network: Network) -> list[MeterUnit]:
    signed = network.battery.unit(past_slot(20), [100, 200])
    return [replace(signed, energy_wh=(100, 201))]


def _unregistered(network: Network) -> list[MeterUnit]:
    return [SimulatedMeter.secp256k1(10**6, 10_000, network.domain).unit(past_slot(20), [1])]


def _wrong_chain_id(network: Network) -> list[MeterUnit]:
    other_domain = meter_domain_separator(1, network.protocol.registry.address)
    return [network.battery.unit(past_slot(21), [5], domain=other_domain)]


def _conflicting(network: Network) -> list[MeterUnit]:
    original = network.heat_pump.unit(past_slot(23), [40, 50])
    assert network.post([original]).status_code == 200
    return [network.heat_pump.unit(past_slot(23), [40, 51])]


def _far_future(network: Network) -> list[MeterUnit]:
    return [network.battery.unit(past_slot(-30), [1])]


def _implausible(network: Network) -> list[MeterUnit]:
    return [network.heat_pump.unit(past_slot(24), [1_876])]  # 5 kW x 0.25 h x 1.5 = 1,875


BAD_UNITS: dict[str, tuple[Callable[[Network], list[MeterUnit]], int, str]] = {
    "forged signature": (_forged, 422, "signature does not match"),
    "unregistered device": (_unregistered, 422, "unregistered device 1000000"),
    "wrong chainId": (_wrong_chain_id, 422, "signed for another chain"),
    "conflicting second value": (_conflicting, 409, "conflicting reading"),
    "far-future timestamp": (_far_future, 422, "in the future"),
    "implausible energy": (_implausible, 422, "implausible energy"),
}


@pytest.mark.parametrize("case", list(BAD_UNITS))
def test_bad_unit_is_refused_with_a_reason_and_nothing_changes(network: Network, case: str) -> None:
    build, status, reason = BAD_UNITS[case]
    bad_units = build(network)
    good = network.battery.unit(past_slot(100 + list(BAD_UNITS).index(case)), [3])
    before = row_counts(network.store)

    response = network.post([good, *bad_units])

    assert response.status_code == status, response.text
    answer = response.json()
    assert reason in answer["detail"]
    assert answer["results"][0] == {"index": 0, "status": "valid", "reason": None}
    assert answer["results"][1]["status"] == "rejected"
    assert reason in answer["results"][1]["reason"]
    after = row_counts(network.store)
    evidence_added = 1 if case == "conflicting second value" else 0
    assert after == before | {"conflict_evidence": before["conflict_evidence"] + evidence_added}


def test_a_reused_sequence_over_other_intervals_is_stored(network: Network) -> None:
    """Only the device key can sign under a used sequence: new intervals are readings like
    any others (a second value for a stored interval is the conflict case above)."""
    original = network.battery.unit(past_slot(22), [7, 8])
    assert network.post([original]).status_code == 200
    reused = network.battery.unit(past_slot(22) + 8 * INTERVAL, [9], sequence=original.sequence)

    response = network.post([reused])

    assert response.status_code == 200, response.text
    assert response.json()["results"] == [{"index": 0, "status": "accepted", "reason": None}]


def test_malformed_json_is_a_422_with_the_parser_error(network: Network) -> None:
    before = row_counts(network.store)
    response = httpx.post(
        network.oracle.url + "/v1/readings",
        content=b'{"units": [{"deviceId": 1,',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["detail"].startswith("malformed JSON")
    not_a_batch = httpx.post(network.oracle.url + "/v1/readings", json=[1, 2])
    assert not_a_batch.status_code == 422
    assert "expected" in not_a_batch.json()["detail"]
    assert row_counts(network.store) == before


def test_oversized_batches_and_bodies_are_413_with_the_limit(network: Network) -> None:
    before = row_counts(network.store)
    start = past_slot(40)
    too_many = [network.battery.unit(start + i * INTERVAL, [1]) for i in range(MAX_UNITS + 1)]
    response = network.post(too_many)
    assert response.status_code == 413
    assert f"at most {MAX_UNITS}" in response.json()["detail"]

    huge_body = json.dumps({"units": [], "padding": "x" * MAX_BODY}).encode()
    response = httpx.post(
        network.oracle.url + "/v1/readings", content=huge_body, headers=JSON_CONTENT
    )
    assert response.status_code == 413
    assert f"larger than {MAX_BODY} bytes" in response.json()["detail"]
    assert row_counts(network.store) == before


# ─── Hostile bodies (issue 12, findings 8 and 10) ───────────────────────────────────────

JSON_CONTENT = {"content-type": "application/json"}
DEEP = 100_000


def _still_serving(network: Network, slot: int) -> None:
    """The oracle process is alive and stores a valid batch after the attack."""
    assert network.oracle.alive, network.oracle.log()[-2000:]
    assert httpx.get(network.oracle.url + "/health", timeout=15).status_code == 200
    answer = network.post([network.battery.unit(past_slot(slot), [1, 2])])
    assert answer.status_code == 200, answer.text


def test_a_body_nested_100000_levels_deep_is_a_422_and_the_oracle_keeps_serving(
    network: Network,
) -> None:
    """The finding's payload: 195 KiB of brackets. It used to overflow the C stack of the
    JSON decoder (py_ecc raises the recursion limit) and kill the oracle with SIGSEGV."""
    before = row_counts(network.store)
    for body in (
        b"[" * DEEP + b"]" * DEEP,
        b'{"units": ' + b"[" * DEEP + b"]" * DEEP + b"}",
        b'{"units": [{"deviceId": ' + b"{" * DEEP,
    ):
        response = httpx.post(
            network.oracle.url + "/v1/readings", content=body, headers=JSON_CONTENT, timeout=30
        )
        assert response.status_code == 422, response.text
        assert "levels deep" in response.json()["detail"]
        assert response.json()["results"] == []
    assert row_counts(network.store) == before
    _still_serving(network, 81)


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"content-type": "text/plain"}, "is not application/json"),
        ({"content-type": "application/x-www-form-urlencoded"}, "is not application/json"),
        ({"content-type": "multipart/form-data; boundary=x"}, "is not application/json"),
        ({"content-type": "application/json; charset=latin-1"}, "must be UTF-8"),
        ({}, "missing Content-Type"),
    ],
)
def test_a_body_that_is_not_declared_json_is_a_415_and_nothing_is_stored(
    network: Network, headers: dict[str, str], reason: str
) -> None:
    """A browser sends text/plain and form bodies cross-origin without a preflight: a web
    page could post readings through its visitors. Such bodies are refused unread."""
    before = row_counts(network.store)
    unit = network.battery.unit(past_slot(82), [3])
    body = json.dumps({"units": [unit.to_json()]}).encode()
    response = httpx.post(
        network.oracle.url + "/v1/readings", content=body, headers=headers, timeout=30
    )
    assert response.status_code == 415, response.text
    assert reason in response.json()["detail"]
    assert row_counts(network.store) == before
    declared = httpx.post(
        network.oracle.url + "/v1/readings",
        content=body,
        headers={"content-type": "Application/JSON; charset=utf-8"},
        timeout=30,
    )
    assert declared.status_code == 200, declared.text


def test_duplicate_json_keys_are_a_422_naming_the_key(network: Network) -> None:
    """`{"energyWh": [1], "energyWh": [9999]}`: the last one used to win, so two readers
    of the same bytes could disagree about what was sent."""
    before = row_counts(network.store)
    unit = network.battery.unit(past_slot(83), [4]).to_json()
    signed = json.dumps(unit)
    for body in (
        signed[:-1] + ', "energyWh": [9999]}',
        json.dumps({"units": [unit]})[:-1] + ', "units": []}',
    ):
        wrapped = body if body.startswith('{"units"') else '{"units": [' + body + "]}"
        response = httpx.post(
            network.oracle.url + "/v1/readings",
            content=wrapped.encode(),
            headers=JSON_CONTENT,
            timeout=30,
        )
        assert response.status_code == 422, response.text
        assert "duplicate key" in response.json()["detail"]
    assert row_counts(network.store) == before


# ─── Non-canonical signatures (issue 12, finding 7) ─────────────────────────────────────

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
ECRECOVER = "0x0000000000000000000000000000000000000001"
P256_VERIFY = "0x0000000000000000000000000000000000000100"


def _malleated(signature: bytes, *, high_s: bool, raw_v: bool) -> bytes:
    r, s = signature[:32], int.from_bytes(signature[32:64], "big")
    if len(signature) == 64:
        return r + (P256_N - s).to_bytes(32, "big")
    v = signature[64]
    if high_s:
        s, v = SECP256K1_N - s, 55 - v  # 27 <-> 28
    return r + s.to_bytes(32, "big") + bytes((v - 27 if raw_v else v,))


def _contract_accepts(network: Network, meter: SimulatedMeter, digest: bytes, sig: bytes) -> bool:
    """DisputeResolver's signature check: OpenZeppelin ECDSA.tryRecover (65 bytes,
    s <= n/2, then the chain's ecrecover with v in {27, 28}) or OpenZeppelin
    P256.verifyNative (64 bytes, s <= n/2, then the chain's 0x100 precompile). The range
    checks are OpenZeppelin's, mirrored; the curve math is the anvil precompiles'."""
    w3 = network.protocol.client.w3
    key = meter.signing_key
    s = int.from_bytes(sig[32:64], "big")
    if len(sig) == 65:
        if s > SECP256K1_N // 2:
            return False
        data = digest + sig[64].to_bytes(32, "big") + sig[:64]
        answer = bytes(w3.eth.call({"to": ECRECOVER, "data": "0x" + data.hex()}))
        return len(answer) == 32 and answer[12:] == key.key_x[12:]
    if len(sig) == 64 and 0 < s <= P256_N // 2:
        data = digest + sig + key.key_x + key.key_y
        answer = bytes(w3.eth.call({"to": P256_VERIFY, "data": "0x" + data.hex()}))
        return answer == (1).to_bytes(32, "big")
    return False


@pytest.mark.parametrize(
    ("meter_name", "high_s", "raw_v"),
    [
        ("battery", False, True),  # v in {0, 1}
        ("battery", True, False),  # high s, v flipped
        ("battery", True, True),  # both
        ("heat_pump", True, False),  # P-256 high s
    ],
)
def test_a_malleated_signature_is_stored_in_the_form_the_dispute_resolver_accepts(
    network: Network, meter_name: str, high_s: bool, raw_v: bool
) -> None:
    """Someone posts a malleated copy of a valid unit first. What the oracle stores (and
    serves as dispute evidence) must still pass DisputeResolver's signature check; the
    honest copy sent later is the same unit (a duplicate)."""
    meter: SimulatedMeter = getattr(network, meter_name)
    slot = 90 + (4 if meter_name == "heat_pump" else 2 * int(high_s) + int(raw_v))
    honest = meter.unit(past_slot(slot), [7, 8])
    digest = unit_digest(honest, network.domain)
    assert _contract_accepts(network, meter, digest, honest.signature)
    hostile = replace(honest, signature=_malleated(honest.signature, high_s=high_s, raw_v=raw_v))
    assert hostile.signature != honest.signature
    assert not _contract_accepts(network, meter, digest, hostile.signature)

    first = network.post([hostile])
    assert first.status_code == 200, first.text
    stored = httpx.get(f"{network.oracle.url}/v1/units/0x{digest.hex()}", timeout=15).json()
    stored_signature = bytes.fromhex(stored["signature"].removeprefix("0x"))
    assert _contract_accepts(network, meter, digest, stored_signature)
    assert stored_signature == honest.signature
    second = network.post([honest])
    assert second.status_code == 200 and second.json()["results"][0]["status"] == "duplicate"


# ─── Registry changes reach the oracle ─────────────────────────────────────────────────


def test_key_rotation_and_deactivation_are_followed_from_registry_events(
    network: Network,
) -> None:
    """Registry changes reach the oracle process through the event poll, and a unit is
    judged by the device as it stood at its intervals (issue 12, finding 2): after a
    rotation, the old key's units for intervals before it stay valid and the new key's are
    refused; after a deactivation, units of earlier intervals are still accepted (judged
    by the current state, this oracle refused them while another that got them earlier
    kept them: a split view). Later intervals: `test_registry_history.py`."""
    meter = network.new_meter(20_000)
    start = past_slot(150)  # after the registration; the later cases use fewer days back
    assert network.post([meter.unit(start, [10])]).status_code == 200  # key now cached

    new_key = bytes(Account.create().key)
    protocol = network.protocol
    rotation = secp256k1_device_key(
        new_key, protocol.address, protocol.client.chain_id, protocol.registry.address
    )
    # Chain time past the units this test signs (the rotation and the deactivation come
    # after their intervals), and past the registration's second (two owner actions in one
    # second share one registry epoch: the rotation would rewrite the registration's key).
    w3 = protocol.client.w3
    increase_time(w3, max(1, start + 4 * INTERVAL - int(w3.eth.get_block("latest")["timestamp"])))
    protocol.send(protocol.registry.functions.rotateKey(meter.device_id, rotation.as_tuple()))
    time.sleep(0.5)  # > poll interval
    old_key, meter.key = meter.key, new_key
    backdated = network.post([meter.unit(start + INTERVAL, [11])])
    assert backdated.status_code == 422
    assert "rotated out or in later" in backdated.json()["results"][0]["reason"]
    meter.key = old_key
    assert network.post([meter.unit(start + 2 * INTERVAL, [12])]).status_code == 200

    increase_time(protocol.client.w3, 1)
    protocol.send(protocol.registry.functions.setActive(meter.device_id, False))
    time.sleep(0.5)  # > poll interval
    response = network.post([meter.unit(start + 3 * INTERVAL, [13])])
    assert response.status_code == 200, response.text


# ─── Public reads ──────────────────────────────────────────────────────────────────────


def test_readings_are_paginated_and_each_unit_reverifies(network: Network) -> None:
    meter = network.new_meter()
    start = past_slot(60)
    units = [
        meter.unit(start + i * 10 * INTERVAL, list(range(i * 10, i * 10 + 10))) for i in range(3)
    ]
    assert network.post(units).status_code == 200

    url = f"{network.oracle.url}/v1/devices/{meter.device_id}/readings"
    seen: list[dict[str, object]] = []
    cursor: int | None = None
    pages = 0
    while True:
        params = {"limit": 7} | ({"cursor": cursor} if cursor is not None else {})
        page = httpx.get(url, params=params).json()
        seen += page["readings"]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 5
    assert [reading["energy_wh"] for reading in seen] == list(range(30))
    assert [reading["interval_start"] for reading in seen] == [
        start + i * INTERVAL for i in range(30)
    ]

    window = httpx.get(url, params={"start": start + 5 * INTERVAL, "end": start + 8 * INTERVAL})
    assert [r["energy_wh"] for r in window.json()["readings"]] == [5, 6, 7]

    digest = seen[12]["unit_digest"]
    assert digest == "0x" + unit_digest(units[1], network.domain).hex()
    served = httpx.get(f"{network.oracle.url}/v1/units/{digest}").json()
    assert served["digest"] == digest
    assert (
        verify_unit(MeterUnit.from_json(served), network.domain, meter.signing_key).hex()
        == (str(digest)[2:])
    )
    missing = httpx.get(f"{network.oracle.url}/v1/units/0x{'00' * 32}")
    assert missing.status_code == 404


def test_conflict_evidence_is_public_and_both_units_reverify(network: Network) -> None:
    """Finding 12: a CONFLICT must be checkable from public data. The oracle serves both
    signed units of a contradiction; each verifies against the device's key, and they are
    two different values for one interval."""
    meter = network.new_meter()
    start = past_slot(70)
    first = meter.unit(start, [100, 200])
    second = meter.unit(start + INTERVAL, [999])  # another value for the second interval
    assert network.post([first]).status_code == 200
    assert network.post([second]).status_code == 409
    url = f"{network.oracle.url}/v1/devices/{meter.device_id}/conflicts"

    answer = httpx.get(url, params={"start": start, "end": start + 2 * INTERVAL}, timeout=10)
    assert answer.status_code == 200, answer.text
    (pair,) = answer.json()["conflicts"]
    assert pair["intervalStart"] == start + INTERVAL
    values = []
    for side, unit in (("existing", first), ("conflicting", second)):
        served = pair[side]
        assert served["digest"] == "0x" + unit_digest(unit, network.domain).hex()
        parsed = MeterUnit.from_json(served)
        assert verify_unit(parsed, network.domain, meter.signing_key).hex() == served["digest"][2:]
        values.append(
            dict(zip(parsed.interval_starts, parsed.energy_wh, strict=True))[start + INTERVAL]
        )
    assert values == [200, 999]
    assert answer.json()["nextAfter"] is None
    outside = httpx.get(url, params={"start": start + 2 * INTERVAL}, timeout=10)
    assert outside.json()["conflicts"] == []
    paged = httpx.get(url, params={"limit": 1}, timeout=10).json()
    assert paged["nextAfter"] == pair["id"]
    assert httpx.get(url, params={"after": pair["id"]}, timeout=10).json()["conflicts"] == []

    for bad in (
        "/v1/devices/-1/conflicts",
        f"/v1/devices/{2**63}/conflicts",
        "/v1/devices/abc/conflicts",
        f"/v1/devices/{meter.device_id}/conflicts?start=10&end=5",
        f"/v1/devices/{meter.device_id}/conflicts?limit=0",
        f"/v1/devices/{meter.device_id}/conflicts?limit=100000",
        "/v1/reports/abc/conflicts",
        "/v1/reports/-3/conflicts",
        "/v1/reports/1/conflicts?round=70000",
    ):
        refused = httpx.get(network.oracle.url + bad, timeout=10)
        assert refused.status_code == 422, (bad, refused.text)
        assert refused.json()["detail"]
    unknown = httpx.get(f"{network.oracle.url}/v1/reports/{10**9}/conflicts", timeout=10)
    assert unknown.status_code == 404
    assert "unknown request" in unknown.json()["detail"]


# ─── Operations ────────────────────────────────────────────────────────────────────────


def test_health_is_200_and_metrics_count_outcomes(network: Network) -> None:
    health = httpx.get(network.oracle.url + "/health")
    assert health.status_code == 200
    assert health.json()["database"] == "ok" and health.json()["chain"] == "ok"

    network.post([SimulatedMeter.secp256k1(10**6 + 1, 1, network.domain).unit(past_slot(), [1])])
    metrics = httpx.get(network.oracle.url + "/metrics").text
    assert 'gridflex_oracle_units_total{status="accepted"}' in metrics
    assert 'gridflex_oracle_rejections_total{reason="unregistered_device"}' in metrics
    assert "gridflex_oracle_readings_accepted_total" in metrics
    assert "gridflex_oracle_batch_seconds_bucket" in metrics
    docs = httpx.get(network.oracle.url + "/openapi.json").json()
    assert "/v1/readings" in docs["paths"]


def test_locked_database_is_a_503_with_retry_after_and_nothing_is_lost(
    network: Network,
) -> None:
    unit = network.battery.unit(past_slot(70), [21, 22])
    blocker = sqlite3.connect(network.workdir / "oracle" / "oracle.db", isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        response = network.post([unit])
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "2"
        assert "locked" in response.json()["detail"]
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    retried = network.post([unit])
    assert retried.status_code == 200
    assert retried.json()["results"][0]["status"] == "accepted"


def test_health_is_503_when_the_chain_rpc_is_down(network: Network) -> None:
    dead_rpc = f"http://127.0.0.1:{free_port()}"
    oracle = start_oracle(
        network.workdir,
        _oracle_env(
            network.workdir,
            dead_rpc,
            GRIDFLEX_ORACLE_CHAIN_ID=str(network.protocol.client.chain_id),
            GRIDFLEX_ORACLE_DATA_DIR=str(network.workdir / "oracle-dead-rpc"),
        ),
    )
    try:
        health = httpx.get(oracle.url + "/health", timeout=15)
        assert health.status_code == 503
        assert health.json()["database"] == "ok"
        assert health.json()["chain"].startswith("down")
        response = httpx.post(
            oracle.url + "/v1/readings",
            json={"units": [network.battery.unit(past_slot(71), [1]).to_json()]},
            timeout=15,
        )
        assert response.status_code == 503 and "Retry-After" in response.headers
    finally:
        oracle.stop()


def test_postgres_store_serves_and_reports_503_when_the_database_goes_away(
    network: Network, anvil: AnvilProcess
) -> None:
    reason = postgres_available()
    if reason is not None:
        pytest.skip(reason)
    import psycopg

    name = f"gridflex_oracle_down_{free_port()}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    oracle = start_oracle(
        network.workdir,
        _oracle_env(network.workdir, anvil.url)
        | {"DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{name}"},
    )
    try:
        unit = network.heat_pump.unit(past_slot(72), [5, 6, 7])
        response = httpx.post(
            oracle.url + "/v1/readings", json={"units": [unit.to_json()]}, timeout=15
        )
        assert response.status_code == 200, response.text
        assert httpx.get(oracle.url + "/health").status_code == 200

        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        health = httpx.get(oracle.url + "/health", timeout=15)
        assert health.status_code == 503
        assert health.json()["database"].startswith("down")
        again = httpx.post(
            oracle.url + "/v1/readings",
            json={"units": [network.heat_pump.unit(past_slot(73), [1]).to_json()]},
            timeout=15,
        )
        assert again.status_code == 503 and again.headers["Retry-After"] == "2"
    finally:
        oracle.stop()
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
