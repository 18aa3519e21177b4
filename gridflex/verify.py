"""Re-checking a posted oracle report from public data: the one check shared by
`gridflex verify`, `gridflex watch` and the oracle's watcher, so they cannot disagree.

Inputs: the chain (the request's facts as `gridflex.chain.facts.read_request_facts` reads
them, the report posted in `ReportSubmitted`, every device's registry history) and what
oracles publish (`GET /v1/reports/{id}` records and roots, `GET .../devices/{id}` packed
used readings, proofs and the device-signed units). `check_report` is pure; `verify_request`
does the I/O around it.

Checks, each failure a `Difference` naming the device, bid or interval:
1. every used reading is backed by a unit the device signed with the same value: a unit of
   the request's interval length, in the meter domain, signed by the key in force at its
   first interval and ending within that registry epoch (what `DisputeResolver` judges by:
   `deviceAt`, `UnitSpansDeviceEpochs`), so an honest key rotation or transfer flags no
   honest unit and a new key cannot attest old intervals; a contradiction carries the
   complete fraud-proof arguments;
2. every awarded device's record recomputed from its used readings with the shared rules
   (`gridflex.rules.measurement.measure_device`) equals the published one;
3. both Merkle roots and the per-bid totals recomputed from 2. equal the chain's.

What the chain itself can judge (`DeliveryDispute`) comes with the arguments of a one-phase
proof: a record that does not follow from its own used readings (`ArithmeticMaterial`,
`challengeArithmetic`), a record that should not exist (device not in an awarded bid), a
per-bid figure that is not the sum of its records (`BidTotalMaterial`,
`challengeBidTotal`). `Verdict.best_proof` prefers those to a contradicted reading (a
two-phase challenge that the device could rebut by equivocating).

Recomputing from the used readings alone gives the oracle's record (see
`gridflex.rules.measurement`). A record published as CONFLICT is recomputed as a conflict: the
evidence is the oracle's, zero delivery is the conservative outcome.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from gridflex import safe_json
from gridflex.chain.device_history import DeviceHistory
from gridflex.chain.facts import read_request_facts
from gridflex.chain.protocol import Protocol, ReportSubmission
from gridflex.errors import GridFlexError
from gridflex.rules.attestation import (
    AttestationError,
    DeviceSigningKey,
    MeterUnit,
    meter_domain_separator,
    verify_unit,
)
from gridflex.rules.baselines import device_cap_wh, recomputable_on_chain
from gridflex.rules.measurement import (
    AwardedBid,
    RecordFigures,
    ReportUnavailableError,
    RequestFacts,
    measure_device,
    recompute_from_used_readings,
    record_follows,
)
from gridflex.rules.merkle import MerkleTree, verify_proof
from gridflex.rules.reports import (
    DeviceRecord,
    Quality,
    build_report_trees,
    unpack_used_readings,
    used_readings_leaf,
)

RECORD_FIELDS = ("bid_index", "baseline_wh", "metered_wh", "delivered_wh", "quality")


class VerifyInputError(GridFlexError):
    """The check cannot run: unknown request, no report posted, no oracle answering."""


# ─── Inputs ───────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class PostedReport(ReportSubmission):
    """One `ReportSubmitted` event: what the chain holds (or held, if voided since), with
    the addresses of its signers as seated when it was posted."""

    signers: tuple[str, ...] = ()


@dataclass(frozen=True)
class DeviceData:
    """One device as an oracle publishes it."""

    record: DeviceRecord
    used_readings: bytes
    readings_proof: tuple[bytes, ...]
    units: tuple[MeterUnit, ...]


@dataclass(frozen=True)
class PublishedReport:
    """One oracle's public report for one request and round."""

    source: str
    round: int
    signer: str | None
    delivered_wh: tuple[int, ...]
    devices_root: bytes
    readings_root: bytes
    records: tuple[DeviceRecord, ...]
    devices: Mapping[int, DeviceData] = field(default_factory=dict)

    def matches(self, posted: PostedReport) -> bool:
        return (self.devices_root, self.readings_root) == (
            posted.devices_root,
            posted.readings_root,
        )


