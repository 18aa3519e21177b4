"""Helpers for the node tests: a stand-in oracle speaking the ingest answer contract,
cheap keystore settings, a fixed chain domain and calendar anchors."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from eth_account import Account

from gridflex.rules.attestation import DeviceSigningKey, MeterUnit, meter_domain_separator
from gridflex.rules.eip712 import KeyType

FAST_SCRYPT_N = 2**10
CHAIN_ID = 31337
REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
DOMAIN = meter_domain_separator(CHAIN_ID, REGISTRY)
DAY = 86_400
MONDAY = 20_003 * DAY  # 2024-10-07, a Monday


@dataclass
class FakeOracle:
    """The oracle's answer contract, nothing more: accepted / duplicate (same signed
    content) / rejected per unit; a batch with any rejection stores nothing (422) and
    answers `valid` for the units that passed."""

    reject: Callable[[MeterUnit], str | None] = lambda unit: None
    fail_next: int = 0
    """Answer 503 to this many next requests (an outage)."""
    max_batch: int | None = None
    """Answer 413 to bigger batches."""
    stored: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    arrival: list[tuple[int, int]] = field(default_factory=list)
    """(device, sequence) in the order they were first stored."""
    requests: int = 0
    batch_sizes: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.requests += 1
            if self.fail_next > 0:
                self.fail_next -= 1
                return 503, {"detail": "oracle restarting"}
            units = body["units"]
            self.batch_sizes.append(len(units))
            if self.max_batch is not None and len(units) > self.max_batch:
                return 413, {"detail": f"at most {self.max_batch} units"}
            results = []
            for index, payload in enumerate(units):
                unit = MeterUnit.from_json(payload)
                key = (unit.device_id, unit.sequence)
                reason = self.reject(unit)
                if reason is not None:
                    results.append({"index": index, "status": "rejected", "reason": reason})
                elif self.stored.get(key) == payload:
                    results.append({"index": index, "status": "duplicate", "reason": None})
                else:
                    results.append({"index": index, "status": "accepted", "reason": None})
            if any(result["status"] == "rejected" for result in results):
                for result in results:  # the rest passed every check but nothing is stored
                    if result["status"] == "accepted":
                        result["status"] = "valid"
                return 422, {"detail": "batch has rejected units", "results": results}
            for payload, result in zip(units, results, strict=True):
                if result["status"] == "accepted":
                    key = (payload["deviceId"], payload["sequence"])
                    self.stored[key] = payload
                    self.arrival.append(key)
            return 200, {"results": results}


class OracleHandler(BaseHTTPRequestHandler):
    oracle: FakeOracle

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        raw = self.rfile.read(length)
        if self.path != "/v1/readings":
            status, answer = 404, {"detail": "not found"}
        else:
            try:
                status, answer = self.server.oracle.answer(json.loads(raw))  # type: ignore[attr-defined]
            except (ValueError, KeyError, TypeError) as error:
                status, answer = 422, {"detail": f"malformed body: {error}"}
        encoded = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(encoded)))
        self.end_headers()
        self.wfile.write(encoded)

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        return


def registered_key(private_key: object) -> DeviceSigningKey:
    """The public key the registry would hold for a device private key."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from gridflex.rules.eip712 import p256_public_key_bytes

    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        public = p256_public_key_bytes(private_key)
        return DeviceSigningKey(KeyType.P256, public[:32], public[32:])
    address = Account.from_key(private_key).address
    return DeviceSigningKey(KeyType.SECP256K1, bytes(12) + bytes.fromhex(address[2:]))
