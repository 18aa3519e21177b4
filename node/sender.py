"""Delivers the outbox to every oracle of the committee over HTTP, in order, in batches.

Contract with the oracle (`POST {oracle}/v1/readings`, body `{"units": [unit JSON, ...]}`):

- 200 `{"results": [{"index", "status": "accepted"|"duplicate", "reason": null}]}`:
  every unit committed (or already held) -> ack all, done for this oracle.
- 409/422 `{"detail", "results": [..., "rejected" with a reason, ...]}`: nothing of the
  batch was stored -> dead-letter the rejected units, resend the others.
- 400/422 without `results` (e.g. a malformed body): the batch as a whole was refused ->
  split it in halves down to single units; a single unit refused so is dead-lettered.
- 413: batch too large -> halve this oracle's batch size (a single unit: dead-letter).
- 5xx, 408, 429, other 4xx, timeouts, connection errors: the oracle is down, busy or
  misconfigured -> retry later, exponential backoff with full jitter (cap 30 s), never drop.

Each oracle has its own batch size and backoff, so one oracle being down never delays the
others. Resending is safe: the oracle answers `duplicate` for units it already holds.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import structlog

from gridflex import safe_json
from node.errors import DrainTimeoutError
from node.outbox import Outbox, OutboxUnit

log = structlog.get_logger(__name__)

READINGS_PATH = "/v1/readings"
ACKED_STATUSES = frozenset({"accepted", "duplicate"})
UNIT_STATUSES = ACKED_STATUSES | {"rejected", "valid"}
"""Every per-unit status of the oracle's answer contract (oracle/README.md); `valid` = passed
every check but not stored because another unit of the batch was rejected: resend it."""
BATCH_REFUSED_STATUSES = frozenset({400, 422})
MAX_ANSWER_BYTES = 8 * 1024 * 1024
"""Largest oracle answer decoded (a 500-unit batch's answer is about 30 KiB)."""


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter: sleep uniform(0, min(cap, base * 2**attempt))
    so many nodes retrying after an oracle outage do not arrive in lockstep."""

    base_s: float = 0.5
    cap_s: float = 30.0

    def delay_s(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0, min(self.cap_s, self.base_s * 2 ** min(attempt, 32)))


@dataclass
class OracleLink:
    """Delivery state of one oracle: its batch size and when it may be tried again."""

    url: str
    batch_size: int
    failures: int = 0
    next_attempt_at: float = 0.0


@dataclass
class SendStats:
    acked: int = 0
    duplicates: int = 0
    rejected: int = 0
    retries: int = 0
    posts: int = 0
    by_oracle: dict[str, int] = field(default_factory=dict)


class _RetryLater(Exception):
    """Transient failure: back off this oracle."""


class Sender:
    """Sends pending outbox units to every oracle the outbox was opened for."""

    def __init__(
        self,
        outbox: Outbox,
        *,
        batch_size: int = 50,
        client: httpx.Client | None = None,
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        request_timeout_s: float = 10.0,
    ) -> None:
        self.outbox = outbox
        self.links = {url: OracleLink(url, batch_size) for url in outbox.oracles}
        self.client = client or httpx.Client(timeout=request_timeout_s)
        self.backoff = backoff or Backoff()
        self.rng = rng or random.Random()
        self.clock = clock
        self.sleep = sleep
        self.stats = SendStats()

    def close(self) -> None:
        self.client.close()

    # ─── One batch ────────────────────────────────────────────────────────────────────

    def send_batch(self, oracle: str) -> int:
        """POST the oldest pending units to `oracle`; returns how many are now finished
        (acked or dead-lettered) for it. Transient failures schedule a retry."""
        link = self.links[oracle]
        units = self.outbox.pending(oracle, link.batch_size)
        if not units:
            return 0
        try:
            finished = self._deliver(link, units)
        except _RetryLater as reason:
            link.failures += 1
            delay_s = self.backoff.delay_s(link.failures - 1, self.rng)
            link.next_attempt_at = self.clock() + delay_s
            self.stats.retries += 1
            log.warning(
                "oracle unavailable, backing off",
                oracle=oracle, reason=str(reason), attempt=link.failures, delay_s=round(delay_s, 3),
            )  # fmt: skip
            return 0
        link.failures = 0
        link.next_attempt_at = 0.0
        return finished

    def _post(self, link: OracleLink, units: Sequence[OutboxUnit]) -> httpx.Response:
        self.stats.posts += 1
        try:
            return self.client.post(
                link.url.rstrip("/") + READINGS_PATH,
                json={"units": [item.unit.to_json() for item in units]},
            )
        except httpx.HTTPError as error:  # connect refused, reset, timeout...
            raise _RetryLater(f"{type(error).__name__}: {error}") from error

    def _deliver(self, link: OracleLink, units: Sequence[OutboxUnit]) -> int:
        response = self._post(link, units)
        status = response.status_code
        if status == 413:
            if len(units) == 1:
                return self._dead_letter(link, units[0], "unit larger than the oracle accepts")
            link.batch_size = max(1, len(units) // 2)
            log.info("oracle batch limit, halving batch size", oracle=link.url, to=link.batch_size)
            return self._deliver(link, units[: link.batch_size])
        if status >= 500 or status in (408, 429):
            raise _RetryLater(f"HTTP {status}")
        body = _json_or_none(response)
        results = body.get("results") if isinstance(body, dict) else None
        if status == 200:
            return self._apply_results(link, units, results, stored=True)
        if 400 <= status < 500 and isinstance(results, list):
            return self._apply_results(link, units, results, stored=False)
        if status in BATCH_REFUSED_STATUSES:
            detail = str(body.get("detail") if isinstance(body, dict) else response.text)[:500]
            if len(units) == 1:
                return self._dead_letter(link, units[0], f"HTTP {status}: {detail}")
            middle = len(units) // 2
            return self._deliver(link, units[:middle]) + self._deliver(link, units[middle:])
        raise _RetryLater(f"unexpected HTTP {status}")  # 401/403/404...: misconfiguration

    def _apply_results(
        self,
        link: OracleLink,
        units: Sequence[OutboxUnit],
        results: Any,
        *,
        stored: bool,
    ) -> int:
        """Map per-unit results back to outbox rows. `stored` = the oracle committed the
        batch (200); otherwise nothing was stored and only the rejections are final."""
        by_index = _results_by_index(results, len(units))
        if by_index is None:
            raise _RetryLater("malformed results in the oracle's answer")
        acked: list[int] = []
        finished = 0
        for index, item in enumerate(units):
            status, reason = by_index[index]
            if status == "rejected":
                finished += self._dead_letter(link, item, reason or "rejected")
            elif stored and status in ACKED_STATUSES:
                acked.append(item.unit_id)
                if status == "duplicate":
                    self.stats.duplicates += 1
        if acked:
            self.outbox.ack(link.url, acked)
            self.stats.acked += len(acked)
            self.stats.by_oracle[link.url] = self.stats.by_oracle.get(link.url, 0) + len(acked)
        if not stored and finished == 0:
            raise _RetryLater("oracle refused the batch without rejecting any unit")
        return finished + len(acked)

    def _dead_letter(self, link: OracleLink, item: OutboxUnit, reason: str) -> int:
        self.outbox.reject(link.url, item.unit_id, reason)
        self.stats.rejected += 1
        log.error(
            "oracle rejected unit, dead-lettered",
            oracle=link.url, device_id=item.unit.device_id, sequence=item.unit.sequence,
            reason=reason,
        )  # fmt: skip
        return 1

    # ─── Loops ────────────────────────────────────────────────────────────────────────

    def send_round(self) -> float | None:
        """One batch to every oracle that is due and has pending units.

        Returns None when nothing is pending anywhere, else the seconds until the next
        oracle is due (0 when one can be tried right away)."""
        now = self.clock()
        for link in self.links.values():
            if link.next_attempt_at <= now and self.outbox.pending_count(link.url):
                self.send_batch(link.url)
        waiting = [
            link.next_attempt_at for link in self.links.values()
            if self.outbox.pending_count(link.url)
        ]  # fmt: skip
        if not waiting:
            return None
        return max(0.0, min(waiting) - self.clock())

    def drain(
        self,
        timeout_s: float | None = None,
        on_progress: Callable[[SendStats], None] | None = None,
    ) -> SendStats:
        """Send until every oracle has every unit, or raise DrainTimeoutError."""
        deadline = None if timeout_s is None else self.clock() + timeout_s
        while (wait_s := self.send_round()) is not None:
            if on_progress:
                on_progress(self.stats)
            if deadline is not None and self.clock() + wait_s > deadline:
                pending = {url: self.outbox.pending_count(url) for url in self.links}
                raise DrainTimeoutError({url: n for url, n in pending.items() if n})
            if wait_s > 0:
                self.sleep(wait_s)
        if on_progress:
            on_progress(self.stats)
        return self.stats


def _json_or_none(response: httpx.Response) -> Any:
    """The answer's JSON, or None when it is not JSON a node should read (malformed, too
    large, nested too deeply, duplicate keys: `gridflex.safe_json`), logged. A hostile or
    broken oracle then counts as unavailable; it never crashes the sender."""
    try:
        return safe_json.loads(response.content, max_bytes=MAX_ANSWER_BYTES)
    except safe_json.UnsafeJsonError as error:
        log.warning("oracle answer is not usable JSON", url=str(response.url), reason=error.reason)
        return None


def _results_by_index(results: Any, count: int) -> dict[int, tuple[str, str | None]] | None:
    """{index: (status, reason)} covering every unit of the batch, or None if malformed."""
    if not isinstance(results, list):
        return None
    by_index: dict[int, tuple[str, str | None]] = {}
    for entry in results:
        if not isinstance(entry, dict):
            return None
        index, status = entry.get("index"), entry.get("status")
        if not isinstance(index, int) or not 0 <= index < count:
            return None
        if status not in UNIT_STATUSES:
            return None
        reason = entry.get("reason")
        by_index[index] = (status, None if reason is None else str(reason))
    return by_index if len(by_index) == count else None