# ─── Verdict ──────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class ChallengeMaterial:
    """The arguments of `DisputeResolver.challenge` (and `Protocol.challenge`)."""

    device_id: int
    used_readings: bytes
    readings_proof: tuple[bytes, ...]
    used_index: int
    unit: MeterUnit
    unit_index: int

    def to_json(self) -> dict[str, Any]:
        return {
            "deviceId": self.device_id,
            "usedReadings": "0x" + self.used_readings.hex(),
            "readingsProof": ["0x" + node.hex() for node in self.readings_proof],
            "usedIndex": self.used_index,
            "signedUnit": self.unit.to_json(),
            "unitIndex": self.unit_index,
        }


@dataclass(frozen=True)
class ArithmeticMaterial:
    """The arguments of `DeliveryDispute.challengeArithmetic` (and
    `Protocol.challenge_arithmetic`); `expected` is what the chain recomputes (None for a
    record that should not exist)."""

    record: DeviceRecord
    record_proof: tuple[bytes, ...]
    used_readings: bytes
    readings_proof: tuple[bytes, ...]
    bid_device_ids: tuple[int, ...]
    expected: RecordFigures | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "record": self.record.to_json(),
            "recordProof": [_hex(node) for node in self.record_proof],
            "usedReadings": _hex(self.used_readings),
            "readingsProof": [_hex(node) for node in self.readings_proof],
            "bidDeviceIds": list(self.bid_device_ids),
        }


@dataclass(frozen=True)
class BidTotalMaterial:
    """The arguments of `DeliveryDispute.challengeBidTotal`: every record of the bid, in
    the bid's device order, with its proof under devicesRoot."""

    delivered_wh: tuple[int, ...]
    bid_index: int
    records: tuple[tuple[DeviceRecord, tuple[bytes, ...]], ...]
    bid_device_ids: tuple[int, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "deliveredWh": list(self.delivered_wh),
            "bidIndex": self.bid_index,
            "records": [
                {"record": r.to_json(), "proof": [_hex(n) for n in proof]}
                for r, proof in self.records
            ],
            "bidDeviceIds": list(self.bid_device_ids),
        }


Proof = ChallengeMaterial | ArithmeticMaterial | BidTotalMaterial
"""Anything a watcher can submit against a report."""


@dataclass(frozen=True)
class Difference:
    """One thing that does not check out: `expected` is the recomputed or signed value,
    `reported` what the report (chain or oracle) says."""

    kind: str
    message: str
    expected: int | str | None = None
    reported: int | str | None = None
    device_id: int | None = None
    bid_index: int | None = None
    interval_start: int | None = None
    field: str | None = None
    challenge: ChallengeMaterial | None = None
    proof: ArithmeticMaterial | BidTotalMaterial | None = None
    """A one-phase on-chain proof of this difference (DeliveryDispute)."""

    def to_json(self) -> dict[str, Any]:
        data = {
            "kind": self.kind,
            "message": self.message,
            "expected": self.expected,
            "reported": self.reported,
            "deviceId": self.device_id,
            "bidIndex": self.bid_index,
            "intervalStart": self.interval_start,
            "field": self.field,
        }
        if self.challenge is not None:
            data["challenge"] = self.challenge.to_json()
        if self.proof is not None:
            data["proof"] = self.proof.to_json()
        return data


@dataclass(frozen=True)
class Verdict:
    request_id: int
    round: int
    ok: bool
    differences: tuple[Difference, ...]
    source: str | None
    """The oracle whose published data was checked against the chain."""
    devices_checked: int
    readings_checked: int
    signers: tuple[str, ...] = ()

    @property
    def challenges(self) -> list[ChallengeMaterial]:
        return [d.challenge for d in self.differences if d.challenge is not None]

    @property
    def arithmetic_proofs(self) -> list[ArithmeticMaterial | BidTotalMaterial]:
        return [d.proof for d in self.differences if d.proof is not None]

    @property
    def best_proof(self) -> Proof | None:
        """A one-phase arithmetic proof if there is one (it voids at once and cannot be
        rebutted), else a contradicted reading's challenge, else None."""
        proofs: list[Proof] = [*self.arithmetic_proofs, *self.challenges]
        return proofs[0] if proofs else None

    def to_json(self) -> dict[str, Any]:
        return {
            "requestId": self.request_id,
            "round": self.round,
            "ok": self.ok,
            "source": self.source,
            "signers": list(self.signers),
            "devicesChecked": self.devices_checked,
            "readingsChecked": self.readings_checked,
            "differences": [d.to_json() for d in self.differences],
        }


