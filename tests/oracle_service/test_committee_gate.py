"""The signing gate of finding 3 on its own (chain and peers stubbed): with peers, no report
of a cleared request's current round is measured or signed before the committee loop
reconciled; the loop lets a round through after one pass with k-1 peers, or after
`reconcile_timeout_seconds` with fewer (dead peers do not freeze the committee)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from eth_account import Account
from sqlalchemy import Engine
from test_measurement import facts

from gridflex.rules.reports import DeviceRecord, Quality
from gridflex.rules.types import RequestStatus
from oracle import committee as committee_module
from oracle.clock import WallClock
from oracle.committee import CommitteeLoop
from oracle.config import OracleSettings
from oracle.measurement import AwardedBid, ReportUnavailableError, assemble_report
from oracle.reconcile import PeerPass, ReconcileOutcome
from oracle.report_book import ReportBook

REQUEST = facts(1_700_006_400, (AwardedBid(0, 10_000, {1: 10_000}),), intervals=2)
THRESHOLD = 2
KEY = "0x" + "11" * 32


class StubProtocol:
    """What the loop and the book read from the chain, fixed."""

    def __init__(self) -> None:
        self.deployment = SimpleNamespace(deployed_at_block=0)
        self.address = Account.from_key(KEY).address

    def threshold(self) -> int:
        return THRESHOLD

    def oracle_of(self, _address: str) -> Any:
        return SimpleNamespace(active=True)

    def request(self, _request_id: int) -> Any:
        return SimpleNamespace(status=RequestStatus.CLEARED, window_end=0, report_round=0)


class StubMeasurer:
    def __init__(self) -> None:
        self.protocol = StubProtocol()
        self.signer_key = KEY
        self.measured = 0

    def measure_request(self, _request_id: int, _facts: Any = None) -> Any:
        self.measured += 1
        record = DeviceRecord(1, 0, 0, 0, 0, Quality.CONFLICT)
        return assemble_report(REQUEST, [record], {1: b""}, KEY)


@dataclass
class StubReconciler:
    """Answers each pass with `reconciled` complete peers and counts the passes."""

    reconciled: int
    passes: int = 0
    outcomes: list[ReconcileOutcome] = field(default_factory=list)

    def reconcile(self, _facts: Any) -> ReconcileOutcome:
        self.passes += 1
        outcome = ReconcileOutcome(
            [PeerPass(f"http://peer-{i}", complete=i < self.reconciled) for i in range(2)]
        )
        self.outcomes.append(outcome)
        return outcome


@pytest.fixture
def book(store_engine: Engine) -> ReportBook:
    return ReportBook(StubMeasurer(), store_engine, WallClock(), 0)  # type: ignore[arg-type]


class Clock:
    now = 1_000.0


@pytest.fixture
def loop(book: ReportBook, monkeypatch: pytest.MonkeyPatch) -> Iterator[CommitteeLoop]:
    settings = OracleSettings(
        signer_key=KEY,  # type: ignore[arg-type]
        peers="http://peer-0,http://peer-1",
        committee_poll_seconds=1.0,
        reconcile_timeout_seconds=60.0,
    )
    monkeypatch.setattr(committee_module, "read_request_facts", lambda *_args: REQUEST)
    monkeypatch.setattr(committee_module.time, "monotonic", lambda: Clock.now)
    loop = CommitteeLoop(
        settings,
        book,
        book.measurer.protocol,  # type: ignore[arg-type]
        WallClock(),
        ingestor=object(),  # type: ignore[arg-type]
    )
    assert book.require_reconciliation
    yield loop
    loop.stop()


def test_no_report_is_measured_or_signed_before_reconciliation(
    loop: CommitteeLoop, book: ReportBook
) -> None:
    with pytest.raises(ReportUnavailableError) as refused:
        book.report_for(7)
    assert refused.value.status == 425 and "reconciling" in refused.value.reason
    assert book.measurer.measured == 0  # type: ignore[attr-defined]
    loop.reconciler = StubReconciler(reconciled=THRESHOLD - 1)  # type: ignore[assignment]
    assert loop._reconciled(7, 0, committee_module._PassFacts(loop.protocol, 7))
    report = book.report_for(7)
    assert report.signature is not None and book.measurer.measured == 1  # type: ignore[attr-defined]


def test_fewer_than_k_minus_1_peers_hold_the_round_until_the_timeout(
    loop: CommitteeLoop, book: ReportBook
) -> None:
    stub = StubReconciler(reconciled=0)
    loop.reconciler = stub  # type: ignore[assignment]
    Clock.now = 1_000.0
    assert not loop._reconciled(7, 0, committee_module._PassFacts(loop.protocol, 7))
    assert not loop._reconciled(
        7, 0, committee_module._PassFacts(loop.protocol, 7)
    )  # paced: no second pass within three polls
    assert stub.passes == 1
    Clock.now += 3.0
    assert not loop._reconciled(7, 0, committee_module._PassFacts(loop.protocol, 7))
    assert stub.passes == 2 and not book.is_reconciled(7, 0)
    Clock.now = 1_000.0 + 60.0
    assert loop._reconciled(
        7, 0, committee_module._PassFacts(loop.protocol, 7)
    )  # timed out: sign what we hold
    assert book.is_reconciled(7, 0) and stub.passes == 3
    assert (
        loop._reconciled(7, 0, committee_module._PassFacts(loop.protocol, 7)) and stub.passes == 3
    )  # remembered, no more passes


def test_one_pass_reads_the_request_facts_once(
    loop: CommitteeLoop, book: ReportBook, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reconciling, measuring and re-measuring in one pass share one chain read of the
    request's facts (each read is a dozen RPCs or more)."""
    reads: list[int] = []

    def read_facts(_protocol: Any, request_id: int) -> Any:
        reads.append(request_id)
        return REQUEST

    monkeypatch.setattr(committee_module, "read_request_facts", read_facts)
    loop.settings.peers = ""  # no peer to ask for signatures
    loop.reconciler = StubReconciler(reconciled=THRESHOLD - 1)  # type: ignore[assignment]
    loop._follows[7] = committee_module._Follow(measured_at=Clock.now - 10 * 86_400)
    assert loop.advance(7) is False  # one signature of k = 2: waits for peers
    assert reads == [7]
    assert book.measurer.measured == 2  # type: ignore[attr-defined]  # measured, then re-measured
