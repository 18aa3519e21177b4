"""The verify page's check of one device record, run live against the chain and the
oracles (the only page that leaves the database): the report's roots are read from the
chain's `ReportSubmitted` event, not from our index, so a reader trusts neither us nor the
oracle.

Uses the shared check (`gridflex.verify`, `gridflex.rules.merkle`, `gridflex.rules.attestation`):
1. the record's Merkle proof against the posted `devicesRoot`;
2. the packed used readings' proof against the posted `readingsRoot`;
3. each used reading against the units the device signed (of the request's interval length,
   by the key registered at their intervals);
4. `gridflex.verify.verify_request` over the whole request (records recomputed from the
   used readings, both roots, per-bid totals); its differences about this device count;
5. for a CONFLICT record, the oracle's public evidence (`GET /v1/reports/{id}/conflicts`):
   at least one pair of units that both verify against the device's key at their intervals
   and sign two different values for one interval, else the verdict fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import BaseModel

from gridflex import safe_json
from gridflex.chain.protocol import Protocol
from gridflex.rules.attestation import (
    AttestationError,
    MeterUnit,
    meter_domain_separator,
    verify_unit,
)
from gridflex.rules.merkle import verify_proof
from gridflex.rules.reports import DeviceRecord, Quality, unpack_used_readings, used_readings_leaf
from gridflex.verify import (
    MAX_ORACLE_ANSWER_BYTES,
    PostedReport,
    VerifyInputError,
    device_histories,
    fetch_conflict_evidence,
    read_posted_report,
    unit_key,
    verify_request,
)

if TYPE_CHECKING:
    from gridflex.chain.device_history import DeviceHistory


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


class EvidenceUnitView(BaseModel):
    unit_digest: str | None
    first_interval_start: int
    sequence: int
    energy_wh: list[int]
    value_at_interval: int | None
    signature_ok: bool
    reason: str | None


class EvidencePairView(BaseModel):
    """Two units the oracle holds for one interval of the device (equivocation evidence)."""

    interval_start: int
    units: list[EvidenceUnitView]
    ok: bool
    """Both verify against the device's key and their values at `interval_start` differ."""


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
    evidence: list[EvidencePairView] = []
    """For a CONFLICT record: the oracle's evidence pairs, each checked here."""


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


def _evidence(
    http: httpx.Client,
    source: str,
    request_id: int,
    round_: int,
    device_id: int,
    domain: bytes,
    history: DeviceHistory | None,
) -> list[EvidencePairView]:
    """The oracle's conflict evidence for the device, each unit verified here (by the key
    in force at its intervals)."""
    try:
        body = fetch_conflict_evidence(http, source, request_id, round_)
    except VerifyInputError:
        return []
    devices = body.get("devices")
    pairs: list[EvidencePairView] = []
    for device in devices if isinstance(devices, list) else []:
        if not isinstance(device, dict) or device.get("deviceId") != device_id:
            continue
        for pair in device.get("conflicts") or []:
            interval = pair.get("intervalStart") if isinstance(pair, dict) else None
            if type(interval) is not int:
                continue
            views = [
                _evidence_unit(pair.get(side), interval, device_id, domain, history)
                for side in ("existing", "conflicting")
            ]
            values = {v.value_at_interval for v in views}
            ok = all(v.signature_ok for v in views) and None not in values and len(values) == 2
            pairs.append(EvidencePairView(interval_start=interval, units=views, ok=ok))
    return pairs


def _evidence_unit(
    raw: Any, interval: int, device_id: int, domain: bytes, history: DeviceHistory | None
) -> EvidenceUnitView:
    try:
        unit = MeterUnit.from_json(raw)
        reason = None
        key = unit_key(history, unit)
        if unit.device_id != device_id:
            reason = f"signed for device {unit.device_id}"
        elif key is None:
            reason = "no registry key at the unit's intervals"
        else:
            verify_unit(unit, domain, key)
    except AttestationError as error:
        return EvidenceUnitView(
            unit_digest=None, first_interval_start=0, sequence=0, energy_wh=[],
            value_at_interval=None, signature_ok=False, reason=str(error),
        )  # fmt: skip
    values = dict(zip(unit.interval_starts, unit.energy_wh, strict=True))
    return EvidenceUnitView(
        unit_digest=raw.get("digest") if isinstance(raw, dict) else None,
        first_interval_start=unit.first_interval_start, sequence=unit.sequence,
        energy_wh=list(unit.energy_wh), value_at_interval=values.get(interval),
        signature_ok=reason is None, reason=reason,
    )  # fmt: skip


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

    history = device_histories(protocol, [device_id]).get(device_id)
    posted_interval = protocol.request(request_id).interval_seconds
    domain = meter_domain_separator(protocol.client.chain_id, protocol.registry.address)
    signed: dict[int, list[int]] = {}
    units = []
    for raw in body["units"]:
        unit = MeterUnit.from_json(raw)
        reason = None
        key = unit_key(history, unit)
        if unit.interval_seconds != posted_interval:
            reason = f"a {unit.interval_seconds} s unit; the request settles {posted_interval} s"
        elif key is None:
            reason = (
                "no registry key at the unit's intervals (before the device's registration, "
                "or the unit runs past a key rotation, transfer or update)"
            )
        else:
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
    evidence: list[EvidencePairView] = []
    if record.quality == Quality.CONFLICT:
        evidence = _evidence(http, source, request_id, posted.round, device_id, domain, history)
        if not any(pair.ok for pair in evidence):
            reasons.append(
                "the record is CONFLICT but the oracle serves no verifiable evidence "
                "(two values for one interval, both signed by the device)"
            )
    return DeviceVerification(
        request_id=request_id, device_id=device_id, round=posted.round, source=source,
        verdict="failed" if reasons else "verified", reasons=reasons,
        record={k: v for k, v in record.to_json().items() if k != "quality"},
        quality=Quality(record.quality).name, record_proof=record_check,
        readings_proof=readings_check, readings=readings, units=units,
        request_verdict_ok=request_verdict.ok,
        request_differences=[d.message for d in request_verdict.differences],
        signers=list(posted.signers), evidence=evidence,
    )  # fmt: skip