# ─── The check (pure) ─────────────────────────────────────────────────────────────────


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def _signed_values(
    units: Sequence[MeterUnit],
    histories: Mapping[int, DeviceHistory],
    meter_domain: bytes,
    interval_seconds: int,
) -> dict[tuple[int, int], list[tuple[MeterUnit, int]]]:
    """(device, interval) -> [(unit, index)] over the units a dispute could use: of the
    request's interval length, signed by the key of the registry epoch in force at the
    unit's first interval, ending within it. Others are no evidence and are dropped."""
    signed: dict[tuple[int, int], list[tuple[MeterUnit, int]]] = {}
    seen: set[bytes] = set()
    for unit in units:
        history = histories.get(unit.device_id)
        key = unit_key(history, unit) if unit.interval_seconds == interval_seconds else None
        if key is None:
            continue
        try:
            digest = verify_unit(unit, meter_domain, key)
        except AttestationError:
            continue
        if digest in seen:
            continue
        seen.add(digest)
        for index, start in enumerate(unit.interval_starts):
            signed.setdefault((unit.device_id, start), []).append((unit, index))
    return signed


def check_report(
    facts: RequestFacts,
    posted: PostedReport,
    published: Sequence[PublishedReport],
    histories: Mapping[int, DeviceHistory],
    meter_domain: bytes,
    units: Sequence[MeterUnit] | None = None,
) -> Verdict:
    """Check `posted` against the public data. The used readings checked are those of the
    first published report whose roots equal the posted ones (else the first one). The
    evidence is `units` when given (e.g. an oracle's own store), else every unit any
    source published."""
    if not published:
        raise VerifyInputError("no published report to check")
    primary = next((p for p in published if p.matches(posted)), published[0])
    differences: list[Difference] = []
    if not primary.matches(posted):
        differences.append(
            Difference(
                "source",
                f"no oracle serves the posted report; checking {primary.source}'s data",
                _hex(posted.readings_root),
                _hex(primary.readings_root),
            )
        )
    pool = (
        list(units)
        if units is not None
        else [u for p in published for d in p.devices.values() for u in d.units]
    )
    signed = _signed_values(pool, histories, meter_domain, facts.window.interval_seconds)
    proof_tree = None
    if primary.devices:
        readings_tree = MerkleTree.from_leaf_hashes(
            [used_readings_leaf(d, data.used_readings) for d, data in primary.devices.items()]
        )
        if readings_tree.root == posted.readings_root:
            proof_tree = readings_tree

    records_tree = None
    if primary.records:
        tree = MerkleTree.from_leaf_hashes([r.leaf() for r in primary.records])
        if tree.root == posted.devices_root:
            records_tree = tree
    provable = _Provable(facts, posted, primary, records_tree, proof_tree).differences()

    expected_records: list[DeviceRecord] = []
    expected_used: dict[int, bytes] = {}
    readings_checked = 0
    awarded = {d for bid in facts.bids for d in bid.device_capacity_w}
    for bid in sorted(facts.bids, key=lambda b: b.bid_index):
        for device_id in sorted(bid.device_capacity_w):
            data = primary.devices.get(device_id)
            if data is None:
                differences.append(
                    Difference(
                        "missing-device",
                        f"device {device_id} (bid {bid.bid_index}) has no published record",
                        device_id=device_id,
                        bid_index=bid.bid_index,
                    )
                )
                continue
            used = unpack_used_readings(data.used_readings)
            readings_checked += len(used)
            for used_index, (start, value) in enumerate(used):
                difference = _check_reading(
                    device_id, start, value, used_index, data, signed, posted, proof_tree
                )
                if difference is not None:
                    differences.append(difference)
            conflicts = (
                {(device_id, t) for t in facts.window.interval_starts}
                if data.record.quality == Quality.CONFLICT
                else set()
            )
            measured = measure_device(facts, bid, device_id, dict(used), conflicts)
            expected_records.append(measured.record)
            expected_used[device_id] = measured.used_readings
            differences.extend(_record_differences(measured.record, data.record))
            if measured.used_readings != data.used_readings:
                differences.append(
                    Difference(
                        "used-readings",
                        f"device {device_id}: the used readings include intervals the "
                        "method does not read",
                        len(measured.used_readings) // 16,
                        len(data.used_readings) // 16,
                        device_id=device_id,
                    )
                )
    for record in primary.records:
        if record.device_id not in awarded:
            differences.append(
                Difference(
                    "unexpected-device",
                    f"device {record.device_id} has a record but is in no awarded bid",
                    device_id=record.device_id,
                )
            )

    if expected_records:
        trees = build_report_trees(expected_records, expected_used, facts.bid_count)
        for name, mine, theirs in (
            ("devicesRoot", trees.devices_root, posted.devices_root),
            ("readingsRoot", trees.readings_root, posted.readings_root),
        ):
            if mine != theirs:
                differences.append(
                    Difference(
                        "root",
                        f"{name} differs from the recomputed one",
                        _hex(mine),
                        _hex(theirs),
                        field=name,
                    )
                )
        expected_totals = trees.delivered_wh
    else:
        expected_totals = [0] * facts.bid_count
    if len(posted.delivered_wh) != len(expected_totals):
        differences.append(
            Difference(
                "bid-count",
                "the posted report has another number of bids",
                len(expected_totals),
                len(posted.delivered_wh),
            )
        )
    for bid_index, (mine, theirs) in enumerate(
        zip(expected_totals, posted.delivered_wh, strict=False)
    ):
        if mine != theirs:
            differences.append(
                Difference(
                    "bid-total",
                    f"bid {bid_index}: delivered {theirs} Wh posted, {mine} Wh recomputed",
                    mine,
                    theirs,
                    bid_index=bid_index,
                    field="deliveredWh",
                )
            )
    differences = _attach_proofs(differences, provable)
    return Verdict(
        posted.request_id,
        posted.round,
        not differences,
        tuple(differences),
        primary.source,
        len(expected_records),
        readings_checked,
        posted.signers,
    )


