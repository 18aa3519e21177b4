"""The report watcher: follows every `ReportSubmitted` event (request and round) while its
dispute window is open, asks a finder for a fraud proof, and challenges with it.

One loop for the oracle's built-in watcher (`oracle/watcher.py`: evidence from its own
store) and `gridflex watch` (anyone: evidence from the public oracle APIs via
`gridflex.verify`); only the finder differs. Idempotent and restartable: events are
rescanned from the deployment block; a report already voided (by us or anyone) is done
(`NotDisputable`); errors back off and retry until the window closes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx
import structlog

from gridflex.chain.protocol import ChallengeResult, Protocol, RequestStatus
from gridflex.errors import TransactionReverted
from gridflex.verify import (
    ChallengeMaterial,
    PostedReport,
    check_report,
    device_keys,
    fetch_published_report,
    posted_from_event,
    read_facts,
)

log = structlog.get_logger(__name__)

FIRST_BACKOFF_SECONDS = 1.0

Finder = Callable[[PostedReport], ChallengeMaterial | None]
"""A fraud proof against the posted report, or None when it checks out. Raising means
"cannot tell yet" (retried)."""


@dataclass
class _Pending:
    posted: PostedReport
    next_attempt: float = 0.0
    backoff: float = FIRST_BACKOFF_SECONDS


@dataclass
class ReportWatcher:
    """Checks posted reports and challenges them; `tick` is one pass, `start` a thread."""

    protocol: Protocol
    finder: Finder
    now: Callable[[], int]
    """Unix time the dispute window is measured against (the chain's, or the oracle's clock)."""
    poll_seconds: float = 2.0
    retry_max_seconds: float = 60.0
    challenged: list[ChallengeResult] = field(default_factory=list)
    _pending: dict[tuple[int, int], _Pending] = field(default_factory=dict)
    _done: set[tuple[int, int]] = field(default_factory=set)
    _next_block: int = -1
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="report-watcher", daemon=True)
        self._thread.start()
        log.info("report watcher started", challenger=self.protocol.address)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception as error:  # never let the loop die; the next tick retries
                log.warning("watcher tick failed", error=str(error))
            self._stop.wait(self.poll_seconds)

    def tick(self) -> None:
        self._discover()
        now = time.monotonic()
        for key, pending in list(self._pending.items()):
            if pending.next_attempt > now or self._stop.is_set():
                continue
            try:
                done = self.advance(pending.posted)
            except Exception as error:
                pending.next_attempt = now + pending.backoff
                log.warning(
                    "watcher step failed",
                    request_id=key[0],
                    round=key[1],
                    retry_in=pending.backoff,
                    error=str(error),
                )
                pending.backoff = min(2 * pending.backoff, self.retry_max_seconds)
                continue
            if done:
                del self._pending[key]
                self._done.add(key)

    def _discover(self) -> None:
        if self._next_block < 0:
            self._next_block = self.protocol.deployment.deployed_at_block
        latest = int(self.protocol.client.w3.eth.block_number)
        if latest < self._next_block:
            return
        events = self.protocol.market.events.ReportSubmitted().get_logs(
            from_block=self._next_block, to_block=latest
        )
        for event in events:
            key = (int(event["args"]["requestId"]), int(event["args"]["round"]))
            if key not in self._done and key not in self._pending:
                self._pending[key] = _Pending(posted_from_event(self.protocol, event))
        self._next_block = latest + 1

    def advance(self, posted: PostedReport) -> bool:
        """Check one posted report and challenge it if the finder has a proof; True when
        nothing is left to do (checked out, voided, window closed, or challenged)."""
        state = self.protocol.request(posted.request_id)
        if state.status != RequestStatus.REPORTED or state.report_round != posted.round:
            return True  # voided (by anyone) or settled: nothing left to dispute
        if self.now() >= state.dispute_ends_at:
            return True
        material = self.finder(posted)
        if material is None:
            log.info("posted report checks out", request_id=posted.request_id, round=posted.round)
            return True
        try:
            result = self.protocol.challenge(
                posted.request_id,
                material.device_id,
                material.used_readings,
                list(material.readings_proof),
                material.used_index,
                material.unit,
                material.unit_index,
            )
        except TransactionReverted as error:
            if error.error_name == "NotDisputable":
                log.info("report no longer disputable", request_id=posted.request_id)
                return True
            raise
        self.challenged.append(result)
        log.warning(
            "report challenged",
            request_id=result.request_id,
            round=result.round,
            device_id=result.device_id,
            interval_start=result.interval_start,
            used_wh=result.used_energy_wh,
            signed_wh=result.signed_energy_wh,
            slashed=result.slashed_total,
        )
        return True


def public_finder(protocol: Protocol, oracle_urls: Sequence[str], http: httpx.Client) -> Finder:
    """Evidence from the public oracle APIs: `gridflex.verify` over every oracle that
    answers; the first contradicted reading with a valid proof is the challenge."""
    from gridflex.attestation import meter_domain_separator
    from gridflex.verify import VerifyInputError

    def find(posted: PostedReport) -> ChallengeMaterial | None:
        facts = read_facts(protocol, posted.request_id, posted.round)
        published = []
        for url in oracle_urls:
            try:
                published.append(fetch_published_report(http, url, posted.request_id, posted.round))
            except VerifyInputError as error:
                log.info("oracle not usable", oracle=url, error=str(error))
        if not any(p.matches(posted) for p in published):
            raise VerifyInputError("no oracle serves the posted report's data yet")
        device_ids = sorted({d for bid in facts.bids for d in bid.device_capacity_w})
        domain = meter_domain_separator(protocol.client.chain_id, protocol.registry.address)
        verdict = check_report(facts, posted, published, device_keys(protocol, device_ids), domain)
        return verdict.challenges[0] if verdict.challenges else None

    return find


def chain_now(protocol: Protocol) -> Callable[[], int]:
    """The latest block's timestamp: what the contracts compare the window against."""
    return lambda: int(protocol.client.w3.eth.get_block("latest")["timestamp"])
