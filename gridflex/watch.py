"""The report watcher: follows every `ReportSubmitted` event (request and round) while its
dispute window is open, asks a finder for a fraud proof, and challenges with it; then waits
for the challenge's response deadline (chain time) and resolves it (voids the report,
slashes its signers). An arithmetic proof (`DeliveryDispute`: a record that does not follow
from the report's own used readings, a per-bid figure that is not the sum of its records)
is one-phase: it voids the report and slashes its signers at once. With a rebuttal finder
(an oracle's watcher) it also follows every `ChallengeOpened` event and rebuts a challenge
with the device-signed unit carrying the used value when it holds one (the device
equivocated).

One loop for the oracle's built-in watcher (`oracle/watcher.py`: evidence from its own
store) and `gridflex watch` (anyone: evidence from the public oracle APIs via
`gridflex.verify`); only the finders differ. Idempotent and restartable: events are
rescanned from the deployment block; a report already voided (by us or anyone) is done
(`NotDisputable`); a challenge already rebutted or resolved is done
(`ChallengeNotPending`); errors back off and retry until the window closes. A challenge
locks `challengeBond` of the challenger's free stake (lost if rebutted): without it the
challenge fails with `InsufficientFreeStake`, logged with the bond it needs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx
import structlog

from gridflex.chain.protocol import (
    ArithmeticProofResult,
    ChallengeResult,
    ChallengeState,
    Protocol,
    RebutResult,
    ResolveResult,
)
from gridflex.errors import TransactionReverted
from gridflex.rules.attestation import MeterUnit
from gridflex.rules.types import ChallengeStatus, RequestStatus
from gridflex.verify import (
    ArithmeticMaterial,
    BidTotalMaterial,
    ChallengeMaterial,
    PostedReport,
    Proof,
    check_report,
    device_histories,
    fetch_published_report,
    posted_report,
    read_facts,
)

log = structlog.get_logger(__name__)

FIRST_BACKOFF_SECONDS = 1.0

Finder = Callable[[PostedReport], Proof | None]
"""A fraud proof against the posted report (a contradicted reading's challenge or a
one-phase arithmetic proof), or None when it checks out. Raising means "cannot tell yet"
(retried)."""

RebuttalFinder = Callable[[ChallengeState], tuple[MeterUnit, int] | None]
"""A device-signed unit and the index of the challenged interval in it whose value is the
one the report used (proof of equivocation), or None when this watcher has nothing to say
about the challenge. Raising means "cannot tell yet" (retried)."""

DONE_CHALLENGE_ERRORS = frozenset({"ChallengeNotPending"})
"""Reverts meaning a challenge needs nothing more from us (rebutted or resolved by anyone)."""


@dataclass
class _Pending:
    posted: PostedReport
    next_attempt: float = 0.0
    backoff: float = FIRST_BACKOFF_SECONDS


@dataclass
class _Retry:
    """Backoff state of one challenge we resolve or may rebut."""

    challenge_id: int
    response_deadline: int = 0
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
    rebuttal_finder: RebuttalFinder | None = None
    """When set, challenges opened by anyone are offered to it and rebutted with its unit."""
    chain_time: Callable[[], int] | None = None
    """The chain's time, against which response deadlines count (default: latest block)."""
    challenged: list[ChallengeResult] = field(default_factory=list)
    resolved: list[ResolveResult] = field(default_factory=list)
    rebutted: list[RebutResult] = field(default_factory=list)
    proven: list[ArithmeticProofResult] = field(default_factory=list)
    """Reports this watcher voided with an arithmetic proof."""
    _pending: dict[tuple[int, int], _Pending] = field(default_factory=dict)
    _done: set[tuple[int, int]] = field(default_factory=set)
    _to_resolve: dict[int, _Retry] = field(default_factory=dict)
    _to_rebut: dict[int, _Retry] = field(default_factory=dict)
    _challenges_seen: set[int] = field(default_factory=set)
    _next_block: int = -1
    _next_challenge_block: int = -1
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
        self._check_reports()
        self._resolve_due()
        if self.rebuttal_finder is not None:
            self._discover_challenges()
            self._rebut_pending()

    def _chain_now(self) -> int:
        if self.chain_time is not None:
            return self.chain_time()
        return self.protocol.latest_block_timestamp()

    def _backoff(self, retry: _Retry, what: str, error: Exception) -> None:
        retry.next_attempt = time.monotonic() + retry.backoff
        log.warning(what, challenge_id=retry.challenge_id, retry_in=retry.backoff, error=str(error))
        retry.backoff = min(2 * retry.backoff, self.retry_max_seconds)

    def _check_reports(self) -> None:
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
        latest = self.protocol.block_number()
        if latest < self._next_block:
            return
        submissions = self.protocol.report_submissions(from_block=self._next_block, to_block=latest)
        for submission in submissions:
            key = (submission.request_id, submission.round)
            if key not in self._done and key not in self._pending:
                self._pending[key] = _Pending(posted_report(self.protocol, submission))
        self._next_block = latest + 1

    def advance(self, posted: PostedReport) -> bool:
        """Check one posted report and challenge it if the finder has a proof; True when
        nothing is left to do here (checked out, voided, window closed, or challenged: a
        challenge we opened is then resolved by `_resolve_due`). False while a challenge is
        pending against the report: it is queued for resolution and the report looked at
        again once it is settled (a rebutted one leaves the report open to other proofs)."""
        state = self.protocol.request(posted.request_id)
        if state.status != RequestStatus.REPORTED or state.report_round != posted.round:
            return True  # voided (by anyone) or settled: nothing left to dispute
        if self.now() >= state.dispute_ends_at:
            return True
        # Challenges run concurrently: anyone's pending challenge against this round is
        # resolved when due (anyone may; the challenger is paid), and a decoy on another
        # reading does not stop us from challenging ours.
        pending = self.protocol.pending_challenges(posted.request_id, posted.round)
        for challenge in pending:
            if challenge.challenge_id not in self._to_resolve:
                self._to_resolve[challenge.challenge_id] = _Retry(
                    challenge.challenge_id, challenge.response_deadline
                )
                log.info("challenge pending against report", challenge_id=challenge.challenge_id)
        material = self.finder(posted)
        if material is None:
            if pending:
                return False  # look again once they are settled (a rebuttal leaves it open)
            log.info("posted report checks out", request_id=posted.request_id, round=posted.round)
            return True
        if isinstance(material, ArithmeticMaterial | BidTotalMaterial):
            return self._prove_arithmetic(posted, material)
        if any(_same_reading(challenge, material) for challenge in pending):
            return False  # ours (from before a restart) or anyone's: adopted, not duplicated
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
            if error.error_name in {"NotDisputable", "ChallengeWindowClosed"}:
                log.info("report no longer challengeable", request_id=posted.request_id)
                return True
            if error.error_name == "DeviceEquivocated":
                # The device signed two values before: its units prove nothing any more.
                log.warning("device proven to equivocate", device_id=material.device_id)
                return True
            if error.error_name == "InsufficientFreeStake":
                log.error(
                    "cannot challenge: a challenge locks a bond of free stake",
                    challenger=self.protocol.address,
                    bond=self.protocol.challenge_bond(),
                    request_id=posted.request_id,
                )
            raise  # retried with backoff until the window closes
        self.challenged.append(result)
        self._to_resolve[result.challenge_id] = _Retry(
            result.challenge_id, result.response_deadline
        )
        self._challenges_seen.add(result.challenge_id)
        log.warning(
            "report challenged",
            challenge_id=result.challenge_id,
            request_id=result.request_id,
            round=result.round,
            device_id=result.device_id,
            interval_start=result.interval_start,
            used_wh=result.used_energy_wh,
            signed_wh=result.signed_energy_wh,
            response_deadline=result.response_deadline,
        )
        return True

    def _prove_arithmetic(
        self, posted: PostedReport, material: ArithmeticMaterial | BidTotalMaterial
    ) -> bool:
        """Submits a one-phase arithmetic proof; True when the report needs nothing more
        from us (voided now, or no longer disputable)."""
        try:
            if isinstance(material, ArithmeticMaterial):
                result = self.protocol.challenge_arithmetic(
                    posted.request_id,
                    material.record.values(),
                    list(material.record_proof),
                    material.used_readings,
                    list(material.readings_proof),
                    list(material.bid_device_ids),
                )
            else:
                result = self.protocol.challenge_bid_total(
                    posted.request_id,
                    list(material.delivered_wh),
                    material.bid_index,
                    [(record.values(), list(proof)) for record, proof in material.records],
                    list(material.bid_device_ids),
                )
        except TransactionReverted as error:
            if error.error_name == "NotDisputable":
                log.info("report no longer disputable", request_id=posted.request_id)
                return True
            if error.error_name in ("ArithmeticCorrect", "BidTotalCorrect", "RecordNotJudgeable"):
                # Our recomputation and the chain's disagree: a bug to report, not to retry.
                log.error("the chain does not confirm our arithmetic proof", error=str(error))
                return True
            raise  # anything else: retried with backoff
        self.proven.append(result)
        log.warning(
            "report voided by an arithmetic proof, signers slashed",
            request_id=result.request_id,
            round=result.round,
            device_id=result.device_id,
            fault=result.fault.name,
            slashed=result.slashed_total,
        )
        return True

    # ─── Our challenges: resolve after the response deadline ──────────────────────────

    def _resolve_due(self) -> None:
        if not self._to_resolve:
            return
        chain_now = self._chain_now()
        for challenge_id, retry in list(self._to_resolve.items()):
            if self._stop.is_set():
                return
            if chain_now < retry.response_deadline or retry.next_attempt > time.monotonic():
                continue
            try:
                result = self.protocol.resolve_challenge(challenge_id)
            except TransactionReverted as error:
                if error.error_name in DONE_CHALLENGE_ERRORS:
                    state = self.protocol.challenge_of(challenge_id)
                    log.warning(
                        "challenge settled without us",
                        challenge_id=challenge_id,
                        status=state.status.name,
                    )
                    del self._to_resolve[challenge_id]
                    continue
                if error.error_name == "DisputeWindowClosed":
                    log.error("resolution period over", challenge_id=challenge_id)
                    del self._to_resolve[challenge_id]
                    continue
                self._backoff(retry, "resolve failed", error)
                continue
            except Exception as error:
                self._backoff(retry, "resolve failed", error)
                continue
            del self._to_resolve[challenge_id]
            if result.moot:
                log.info(
                    "challenge moot: its round was settled otherwise", challenge_id=challenge_id
                )
                continue
            self.resolved.append(result)
            log.warning(
                "challenge resolved: report voided, signers slashed",
                challenge_id=challenge_id,
                request_id=result.request_id,
                round=result.round,
                slashed=result.slashed_total,
            )

    # ─── Anyone's challenges: rebut with the device's other signed value ──────────────

    def _discover_challenges(self) -> None:
        if self._next_challenge_block < 0:
            self._next_challenge_block = self.protocol.deployment.deployed_at_block
        latest = self.protocol.block_number()
        if latest < self._next_challenge_block:
            return
        events = self.protocol.events(
            self.protocol.dispute,
            "ChallengeOpened",
            from_block=self._next_challenge_block,
            to_block=latest,
        )
        for event in events:
            challenge_id = int(event.args["challengeId"])
            if challenge_id not in self._challenges_seen:
                self._challenges_seen.add(challenge_id)
                self._to_rebut[challenge_id] = _Retry(challenge_id)
        self._next_challenge_block = latest + 1

    def _rebut_pending(self) -> None:
        assert self.rebuttal_finder is not None
        for challenge_id, retry in list(self._to_rebut.items()):
            if self._stop.is_set():
                return
            if retry.next_attempt > time.monotonic():
                continue
            try:
                done = self._try_rebut(challenge_id)
            except Exception as error:
                self._backoff(retry, "rebuttal step failed", error)
                continue
            if done:
                del self._to_rebut[challenge_id]

    def _try_rebut(self, challenge_id: int) -> bool:
        assert self.rebuttal_finder is not None
        state = self.protocol.challenge_of(challenge_id)
        if state.status != ChallengeStatus.PENDING or self._chain_now() >= state.response_deadline:
            return True
        evidence = self.rebuttal_finder(state)
        if evidence is None:
            return True
        unit, unit_index = evidence
        try:
            result = self.protocol.rebut(challenge_id, unit, unit_index)
        except TransactionReverted as error:
            if error.error_name in DONE_CHALLENGE_ERRORS | {"ResponseWindowClosed"}:
                log.info("challenge no longer rebuttable", challenge_id=challenge_id)
                return True
            raise
        self.rebutted.append(result)
        log.warning(
            "challenge rebutted: the device signed the used value too",
            challenge_id=challenge_id,
            request_id=result.request_id,
            device_id=result.device_id,
            device_owner=result.device_owner,
            penalty=result.penalty,
        )
        return True


def _same_reading(challenge: ChallengeState, material: ChallengeMaterial) -> bool:
    """True when `challenge` disputes the reading `material` would (device and interval)."""
    unit = material.unit
    interval_start = unit.first_interval_start + material.unit_index * unit.interval_seconds
    return challenge.device_id == material.device_id and challenge.interval_start == interval_start


def public_finder(protocol: Protocol, oracle_urls: Sequence[str], http: httpx.Client) -> Finder:
    """Evidence from the public oracle APIs: `gridflex.verify` over every oracle that
    answers; an arithmetic proof first (one-phase), else the first contradicted reading
    with a valid proof."""
    from gridflex.rules.attestation import meter_domain_separator
    from gridflex.verify import VerifyInputError

    def find(posted: PostedReport) -> Proof | None:
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
        verdict = check_report(
            facts, posted, published, device_histories(protocol, device_ids), domain
        )
        return verdict.best_proof

    return find


def chain_now(protocol: Protocol) -> Callable[[], int]:
    """The latest block's timestamp: what the contracts compare the window against."""
    return protocol.latest_block_timestamp
