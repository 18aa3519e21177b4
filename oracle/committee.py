"""Committee agreement: a background loop that turns measured reports into one on-chain
report and, after the dispute window, a settlement.

Each tick, for every request it follows (found from `RequestCleared` events, rescanned from
the deployment block at start so a restart loses nothing):

- Cleared, window ended + `report_delay_seconds`: reconcile with the peers first
  (`oracle.reconcile`: fetch and ingest every signed unit a peer holds that we lack for the
  readings the measurement can read, conflict evidence included), so that a provider who
  showed each oracle a different value is measured CONFLICT by all of them and the honest
  oracles sign one identical report. Signing waits until at least k-1 peers were
  reconciled in one pass (with k-1 peers and ourselves, k oracles hold the same units), or
  until `reconcile_timeout_seconds` have passed since the first attempt: then it signs
  what it holds, so dead peers cannot freeze the committee. Until then
  `GET /v1/reports/{id}` answers 425 (no signature leaves before reconciliation). Every
  re-measurement (`remeasure_seconds`) is preceded by another pass.
- Then measure and sign (once, stored), fetch
  each peer's `GET /v1/reports/{id}`, keep the signatures over *our* digest whose recovered
  signer is an active oracle (`committee.oracleOf(addr).active`); with `threshold()`
  distinct signatures, wait for our turn (signers ranked by address, a few polls apart),
  re-read the status and post `submitReport` (signatures sorted by signer). Posting is
  idempotent: the market ignores a second identical report, so two oracles posting at
  once cost gas, never a second `ReportSubmitted`.
- Reported, dispute window over: `finalize` (anyone may; a `WrongStatus` revert means
  another oracle was first).
- Settled, cancelled or expired: forgotten.

Errors (RPC down, a peer down, a revert) are logged and the request is retried after an
exponential back-off capped at `rpc_retry_max_seconds`; state lives in the database and
on the chain, so the loop is restartable at any point.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import httpx
import structlog
from eth_keys import keys
from eth_keys.exceptions import BadSignature

from gridflex import safe_json
from gridflex.chain.facts import read_request_facts
from gridflex.chain.protocol import Protocol
from gridflex.errors import TransactionReverted
from gridflex.rules.measurement import RequestFacts
from gridflex.rules.types import RequestStatus
from oracle.clock import Clock
from oracle.config import OracleSettings
from oracle.ingest import Ingestor
from oracle.measurement import MeasuredReport, ReportUnavailableError
from oracle.reconcile import RECONCILE_RETRY_POLLS, Reconciler
from oracle.report_book import ReportBook

log = structlog.get_logger(__name__)

FIRST_BACKOFF_SECONDS = 1.0
POST_STAGGER_POLLS = 3
MAX_PEER_ANSWER_BYTES = 64 * 1024 * 1024
"""Largest peer report decoded (a report carries one record per awarded device)."""
DONE_STATUSES = (RequestStatus.SETTLED, RequestStatus.CANCELLED, RequestStatus.EXPIRED)


def recover_signer(digest: bytes, signature: bytes) -> str | None:
    """The address that signed `digest` (65-byte r||s||v), None when malformed."""
    if len(signature) != 65 or signature[64] not in (27, 28):
        return None
    r, s, v = signature[:32], signature[32:64], signature[64] - 27
    try:
        key = keys.Signature(vrs=(v, int.from_bytes(r, "big"), int.from_bytes(s, "big")))
        return key.recover_public_key_from_msg_hash(digest).to_checksum_address()
    except (BadSignature, ValueError):
        return None


@dataclass
class _Follow:
    """Per-request retry state of the loop (in memory; the facts are on chain and in DB)."""

    next_attempt: float = 0.0
    backoff: float = FIRST_BACKOFF_SECONDS
    quorum_since: float | None = None
    """When this oracle first held k signatures for the current round (stagger start)."""
    measured_at: float | None = None
    """When the stored report was last (re)measured by this loop."""
    reconcile_round: int | None = None
    """The round the reconciliation state below is about."""
    reconcile_since: float | None = None
    """When this loop first tried to reconcile that round (the timeout counts from it)."""
    reconcile_next: float = 0.0
    """No new pass before this (a pass that fell short is retried a few polls later)."""


@dataclass
class _PassFacts:
    """One request's chain facts for one pass, read on first use and then reused."""

    protocol: Protocol
    request_id: int
    _facts: RequestFacts | None = None

    def __call__(self) -> RequestFacts:
        if self._facts is None:
            self._facts = read_request_facts(self.protocol, self.request_id)
        return self._facts