@dataclass(frozen=True)
class _Provable:
    """What `DeliveryDispute` can prove against the posted report from the published
    records and used readings (only when the published trees are the posted ones)."""

    facts: RequestFacts
    posted: PostedReport
    primary: PublishedReport
    records_tree: MerkleTree | None
    readings_tree: MerkleTree | None

    def differences(self) -> list[Difference]:
        if self.records_tree is None:
            return []
        found = []
        bids = {bid.bid_index: bid for bid in self.facts.bids}
        for record in self.primary.records:
            material = self._record_proof(record, bids.get(record.bid_index))
            if material is not None:
                found.append(
                    Difference(
                        "arithmetic",
                        f"device {record.device_id}: the record does not follow from the "
                        "report's own data (provable on-chain)",
                        device_id=record.device_id,
                        bid_index=record.bid_index,
                        proof=material,
                    )
                )
        for bid in self.facts.bids:
            total = self._bid_total_proof(bid)
            if total is not None:
                found.append(
                    Difference(
                        "bid-total-records",
                        f"bid {bid.bid_index}: the paid figure is not the sum of its device "
                        "records (provable on-chain)",
                        bid_index=bid.bid_index,
                        proof=total,
                    )
                )
        return found

    def _record_proof(
        self, record: DeviceRecord, bid: AwardedBid | None
    ) -> ArithmeticMaterial | None:
        assert self.records_tree is not None
        record_proof = tuple(self.records_tree.proof(record.leaf()))
        if bid is None or record.device_id not in bid.device_capacity_w:
            # No such awarded bid, or not this bid's device: the record should not exist.
            device_ids = tuple(sorted(bid.device_capacity_w)) if bid is not None else ()
            return ArithmeticMaterial(record, record_proof, b"", (), device_ids)
        data = self.primary.devices.get(record.device_id)
        if data is None or self.readings_tree is None:
            return None
        window = self.facts.window
        if not recomputable_on_chain(self.facts.baseline_method, window):
            return None
        leaf = used_readings_leaf(record.device_id, data.used_readings)
        readings_proof = tuple(self.readings_tree.proof(leaf))
        device_ids = tuple(sorted(bid.device_capacity_w))
        if not _well_formed(data.used_readings):
            return ArithmeticMaterial(
                record, record_proof, data.used_readings, readings_proof, device_ids
            )
        cap = device_cap_wh(
            bid.awarded_w,
            bid.device_capacity_w[record.device_id],
            bid.capacity_w,
            window.interval_seconds,
        )
        expected = recompute_from_used_readings(
            self.facts.baseline_method, self.facts.direction, window, cap, data.used_readings
        )
        if record_follows(record, expected):
            return None
        return ArithmeticMaterial(
            record, record_proof, data.used_readings, readings_proof, device_ids, expected
        )

    def _bid_total_proof(self, bid: AwardedBid) -> BidTotalMaterial | None:
        assert self.records_tree is not None
        by_device = {r.device_id: r for r in self.primary.records}
        device_ids = tuple(sorted(bid.device_capacity_w))
        if any(d not in by_device for d in device_ids):
            return None  # an omitted record cannot be shown on-chain
        records = [by_device[d] for d in device_ids]
        total = sum(max(r.delivered_wh, 0) for r in records)
        posted = self.posted.delivered_wh
        if bid.bid_index >= len(posted):
            return None
        misfiled = any(r.bid_index != bid.bid_index for r in records)
        if total == posted[bid.bid_index] and not misfiled:
            return None
        return BidTotalMaterial(
            posted,
            bid.bid_index,
            tuple((r, tuple(self.records_tree.proof(r.leaf()))) for r in records),
            device_ids,
        )


