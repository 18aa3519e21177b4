"""The verify page's check of one device record, run live against the chain and the
oracles (the only page that leaves the database): the report's roots are read from the
chain's `ReportSubmitted` event, not from our index, so a reader trusts neither us nor the
oracle.

Uses the shared check (`gridflex.verify`, `gridflex.merkle`, `gridflex.attestation`):
1. the record's Merkle proof against the posted `devicesRoot`;
2. the packed used readings' proof against the posted `readingsRoot`;
3. each used reading against the units the device signed (its registered key);
4. `gridflex.verify.verify_request` over the whole request (records recomputed from the
   used readings, both roots, per-bid totals); its differences about this device count.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
from pydantic import BaseModel

from gridflex import safe_json
from gridflex.attestation import AttestationError, MeterUnit, meter_domain_separator, verify_unit
from gridflex.chain.protocol import Protocol
from gridflex.merkle import verify_proof
from gridflex.reports import DeviceRecord, Quality, unpack_used_readings, used_readings_leaf
from gridflex.verify import (
    MAX_ORACLE_ANSWER_BYTES,
    PostedReport,
    VerifyInputError,
    device_keys,
    read_posted_report,
    verify_request,
)


class ProofCheck(BaseModel):
    root_name: str
    onchain_root: str
    leaf: str
    proof: list[str]
    ok: bool


class SignedReading(BaseModel):
    interval_start: int
    used_energy_wh: int
    signed_energy_wh: list[int]
    """Every value the device signed for this interval (two differing = equivocation)."""
    ok: bool


class SignedUnitView(BaseModel):
    unit_digest: str | None
    first_interval_start: int
    interval_seconds: int
    sequence: int
    energy_wh: list[int]
    signature: str
    signature_ok: bool
    reason: str | None


class DeviceVerification(BaseModel):
    request_id: int
    device_id: int
    round: int
    source: str
    verdict: str
    """`verified` when every check passes, else `failed`."""
    reasons: list[str]
    record: dict[str, int]
    quality: str
    record_proof: ProofCheck
    readings_proof: ProofCheck
    readings: list[SignedReading]
    units: list[SignedUnitView]
    request_verdict_ok: bool
    request_differences: list[str]
    signers: list[str]


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def _bytes(value: str) -> bytes:
    return bytes.fromhex(value.removeprefix("0x"))


def _device_body(
    http: httpx.Client, oracle_urls: Sequence[str], request_id: int, device_id: int, round_: int
) -> tuple[str, dict[str, Any]]:
    errors = []
    for url in oracle_urls:
        address = f"{url}/v1/reports/{request_id}/devices/{device_id}?round={round_}"
        try:
            answer = http.get(address)
        except httpx.HTTPError as error:
            errors.append(f"{url}: unreachable ({error})")
            continue
        if answer.status_code != 200:
            errors.append(f"{url}: HTTP {answer.status_code}")
            continue
        try:
            body = safe_json.loads(answer.content, max_bytes=MAX_ORACLE_ANSWER_BYTES)
        except safe_json.UnsafeJsonError as error:
            errors.append(f"{url}: {error.reason}")
            continue
        if isinstance(body, dict):
            return url, body
        errors.append(f"{url}: the answer is not a JSON object")
    raise VerifyInputError("no oracle serves this device record: " + "; ".join(errors))


def verify_device(
    protocol: Protocol,
    oracle_urls: Sequence[str],
    request_id: int,
    device_id: int,
    http: httpx.Client,
) -> DeviceVerification:
    """VerifyInputError when the check cannot run (no report posted, no oracle)."""
    if not oracle_urls:
        raise VerifyInputError("the explorer knows no oracle (start it with --oracle URL)")
    posted: PostedReport = read_posted_report(protocol, request_id)
    source, body = _device_body(http, oracle_urls, request_id, device_id, posted.round)
    record = DeviceRecord.from_json(body["record"])
    used = _bytes(body["usedReadings"])
    record_proof = [_bytes(p) for p in body["recordProof"]]
    readings_proof = [_bytes(p) for p in body["readingsProof"]]
    record_check = ProofCheck(
        root_name="devicesRoot", onchain_root=_hex(posted.devices_root), leaf=_hex(record.leaf()),
        proof=[_hex(p) for p in record_proof],
        ok=verify_proof(posted.devices_root, record.leaf(), record_proof),
    )  # fmt: skip
    used_leaf = used_readings_leaf(device_id, used)
    readings_check = ProofCheck(
        root_name="readingsRoot", onchain_root=_hex(posted.readings_root), leaf=_hex(used_leaf),
        proof=[_hex(p) for p in readings_proof],
        ok=verify_proof(posted.readings_root, used_leaf, readings_proof),
    )  # fmt: skip

    key = device_keys(protocol, [device_id])[device_id]
    domain = meter_domain_separator(protocol.client.chain_id, protocol.registry.address)
    signed: dict[int, list[int]] = {}
    units = []
    for raw in body["units"]:
        unit = MeterUnit.from_json(raw)
        reason = None
        try:
            verify_unit(unit, domain, key)
        except AttestationError as error:
            reason = str(error)
        if reason is None and unit.device_id == device_id:
            for start, value in zip(unit.interval_starts, unit.energy_wh, strict=True):
                signed.setdefault(start, []).append(value)
        units.append(
            SignedUnitView(
                unit_digest=raw.get("digest"), first_interval_start=unit.first_interval_start,
                interval_seconds=unit.interval_seconds, sequence=unit.sequence,
                energy_wh=list(unit.energy_wh), signature=_hex(unit.signature),
                signature_ok=reason is None, reason=reason,
            )
        )  # fmt: skip
    readings = [
        SignedReading(
            interval_start=start, used_energy_wh=value,
            signed_energy_wh=sorted(set(signed.get(start, []))),
            ok=set(signed.get(start, [])) == {value},
        )
        for start, value in unpack_used_readings(used)
    ]  # fmt: skip

    request_verdict = verify_request(protocol, request_id, oracle_urls, posted.round, http)
    reasons = []
    if not record_check.ok:
        reasons.append("the record's Merkle proof does not lead to the on-chain devicesRoot")
    if not readings_check.ok:
        reasons.append("the used readings' proof does not lead to the on-chain readingsRoot")
    bad = [r for r in readings if not r.ok]
    if bad:
        reasons.append(f"{len(bad)} used reading(s) not backed by exactly one device-signed value")
    reasons += [d.message for d in request_verdict.differences if d.device_id == device_id]
    return DeviceVerification(
        request_id=request_id, device_id=device_id, round=posted.round, source=source,
        verdict="failed" if reasons else "verified", reasons=reasons,
        record={k: v for k, v in record.to_json().items() if k != "quality"},
        quality=Quality(record.quality).name, record_proof=record_check,
        readings_proof=readings_check, readings=readings, units=units,
        request_verdict_ok=request_verdict.ok,
        request_differences=[d.message for d in request_verdict.differences],
        signers=list(posted.signers),
    )  # fmt: skip
