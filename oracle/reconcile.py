"""Reconciliation before signing: make this oracle hold every signed unit its peers hold
for the readings a request's measurement can read, so that honest oracles measure the same
readings and sign one identical report even when a provider shows each oracle a different
value for an interval (a split view).

Per peer and awarded device, over the request's `reading_span`:

1. page the peer's `GET /v1/devices/{id}/readings?start=&end=` (each reading names the
   digest of the unit that signed it) and its `GET /v1/devices/{id}/conflicts` (both units
   of each contradiction it holds, so evidence travels even between oracles that cannot
   reach each other directly);
2. every digest we do not hold (as a stored unit or in our evidence) is fetched with
   `GET /v1/units/{digest}` (evidence units come inline);
3. the fetched units go through the ordinary ingest (`Ingestor.ingest_batch`): verified
   exactly like a node's, stored when new, and a different signed value for a stored
   (device, interval) becomes conflict evidence, which measurement turns into CONFLICT.

Bounded against a hostile peer: responses are read up to `MAX_PEER_RESPONSE_BYTES` and
refused above `MAX_JSON_DEPTH` nesting before decoding; at most `MAX_READING_PAGES` pages
per device, `MAX_UNITS_PER_PEER_PASS` fetched units and `MAX_PEER_PASS_SECONDS` per peer
and pass (the deadline is checked between chunks of an answer too); a digest the
ingest refused is not fetched again (remembered up to `MAX_REFUSED_DIGESTS`). Nothing a
peer sends is stored unless it is a valid unit signed by the registered device key.
Idempotent: a second pass over the same holdings fetches nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from time import monotonic
from typing import Any

import httpx
import structlog
from sqlalchemy import Engine, or_, select

from gridflex import safe_json
from gridflex.rules.measurement import ReadingSpan, RequestFacts, reading_span
from oracle.ingest import Ingestor, Rejection, UnitStatus
from oracle.models import ConflictEvidence, MeterUnitRecord, Reading

log = structlog.get_logger(__name__)

READINGS_PAGE = 5_000
"""Readings per page asked of a peer (a 46-day X-of-Y span of 900 s intervals is 4,416)."""
MAX_READING_PAGES = 8
MAX_UNITS_PER_PEER_PASS = 2_000
MAX_PEER_RESPONSE_BYTES = 4 * 1024 * 1024
MAX_JSON_DEPTH = 16
MAX_REFUSED_DIGESTS = 100_000
INGEST_CHUNK = 200
MAX_PEER_PASS_SECONDS = 60.0
"""Wall time one pass may spend on one peer (a slow-dripping peer cannot stall the loop)."""
RECONCILE_RETRY_POLLS = 3
"""The committee loop retries a pass that fell short of k-1 peers after this many polls."""
SIGNED_FIELDS = (
    "deviceId",
    "firstIntervalStart",
    "intervalSeconds",
    "sequence",
    "energyWh",
    "signature",
)
PERMANENT_REJECTIONS = frozenset(
    {
        Rejection.MALFORMED,
        Rejection.INVALID_FIELD,
        Rejection.IMPLAUSIBLE,
        Rejection.BAD_SIGNATURE,
    }
)
"""Refusals that a later pass cannot change (unlike an unregistered device or a clock)."""
_DIGEST = re.compile(r"^0x[0-9a-f]{64}$")


class PeerMisbehavedError(RuntimeError):
    """A peer's answer broke a bound or the expected shape; the pass with it failed."""


@dataclass
class PeerPass:
    """What one pass with one peer did."""

    peer: str
    complete: bool = False
    fetched: int = 0
    stored: int = 0
    conflicts: int = 0
    error: str | None = None


@dataclass
class ReconcileOutcome:
    passes: list[PeerPass] = field(default_factory=list)

    @property
    def peers_reconciled(self) -> int:
        return sum(1 for one in self.passes if one.complete)


def bounded_json(body: bytes) -> Any:
    """Decode a peer's answer with the shared guard (depth and duplicate keys checked before
    decoding), as a PeerMisbehavedError so the pass with that peer ends."""
    try:
        return safe_json.loads(body, max_bytes=MAX_PEER_RESPONSE_BYTES, max_depth=MAX_JSON_DEPTH)
    except ValueError as error:
        raise PeerMisbehavedError(f"answer refused: {error}") from error