_PROVES = {"arithmetic": ("record", "unexpected-device"), "bid-total-records": ("bid-total",)}
"""Which difference kinds an on-chain proof backs (it is attached to the first of them)."""


def _attach_proofs(differences: list[Difference], provable: list[Difference]) -> list[Difference]:
    """Each on-chain proof attached to the difference it proves (same device or bid), or
    added as a difference of its own when the recomputation found none."""
    merged = list(differences)
    for proven in provable:
        index = next((i for i, d in enumerate(merged) if _proves(proven, d)), None)
        if index is None:
            merged.append(proven)
        else:
            merged[index] = dataclasses.replace(merged[index], proof=proven.proof)
    return merged


def _proves(proven: Difference, difference: Difference) -> bool:
    if difference.proof is not None or difference.kind not in _PROVES[proven.kind]:
        return False
    if proven.kind == "arithmetic":
        return difference.device_id == proven.device_id
    return difference.bid_index == proven.bid_index


def _well_formed(used_readings: bytes) -> bool:
    """`BaselineMath.wellFormedUsedReadings`: whole 16-byte pairs, strictly ascending."""
    if len(used_readings) % 16:
        return False
    starts = [t for t, _ in unpack_used_readings(used_readings)]
    return all(a < b for a, b in itertools.pairwise(starts))


def _check_reading(
    device_id: int,
    start: int,
    value: int,
    used_index: int,
    data: DeviceData,
    signed: Mapping[tuple[int, int], list[tuple[MeterUnit, int]]],
    posted: PostedReport,
    proof_tree: MerkleTree | None,
) -> Difference | None:
    backing = signed.get((device_id, start), [])
    if not backing:
        return Difference(
            "unsigned-reading",
            f"device {device_id} interval {start}: used {value} Wh, no device-signed unit",
            None, value, device_id=device_id, interval_start=start,
        )  # fmt: skip
    contradiction = next(
        ((unit, index) for unit, index in backing if unit.energy_wh[index] != value), None
    )
    if contradiction is None:
        return None
    unit, unit_index = contradiction
    leaf = used_readings_leaf(device_id, data.used_readings)
    proof = tuple(proof_tree.proof(leaf)) if proof_tree is not None else data.readings_proof
    material = None
    if verify_proof(posted.readings_root, leaf, proof):
        material = ChallengeMaterial(
            device_id, data.used_readings, proof, used_index, unit, unit_index
        )
    return Difference(
        "contradicted-reading",
        f"device {device_id} interval {start}: the report used {value} Wh, "
        f"the device signed {unit.energy_wh[unit_index]} Wh",
        unit.energy_wh[unit_index], value, device_id=device_id, interval_start=start,
        challenge=material,
    )  # fmt: skip