@dataclass
class CommitteeLoop:
    """The background thread of one signing oracle."""

    settings: OracleSettings
    book: ReportBook
    protocol: Protocol
    clock: Clock
    _follows: dict[int, _Follow] = field(default_factory=dict)
    _next_block: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _active_oracles: dict[str, tuple[bool, float]] = field(default_factory=dict)
    ingestor: Ingestor | None = None
    """Where units fetched from peers are verified and stored; None: no reconciliation."""

    def __post_init__(self) -> None:
        self._next_block = self.protocol.deployment.deployed_at_block
        self._http = httpx.Client(timeout=self.settings.peer_timeout_seconds)
        self.reconciler = (
            Reconciler(self.book.engine, self.ingestor, self.settings.peer_urls, self._http)
            if self.ingestor is not None and self.settings.peer_urls
            else None
        )
        self.book.require_reconciliation = self.reconciler is not None

    # ─── Lifecycle ────────────────────────────────────────────────────────────────────

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="committee-loop", daemon=True)
        self._thread.start()
        log.info(
            "committee loop started",
            signer=self.protocol.address,
            peers=self.settings.peer_urls,
            poll_seconds=self.settings.committee_poll_seconds,
        )

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._http.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception as error:  # never let the thread die; the next tick retries
                log.warning("committee tick failed", error=str(error))
            self._stop.wait(self.settings.committee_poll_seconds)

    # ─── One pass ─────────────────────────────────────────────────────────────────────

    def tick(self) -> None:
        self._discover()
        now = time.monotonic()
        for request_id, follow in list(self._follows.items()):
            if follow.next_attempt > now or self._stop.is_set():
                continue
            try:
                if self.advance(request_id):
                    del self._follows[request_id]
                else:
                    follow.backoff = FIRST_BACKOFF_SECONDS
            except Exception as error:  # RPC, peer or store trouble: back off and retry
                follow.next_attempt = now + follow.backoff
                log.warning(
                    "committee step failed",
                    request_id=request_id,
                    retry_in=follow.backoff,
                    error=str(error),
                )
                follow.backoff = min(2 * follow.backoff, self.settings.rpc_retry_max_seconds)

    def _discover(self) -> None:
        latest = self.protocol.block_number()
        if latest < self._next_block:
            return
        for request_id in self.protocol.cleared_request_ids(self._next_block, latest):
            self._follows.setdefault(request_id, _Follow())
        self._next_block = latest + 1

    def advance(self, request_id: int) -> bool:
        """One step for one request; True when there is nothing left to do for it."""
        state = self.protocol.request(request_id)
        if state.status in DONE_STATUSES:
            return True
        if state.status == RequestStatus.REPORTED:
            if self.clock.now() >= state.dispute_ends_at:
                self._finalize(request_id)
            return False
        if state.status != RequestStatus.CLEARED:
            return False
        if self.clock.now() < state.window_end + self.settings.report_delay_seconds:
            return False
        facts = _PassFacts(self.protocol, request_id)
        if not self._reconciled(request_id, state.report_round, facts):
            return False
        try:
            report = self._current_report(request_id, facts)
        except ReportUnavailableError as error:
            if error.status == 425:
                return False
            raise
        signatures = self.collect_signatures(report)
        threshold = self.protocol.threshold()
        if len(signatures) < threshold:
            log.info(
                "waiting for signatures",
                request_id=request_id,
                have=len(signatures),
                need=threshold,
            )
            return False
        if self._my_turn(request_id, signatures):
            self._submit(report, signatures)
        return False

    def _current_report(self, request_id: int, facts: _PassFacts) -> MeasuredReport:
        """The stored report, measured again every `remeasure_seconds` until it is posted,
        so that readings arriving after the first measurement still count."""
        follow = self._follows.setdefault(request_id, _Follow())
        now = time.monotonic()
        if follow.measured_at is None:
            follow.measured_at = now
            return self.book.report_for(request_id, facts=facts)
        if now - follow.measured_at < self.settings.remeasure_seconds:
            return self.book.report_for(request_id, facts=facts)
        follow.measured_at = now
        before = self.book.report_for(request_id, facts=facts)
        if self.reconciler is not None:  # late or peer-held units count as well
            self.reconciler.reconcile(facts())
        report = self.book.refresh(request_id, facts=facts)
        if report.digest != before.digest:
            follow.quorum_since = None  # a new digest needs its own quorum
        return report

    def _reconciled(self, request_id: int, round_: int, facts: _PassFacts) -> bool:
        """True once this round may be signed: reconciled with at least k-1 peers in one
        pass, or `reconcile_timeout_seconds` after the first attempt (then with whatever
        peers answered). Reconciled rounds are remembered by the book."""
        if self.reconciler is None or self.book.is_reconciled(request_id, round_):
            return True
        if self.book.load(request_id, round_) is not None:  # signed before a restart
            self.book.mark_reconciled(request_id, round_)
            return True
        follow = self._follows.setdefault(request_id, _Follow())
        now = time.monotonic()
        if follow.reconcile_round != round_ or follow.reconcile_since is None:
            follow.reconcile_round, follow.reconcile_since = round_, now
            follow.reconcile_next = now
        if now < follow.reconcile_next:
            return False
        follow.reconcile_next = now + RECONCILE_RETRY_POLLS * self.settings.committee_poll_seconds
        outcome = self.reconciler.reconcile(facts())
        threshold = self.protocol.threshold()
        needed = min(max(threshold - 1, 0), len(self.settings.peer_urls))
        timed_out = now - follow.reconcile_since >= self.settings.reconcile_timeout_seconds
        if outcome.peers_reconciled < needed and not timed_out:
            log.info(
                "waiting to reconcile before signing",
                request_id=request_id,
                round=round_,
                reconciled=outcome.peers_reconciled,
                need=needed,
            )
            return False
        if outcome.peers_reconciled < needed:
            log.warning(
                "signing without reconciling with k-1 peers (timeout)",
                request_id=request_id,
                round=round_,
                reconciled=outcome.peers_reconciled,
                need=needed,
            )
        self.book.mark_reconciled(request_id, round_)
        return True

    def _my_turn(self, request_id: int, signatures: dict[str, bytes]) -> bool:
        """Stagger the posters: the signer with the lowest address posts at once, the next
        after `POST_STAGGER_POLLS` polls, and so on, each re-reading the status first. All
        posting at once would be harmless (the market ignores an identical report) but
        wastes gas; if the first is down, the next takes over."""
        follow = self._follows.setdefault(request_id, _Follow())
        now = time.monotonic()
        if follow.quorum_since is None:
            follow.quorum_since = now
        signers = sorted(signatures, key=lambda address: int(address, 16))
        me = self.protocol.address
        rank = signers.index(me) if me in signers else len(signers)
        delay = rank * POST_STAGGER_POLLS * self.settings.committee_poll_seconds
        return now - follow.quorum_since >= delay

    # ─── Signatures ───────────────────────────────────────────────────────────────────

    def collect_signatures(self, report: MeasuredReport) -> dict[str, bytes]:
        """Peers' signatures over our digest (verified), merged with those already kept."""
        have = self.book.signatures(report)
        for peer in self.settings.peer_urls:
            try:
                answer = self._http.get(f"{peer}/v1/reports/{report.request_id}")
            except httpx.HTTPError as error:
                log.info("peer unreachable", peer=peer, error=str(error))
                continue
            if answer.status_code != 200:
                continue
            try:  # a hostile or broken peer is skipped, never crashes or stalls the loop
                body = safe_json.loads(answer.content, max_bytes=MAX_PEER_ANSWER_BYTES)
            except safe_json.UnsafeJsonError as error:
                log.warning("peer answer is not usable JSON", peer=peer, reason=error.reason)
                continue
            if not isinstance(body, dict):
                continue
            signature_hex = body.get("signature")
            if body.get("digest") != "0x" + report.digest.hex() or not signature_hex:
                if body.get("digest"):
                    log.warning(
                        "peer digest differs",
                        peer=peer,
                        request_id=report.request_id,
                        ours="0x" + report.digest.hex(),
                        theirs=body.get("digest"),
                    )
                continue
            try:
                signature = bytes.fromhex(str(signature_hex).removeprefix("0x"))
            except ValueError:
                continue
            signer = recover_signer(report.digest, signature)
            if signer is None or signer in have or not self._is_active_oracle(signer):
                continue
            self.book.add_signature(report, signer, signature, peer)
            have[signer] = signature
        return {
            signer: signature
            for signer, signature in sorted(have.items(), key=lambda item: int(item[0], 16))
            if self._is_active_oracle(signer)
        }

    def _is_active_oracle(self, address: str) -> bool:
        """Seated and active on chain. A yes is trusted for 30 s (a removal only costs a
        reverted post); a no for one poll, so a newly seated oracle's signature counts at
        once (seating a standby must not stall a report for half a minute)."""
        cached = self._active_oracles.get(address)
        ttl = 30.0 if cached is not None and cached[0] else self.settings.committee_poll_seconds
        if cached is not None and time.monotonic() - cached[1] < ttl:
            return cached[0]
        active = self.protocol.oracle_of(address).active
        self._active_oracles[address] = (active, time.monotonic())
        return active

    # ─── Chain writes ─────────────────────────────────────────────────────────────────

    def _submit(self, report: MeasuredReport, signatures: dict[str, bytes]) -> None:
        state = self.protocol.request(report.request_id)
        if state.status != RequestStatus.CLEARED or state.report_round != report.round:
            return  # posted by another oracle meanwhile (or voided into a new round)
        try:
            receipt = self.protocol.submit_report(
                report.request_id,
                list(report.payload.delivered_wh),
                report.payload.devices_root,
                report.payload.readings_root,
                list(signatures.values()),
            )
        except TransactionReverted as error:
            if error.error_name in ("WrongStatus", "ConflictingReport"):
                log.info("report not posted", request_id=report.request_id, reason=str(error))
                return
            raise
        tx_hash = "0x" + bytes(receipt["transactionHash"]).hex()
        self.book.mark_submitted(report, tx_hash)
        log.info(
            "report posted",
            request_id=report.request_id,
            round=report.round,
            signers=list(signatures),
            tx=tx_hash,
        )

    def _finalize(self, request_id: int) -> None:
        try:
            receipt = self.protocol.finalize(request_id)
        except TransactionReverted as error:
            if error.error_name in ("WrongStatus", "DisputeWindowOpen"):
                log.info("finalize skipped", request_id=request_id, reason=str(error))
                return
            raise
        log.info(
            "request finalized",
            request_id=request_id,
            tx="0x" + bytes(receipt["transactionHash"]).hex(),
        )


def build_committee_loop(
    settings: OracleSettings,
    book: ReportBook,
    signer: Protocol,
    clock: Clock,
    ingestor: Ingestor | None = None,
) -> CommitteeLoop:
    """A loop writing through `signer`: the committee key's one client (and nonce source),
    shared with the oracle's watcher."""
    return CommitteeLoop(settings, book, signer, clock, ingestor=ingestor)