class Reconciler:
    """Fetches from peers the units this oracle lacks for a request and ingests them."""

    def __init__(
        self, engine: Engine, ingestor: Ingestor, peers: Iterable[str], http: httpx.Client
    ) -> None:
        self.engine = engine
        self.ingestor = ingestor
        self.peers = list(peers)
        self.http = http
        self._refused: set[str] = set()
        self._deadline = 0.0

    def reconcile(self, facts: RequestFacts) -> ReconcileOutcome:
        """One pass with every peer; a peer counts when every answer of it was read in
        full and within the bounds (then we hold everything it holds for the request)."""
        devices = sorted({d for bid in facts.bids for d in bid.device_capacity_w})
        span = reading_span(facts.baseline_method, facts.window)
        outcome = ReconcileOutcome()
        for peer in self.peers:
            one = PeerPass(peer)
            self._deadline = monotonic() + MAX_PEER_PASS_SECONDS
            try:
                for device_id in devices:
                    self._reconcile_device(peer, device_id, span, one)
                one.complete = True
            except (httpx.HTTPError, PeerMisbehavedError) as error:
                one.error = str(error) or type(error).__name__
            outcome.passes.append(one)
            log.info(
                "reconciled with peer" if one.complete else "reconciliation with peer failed",
                request_id=facts.request_id,
                round=facts.round,
                peer=peer,
                fetched=one.fetched,
                stored=one.stored,
                conflicts=one.conflicts,
                error=one.error,
            )
        return outcome

    # ─── One device with one peer ─────────────────────────────────────────────────────

    def _reconcile_device(
        self, peer: str, device_id: int, span: ReadingSpan, one: PeerPass
    ) -> None:
        theirs = self._peer_readings(peer, device_id, span)
        mine = self._my_readings(device_id, span)
        wanted = {digest for start, digest in theirs.items() if mine.get(start) != digest}
        inline = self._peer_evidence_units(peer, device_id, span)
        wanted |= set(inline)
        missing = sorted(wanted - self._known(wanted) - self._refused)
        budget = MAX_UNITS_PER_PEER_PASS - one.fetched
        truncated = len(missing) > budget
        units: list[tuple[str, dict[str, Any]]] = []
        for digest in missing[: max(budget, 0)]:
            unit = inline.get(digest) or self._fetch_unit(peer, digest)
            one.fetched += 1
            if unit is not None and unit.get("deviceId") == device_id:
                units.append((digest, {name: unit.get(name) for name in SIGNED_FIELDS}))
            else:
                self._refuse(digest)
        for chunk_start in range(0, len(units), INGEST_CHUNK):
            self._ingest(units[chunk_start : chunk_start + INGEST_CHUNK], one)
        if truncated:  # the next pass goes on from what this one stored
            raise PeerMisbehavedError(
                f"more than {MAX_UNITS_PER_PEER_PASS} units to fetch in one pass"
            )

    def _ingest(self, units: list[tuple[str, dict[str, Any]]], one: PeerPass) -> None:
        """Ingest all-or-nothing batches: resend the units that were valid but held back
        by a rejected one (a conflict's evidence is kept on the first try). A unit refused
        for good (bad signature, malformed, implausible...) is not fetched again."""
        batch = units
        for _attempt in range(3):
            result = self.ingestor.ingest_batch([unit for _digest, unit in batch])
            one.stored += result.count(UnitStatus.ACCEPTED)
            for rejected in result.rejected:
                if rejected.rejection == Rejection.CONFLICT:
                    one.conflicts += 1
                elif rejected.rejection in PERMANENT_REJECTIONS:
                    self._refuse(batch[rejected.index][0])
                log.info("peer unit refused", peer=one.peer, reason=rejected.reason)
            if result.stored:
                return
            batch = [batch[r.index] for r in result.results if r.status == UnitStatus.VALID]
            if not batch:
                return

    # ─── Reads ────────────────────────────────────────────────────────────────────────

    def _get(self, url: str, params: dict[str, Any] | None = None) -> Any | None:
        """A peer's JSON answer, None on 404; bounded in bytes, depth and time."""
        self._check_deadline(url)
        with self.http.stream("GET", url, params=params) as answer:
            if answer.status_code == 404:
                return None
            if answer.status_code != 200:
                raise PeerMisbehavedError(f"{url} answered {answer.status_code}")
            body = bytearray()
            for chunk in answer.iter_bytes():
                body += chunk
                if len(body) > MAX_PEER_RESPONSE_BYTES:
                    raise PeerMisbehavedError(f"{url} answer above {MAX_PEER_RESPONSE_BYTES} B")
                self._check_deadline(url)
        return bounded_json(bytes(body))

    def _check_deadline(self, url: str) -> None:
        if monotonic() > self._deadline:
            raise PeerMisbehavedError(
                f"pass with the peer took over {MAX_PEER_PASS_SECONDS:.0f} s (at {url})"
            )

    def _peer_readings(self, peer: str, device_id: int, span: ReadingSpan) -> dict[int, str]:
        """{interval start: unit digest} of the peer's readings the measurement can read."""
        readings: dict[int, str] = {}
        params: dict[str, Any] = {"start": span.start, "end": span.end, "limit": READINGS_PAGE}
        for _page in range(MAX_READING_PAGES):
            page = self._get(f"{peer}/v1/devices/{device_id}/readings", params)
            if page is None:
                return readings
            if not isinstance(page, dict) or not isinstance(page.get("readings"), list):
                raise PeerMisbehavedError("readings page of an unexpected shape")
            for reading in page["readings"]:
                start = reading.get("interval_start") if isinstance(reading, dict) else None
                digest = reading.get("unit_digest") if isinstance(reading, dict) else None
                if type(start) is not int or not isinstance(digest, str):
                    raise PeerMisbehavedError("reading of an unexpected shape")
                if span.contains(start) and _DIGEST.match(digest.lower()):
                    readings[start] = digest.lower()
            cursor = page.get("next_cursor")
            if cursor is None:
                return readings
            if type(cursor) is not int or cursor < params.get("cursor", -1):
                raise PeerMisbehavedError("readings cursor goes backwards")
            params["cursor"] = cursor
        raise PeerMisbehavedError(f"more than {MAX_READING_PAGES} pages of readings")

    def _peer_evidence_units(
        self, peer: str, device_id: int, span: ReadingSpan
    ) -> dict[str, dict[str, Any]]:
        """{digest: signed unit} of both sides of the peer's evidence for the device."""
        answer = self._get(
            f"{peer}/v1/devices/{device_id}/conflicts", {"start": span.start, "end": span.end}
        )
        if answer is None:
            return {}
        conflicts = answer.get("conflicts") if isinstance(answer, dict) else None
        if not isinstance(conflicts, list):
            raise PeerMisbehavedError("conflicts answer of an unexpected shape")
        units: dict[str, dict[str, Any]] = {}
        for pair in conflicts:
            for side in ("existing", "conflicting"):
                unit = pair.get(side) if isinstance(pair, dict) else None
                digest = unit.get("digest") if isinstance(unit, dict) else None
                if isinstance(digest, str) and _DIGEST.match(digest.lower()):
                    units[digest.lower()] = unit  # type: ignore[assignment]
        return units

    def _fetch_unit(self, peer: str, digest: str) -> dict[str, Any] | None:
        unit = self._get(f"{peer}/v1/units/{digest}")
        return unit if isinstance(unit, dict) else None

    def _my_readings(self, device_id: int, span: ReadingSpan) -> dict[int, str]:
        query = (
            select(Reading.interval_start, MeterUnitRecord.digest)
            .join(MeterUnitRecord, MeterUnitRecord.id == Reading.unit_id)  # type: ignore[arg-type]
            .where(
                Reading.device_id == device_id,  # type: ignore[arg-type]
                Reading.interval_start >= span.start,  # type: ignore[arg-type]
                Reading.interval_start < span.end,  # type: ignore[arg-type]
            )
        )
        with self.engine.connect() as connection:
            return {
                int(start): "0x" + bytes(digest).hex()
                for start, digest in connection.execute(query)
            }

    def _known(self, digests: set[str]) -> set[str]:
        """The digests among `digests` we hold as a stored unit or as evidence."""
        raw = [bytes.fromhex(d[2:]) for d in digests]
        known: set[bytes] = set()
        with self.engine.connect() as connection:
            for offset in range(0, len(raw), 500):
                chunk = raw[offset : offset + 500]
                known.update(
                    connection.execute(
                        select(MeterUnitRecord.digest).where(MeterUnitRecord.digest.in_(chunk))  # type: ignore[attr-defined]
                    ).scalars()
                )
                for conflicting, existing in connection.execute(
                    select(
                        ConflictEvidence.conflicting_digest, ConflictEvidence.existing_digest
                    ).where(
                        or_(
                            ConflictEvidence.conflicting_digest.in_(chunk),  # type: ignore[attr-defined]
                            ConflictEvidence.existing_digest.in_(chunk),  # type: ignore[attr-defined]
                        )
                    )
                ):
                    known.update((bytes(conflicting), bytes(existing)))
        return {"0x" + bytes(d).hex() for d in known}

    def _refuse(self, digest: str) -> None:
        if len(self._refused) < MAX_REFUSED_DIGESTS:
            self._refused.add(digest)