def _record_differences(expected: DeviceRecord, reported: DeviceRecord) -> list[Difference]:
    found = []
    for name in RECORD_FIELDS:
        mine, theirs = int(getattr(expected, name)), int(getattr(reported, name))
        if mine != theirs:
            found.append(
                Difference(
                    "record",
                    f"device {expected.device_id}: {name} {theirs} published, {mine} recomputed",
                    mine,
                    theirs,
                    device_id=expected.device_id,
                    bid_index=expected.bid_index,
                    field=name,
                )
            )
    return found


# ─── Chain and HTTP reads ─────────────────────────────────────────────────────────────


def signers_of(
    protocol: Protocol, signer_bitmap: int, block: int | str = "latest"
) -> tuple[str, ...]:
    """Oracle addresses of a report's signer bitmap (bit i = oracle id i + 1), as seated at
    `block` (pass the report's block: an id may be given to another oracle later)."""
    return tuple(
        protocol.oracle_by_id(bit + 1, block) for bit in range(64) if signer_bitmap >> bit & 1
    )


def posted_report(protocol: Protocol, submission: ReportSubmission) -> PostedReport:
    """A posted report with its signers as seated when it was posted."""
    return PostedReport(
        **{name.name: getattr(submission, name.name) for name in dataclasses.fields(submission)},
        signers=signers_of(protocol, submission.signer_bitmap, submission.block_number),
    )


def read_posted_report(
    protocol: Protocol, request_id: int, round_: int | None = None
) -> PostedReport:
    """The report posted for `round_` (default: the latest posted round)."""
    submissions = protocol.report_submissions(request_id, round_)
    if not submissions:
        which = "" if round_ is None else f" in round {round_}"
        raise VerifyInputError(f"request {request_id} has no report posted{which} yet")
    latest = max(submissions, key=lambda s: (s.round, s.block_number))
    return posted_report(protocol, latest)


def device_histories(protocol: Protocol, device_ids: Sequence[int]) -> dict[int, DeviceHistory]:
    """Every epoch of each device (`epochCount` + `epochAt`): a unit is judged by the key in
    force at its intervals, never the current one. An unregistered id is left out (no unit
    of it is evidence)."""
    histories = {}
    for device_id in device_ids:
        history = protocol.device_history(device_id)
        if history is not None:
            histories[device_id] = history
    return histories


def unit_key(history: DeviceHistory | None, unit: MeterUnit) -> DeviceSigningKey | None:
    """The key `unit` must verify against, None when no dispute could use it (unknown
    device, an interval before the registration, or a unit running past its epoch)."""
    return None if history is None else history.key_for(unit)


MAX_ORACLE_ANSWER_BYTES = 64 * 1024 * 1024
"""Largest oracle answer decoded (a report holds one record per awarded device)."""


def _get(http: httpx.Client, url: str) -> dict[str, Any]:
    """The JSON object an oracle serves at `url`; VerifyInputError for anything else
    (unreachable, an error status, or a body `gridflex.safe_json` refuses: a hostile
    oracle cannot crash or stall the check, it is one oracle that failed)."""
    try:
        answer = http.get(url)
    except httpx.HTTPError as error:
        raise VerifyInputError(f"oracle unreachable: {url} ({error})") from error
    try:
        body = safe_json.loads(answer.content, max_bytes=MAX_ORACLE_ANSWER_BYTES)
    except safe_json.UnsafeJsonError as error:
        if answer.status_code != 200:
            raise VerifyInputError(
                f"oracle answered {answer.status_code} for {url}: {answer.text[:200]}"
            ) from error
        raise VerifyInputError(f"oracle answer for {url} refused: {error.reason}") from error
    if answer.status_code != 200:
        detail = body.get("detail", answer.text) if isinstance(body, dict) else answer.text
        raise VerifyInputError(f"oracle answered {answer.status_code} for {url}: {detail}")
    if not isinstance(body, dict):
        raise VerifyInputError(f"oracle answer for {url} is not a JSON object")
    return body


