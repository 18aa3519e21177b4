"""The verify page's check of one device record. The report's roots are read from the
chain's `ReportSubmitted` event on every view, not from our index, so a reader trusts
neither us nor the oracle; the rest is checked once per (request, round) and stored
(`explorer_device_checks`), so a second view of any device of the request fetches nothing
from an oracle.

The check is `gridflex.verify.check_report` (what `gridflex verify` runs) over one oracle's
published report: the first oracle serving the posted roots, else the first answering (then
nothing is stored). A device's page shows from it:
1. the record's Merkle proof against the posted `devicesRoot` (path in the published
   records' tree) and the used readings' served proof against the posted `readingsRoot`;
2. each used reading with the values the device signed for it, judged by the check's
   differences (`unsigned-reading`, `contradicted-reading`), and each unit's signature
   against the key registered at its intervals;
3. the check's differences over the whole request; those about this device fail it;
4. for a CONFLICT record, the oracle's public evidence (`GET /v1/reports/{id}/conflicts`):
   at least one pair of units that both verify against the device's key at their intervals
   and sign two different values for one interval, else the verdict fails.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import BaseModel
from sqlalchemy import Engine
from sqlmodel import Session

from explorer.models import DeviceCheck
from gridflex.chain.protocol import Protocol
from gridflex.rules.attestation import (
    AttestationError,
    MeterUnit,
    meter_domain_separator,
    unit_digest,
    verify_unit,
)
from gridflex.rules.merkle import MerkleTree, verify_proof
from gridflex.rules.reports import DeviceRecord, Quality, unpack_used_readings, used_readings_leaf
from gridflex.verify import (
    DeviceData,
    PostedReport,
    PublishedReport,
    VerifyInputError,
    check_report,
    device_histories,
    fetch_conflict_evidence,
    fetch_device_data,
    fetch_report_summary,
    read_facts,
    read_posted_report,
    unit_key,
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


READING_DIFFERENCES = ("unsigned-reading", "contradicted-reading")
"""Differences of `check_report` about one used reading."""


def fetch_report(
    http: httpx.Client, oracle_urls: Sequence[str], posted: PostedReport
) -> PublishedReport:
    """One oracle's report with every device's data: the first serving the posted roots,
    else the first answering; VerifyInputError naming each failure when none answers."""
    errors, fallback = [], None
    for url in oracle_urls:
        try:
            summary = fetch_report_summary(http, url, posted.request_id, posted.round)
        except VerifyInputError as error:
            errors.append(str(error))
            continue
        if summary.matches(posted):
            return fetch_device_data(http, summary, posted.request_id)
        fallback = fallback or summary
    if fallback is None:
        raise VerifyInputError("no oracle serves this report: " + "; ".join(errors))
    return fetch_device_data(http, fallback, posted.request_id)


def _evidence(
    body: Mapping[str, Any], device_id: int, domain: bytes, history: DeviceHistory | None
) -> list[EvidencePairView]:
    """The device's pairs in the oracle's conflict evidence (`body`), each unit verified
    here (by the key in force at its intervals)."""
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
    engine: Engine | None = None,
) -> DeviceVerification:
    """The device's check, from `engine`'s stored checks when they are of the posted roots
    (else checked now and stored there). VerifyInputError when the check cannot run (no
    report posted, no oracle, no record of the device)."""
    if not oracle_urls:
        raise VerifyInputError("the explorer knows no oracle (start it with --oracle URL)")
    posted = read_posted_report(protocol, request_id)
    if engine is not None:
        stored = _stored_check(engine, posted, device_id)
        if stored is not None:
            return stored
    published = fetch_report(http, oracle_urls, posted)
    views = RequestCheck(protocol, posted, published, http).device_views()
    if engine is not None and published.matches(posted):
        _store_checks(engine, posted, views)
    if device_id not in views:
        raise VerifyInputError(f"{published.source} serves no record of device {device_id}")
    return views[device_id]


def _stored_check(
    engine: Engine, posted: PostedReport, device_id: int
) -> DeviceVerification | None:
    with Session(engine) as session:
        row = session.get(DeviceCheck, (posted.request_id, posted.round, device_id))
    if row is None or (row.devices_root, row.readings_root) != _roots(posted):
        return None
    return DeviceVerification.model_validate_json(row.body)


def _store_checks(
    engine: Engine, posted: PostedReport, views: Mapping[int, DeviceVerification]
) -> None:
    devices_root, readings_root = _roots(posted)
    with Session(engine) as session:
        for device_id, view in views.items():
            session.merge(
                DeviceCheck(
                    request_id=posted.request_id, round=posted.round, device_id=device_id,
                    devices_root=devices_root, readings_root=readings_root,
                    body=view.model_dump_json(),
                )
            )  # fmt: skip
        session.commit()


def _roots(posted: PostedReport) -> tuple[str, str]:
    return _hex(posted.devices_root), _hex(posted.readings_root)


class RequestCheck:
    """`check_report` over one published report, and each device's view of it."""

    def __init__(
        self,
        protocol: Protocol,
        posted: PostedReport,
        published: PublishedReport,
        http: httpx.Client,
    ) -> None:
        self.posted, self.published = posted, published
        facts = read_facts(protocol, posted.request_id, posted.round)
        self.interval_seconds = facts.window.interval_seconds
        awarded = {d for bid in facts.bids for d in bid.device_capacity_w}
        self.histories = device_histories(protocol, sorted(awarded | set(published.devices)))
        self.domain = meter_domain_separator(protocol.client.chain_id, protocol.registry.address)
        self.verdict = check_report(facts, posted, [published], self.histories, self.domain)
        self.records_tree = (
            MerkleTree.from_leaf_hashes([r.leaf() for r in published.records])
            if published.records
            else None
        )
        self.published_records = {r.device_id: r for r in published.records}
        conflicted = any(d.record.quality == Quality.CONFLICT for d in published.devices.values())
        self.evidence: dict[str, Any] = {}
        """The oracle's conflict evidence, fetched only when a record is CONFLICT."""
        if conflicted:
            with contextlib.suppress(VerifyInputError):
                self.evidence = fetch_conflict_evidence(
                    http, published.source, posted.request_id, posted.round
                )

    def device_views(self) -> dict[int, DeviceVerification]:
        return {d: self.device_view(d, data) for d, data in self.published.devices.items()}

    def _record_proof(self, record: DeviceRecord) -> ProofCheck:
        summary = self.published_records.get(record.device_id)
        path: list[bytes] = []
        if self.records_tree is not None and summary is not None:
            path = self.records_tree.proof(summary.leaf())
        root = self.posted.devices_root
        return ProofCheck(
            root_name="devicesRoot", onchain_root=_hex(root), leaf=_hex(record.leaf()),
            proof=[_hex(p) for p in path], ok=verify_proof(root, record.leaf(), path),
        )  # fmt: skip

    def _readings_proof(self, device_id: int, data: DeviceData) -> ProofCheck:
        leaf = used_readings_leaf(device_id, data.used_readings)
        root = self.posted.readings_root
        return ProofCheck(
            root_name="readingsRoot", onchain_root=_hex(root), leaf=_hex(leaf),
            proof=[_hex(p) for p in data.readings_proof],
            ok=verify_proof(root, leaf, list(data.readings_proof)),
        )  # fmt: skip

    def device_view(self, device_id: int, data: DeviceData) -> DeviceVerification:
        record, posted, history = data.record, self.posted, self.histories.get(device_id)
        record_check = self._record_proof(record)
        readings_check = self._readings_proof(device_id, data)
        units, signed = self._units(device_id, data.units, history)
        contested = {
            d.interval_start
            for d in self.verdict.differences
            if d.device_id == device_id and d.kind in READING_DIFFERENCES
        }
        readings = [
            SignedReading(
                interval_start=start, used_energy_wh=value,
                signed_energy_wh=sorted(set(signed.get(start, []))), ok=start not in contested,
            )
            for start, value in unpack_used_readings(data.used_readings)
        ]  # fmt: skip
        reasons = []
        if not record_check.ok:
            reasons.append("the record's Merkle proof does not lead to the on-chain devicesRoot")
        if not readings_check.ok:
            reasons.append("the used readings' proof does not lead to the on-chain readingsRoot")
        bad = [r for r in readings if not r.ok]
        if bad:
            reasons.append(
                f"{len(bad)} used reading(s) not backed by exactly one device-signed value"
            )
        reasons += [d.message for d in self.verdict.differences if d.device_id == device_id]
        evidence: list[EvidencePairView] = []
        if record.quality == Quality.CONFLICT:
            evidence = _evidence(self.evidence, device_id, self.domain, history)
            if not any(pair.ok for pair in evidence):
                reasons.append(
                    "the record is CONFLICT but the oracle serves no verifiable evidence "
                    "(two values for one interval, both signed by the device)"
                )
        return DeviceVerification(
            request_id=posted.request_id, device_id=device_id, round=posted.round,
            source=self.published.source, verdict="failed" if reasons else "verified",
            reasons=reasons, record={k: v for k, v in record.to_json().items() if k != "quality"},
            quality=Quality(record.quality).name, record_proof=record_check,
            readings_proof=readings_check, readings=readings, units=units,
            request_verdict_ok=self.verdict.ok,
            request_differences=[d.message for d in self.verdict.differences],
            signers=list(posted.signers), evidence=evidence,
        )  # fmt: skip

    def _units(
        self, device_id: int, served: Sequence[MeterUnit], history: DeviceHistory | None
    ) -> tuple[list[SignedUnitView], dict[int, list[int]]]:
        """Each served unit with whether its signature verifies against the key registered
        at its intervals, and per interval the values of those that do."""
        signed: dict[int, list[int]] = {}
        views = []
        for unit in served:
            reason = None
            key = unit_key(history, unit)
            if unit.interval_seconds != self.interval_seconds:
                reason = (
                    f"a {unit.interval_seconds} s unit; the request settles "
                    f"{self.interval_seconds} s"
                )
            elif key is None:
                reason = (
                    "no registry key at the unit's intervals (before the device's registration, "
                    "or the unit runs past a key rotation, transfer or update)"
                )
            else:
                try:
                    verify_unit(unit, self.domain, key)
                except AttestationError as error:
                    reason = str(error)
            if reason is None and unit.device_id == device_id:
                for start, value in zip(unit.interval_starts, unit.energy_wh, strict=True):
                    signed.setdefault(start, []).append(value)
            views.append(
                SignedUnitView(
                    unit_digest=_hex(unit_digest(unit, self.domain)),
                    first_interval_start=unit.first_interval_start,
                    interval_seconds=unit.interval_seconds, sequence=unit.sequence,
                    energy_wh=list(unit.energy_wh), signature=_hex(unit.signature),
                    signature_ok=reason is None, reason=reason,
                )
            )  # fmt: skip
        return views, signed