@contextmanager
def _fields_of(url: str) -> Iterator[None]:
    """A missing or ill-typed field of an oracle's answer becomes VerifyInputError."""
    try:
        yield
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise VerifyInputError(f"oracle answer for {url} is malformed: {error!r}"[:300]) from error


def _bytes(value: str) -> bytes:
    return bytes.fromhex(value.removeprefix("0x"))


def fetch_report_summary(
    http: httpx.Client, base_url: str, request_id: int, round_: int
) -> PublishedReport:
    """`GET /v1/reports/{id}?round=`: records and roots, no device data yet."""
    base = base_url.rstrip("/")
    url = f"{base}/v1/reports/{request_id}?round={round_}"
    body = _get(http, url)
    with _fields_of(url):
        return PublishedReport(
            source=base,
            round=int(body["round"]),
            signer=body.get("signer"),
            delivered_wh=tuple(int(v) for v in body["deliveredWh"]),
            devices_root=_bytes(body["devicesRoot"]),
            readings_root=_bytes(body["readingsRoot"]),
            records=tuple(DeviceRecord.from_json(r) for r in body["records"]),
        )


def fetch_device_data(
    http: httpx.Client, report: PublishedReport, request_id: int
) -> PublishedReport:
    """The same report with every device's used readings, proof and signed units."""
    devices: dict[int, DeviceData] = {}
    for record in report.records:
        url = (
            f"{report.source}/v1/reports/{request_id}/devices/{record.device_id}"
            f"?round={report.round}"
        )
        body = _get(http, url)
        with _fields_of(url):
            devices[record.device_id] = DeviceData(
                DeviceRecord.from_json(body["record"]),
                _bytes(body["usedReadings"]),
                tuple(_bytes(node) for node in body["readingsProof"]),
                tuple(MeterUnit.from_json(unit) for unit in body["units"]),
            )
    return dataclasses.replace(report, devices=devices)


def fetch_published_report(
    http: httpx.Client, base_url: str, request_id: int, round_: int
) -> PublishedReport:
    return fetch_device_data(
        http, fetch_report_summary(http, base_url, request_id, round_), request_id
    )


def read_facts(protocol: Protocol, request_id: int, round_: int) -> RequestFacts:
    """The measurement facts of the request, for the round being checked."""
    try:
        facts = read_request_facts(protocol, request_id)
    except ReportUnavailableError as error:
        raise VerifyInputError(error.reason) from error
    return dataclasses.replace(facts, round=round_)


def verify_request(
    protocol: Protocol,
    request_id: int,
    oracle_urls: Sequence[str],
    round_: int | None = None,
    http: httpx.Client | None = None,
) -> Verdict:
    """Everything `gridflex verify` does: read the chain, fetch every oracle's public data
    (oracles that fail are skipped while one answers), check. VerifyInputError when the
    check cannot run."""
    if not oracle_urls:
        raise VerifyInputError("give at least one oracle URL (--oracle)")
    facts = read_facts(protocol, request_id, 0)
    posted = read_posted_report(protocol, request_id, round_)
    facts = dataclasses.replace(facts, round=posted.round)
    own_http = http is None
    client = http or httpx.Client(timeout=10.0)
    published, errors = [], []
    try:
        for url in oracle_urls:
            try:
                published.append(fetch_published_report(client, url, request_id, posted.round))
            except VerifyInputError as error:
                errors.append(str(error))
    finally:
        if own_http:
            client.close()
    if not published:
        raise VerifyInputError("; ".join(errors))
    device_ids = sorted({d for bid in facts.bids for d in bid.device_capacity_w})
    domain = meter_domain_separator(protocol.client.chain_id, protocol.registry.address)
    return check_report(facts, posted, published, device_histories(protocol, device_ids), domain)


def fetch_conflict_evidence(
    http: httpx.Client, base_url: str, request_id: int, round_: int
) -> dict[str, Any]:
    """`GET /v1/reports/{id}/conflicts?round=`: the oracle's evidence behind the report's
    CONFLICT records (both signed units per pair); VerifyInputError when it cannot be read
    (through the same guarded fetch as every other oracle answer)."""
    base = base_url.rstrip("/")
    return _get(http, f"{base}/v1/reports/{request_id}/conflicts?round={round_}")
