"""The watcher's two-phase dispute logic against a scripted protocol: it resolves a
challenge only once chain time reaches the response deadline, adopts a challenge already
pending against a report (e.g. its own from before a restart) instead of challenging
again, treats a challenge settled by someone else as done, and rebuts only with a finder's
evidence before the deadline."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from gridflex.chain.protocol import ChallengeResult, ChallengeState, RebutResult, ResolveResult
from gridflex.errors import DecodedRevert, TransactionReverted
from gridflex.rules.attestation import MeterUnit
from gridflex.rules.types import ChallengeStatus, RequestStatus
from gridflex.verify import ChallengeMaterial, PostedReport
from gridflex.watch import ReportWatcher

REQUEST, ROUND, CHALLENGE, DEADLINE = 7, 0, 3, 10_000
UNIT = MeterUnit(11, 900, 900, 1, (5, 6, 7))


def _reverted(name: str) -> TransactionReverted:
    return TransactionReverted(DecodedRevert(name))


class FakeProtocol:
    """Just what ReportWatcher calls; `pending` and `status` script the chain."""

    address = "0xWatcher"

    def __init__(self) -> None:
        self.pending = 0
        self.status = ChallengeStatus.PENDING
        self.calls: list[str] = []
        self.resolve_error: str | None = None
        self.pending_device = 11

    def pending_challenges(self, _request_id: int, _round: int) -> list[ChallengeState]:
        # As listed when the watcher looked (it may be settled by someone else right after).
        return [self.challenge_of(self.pending)] if self.pending else []

    def challenge_bond(self) -> int:
        return 100

    def request(self, _request_id: int) -> Any:
        return SimpleNamespace(
            status=RequestStatus.REPORTED, report_round=ROUND, dispute_ends_at=DEADLINE * 2
        )

    def challenge(self, request_id: int, device_id: int, *_args: Any) -> ChallengeResult:
        self.calls.append("challenge")
        self.pending = CHALLENGE
        return ChallengeResult(
            CHALLENGE, request_id, ROUND, device_id, 900, 5, 9, self.address, DEADLINE,
            DEADLINE * 2, {},  # type: ignore[arg-type]
        )  # fmt: skip

    def challenge_of(self, challenge_id: int) -> ChallengeState:
        return ChallengeState(
            challenge_id, REQUEST, self.pending_device, "0xSomeone", DEADLINE, ROUND, self.status,
            "0xOwner", 100, 0b11, 900, 5, 9,
        )  # fmt: skip

    def resolve_challenge(self, challenge_id: int) -> ResolveResult:
        self.calls.append("resolve")
        if self.resolve_error:
            raise _reverted(self.resolve_error)
        self.pending = 0
        return ResolveResult(challenge_id, REQUEST, ROUND, self.address, 42, {})  # type: ignore[arg-type]

    def rebut(self, challenge_id: int, unit: MeterUnit, unit_index: int) -> RebutResult:
        self.calls.append(f"rebut:{unit_index}")
        return RebutResult(
            challenge_id, REQUEST, 11, self.address, "0xOwner", 99, "0xSomeone", 100, {},  # type: ignore[arg-type]
        )  # fmt: skip


def _posted() -> PostedReport:
    return PostedReport(REQUEST, ROUND, (1,), b"d" * 32, b"r" * 32, 0b11, DEADLINE * 2)


def _material() -> ChallengeMaterial:
    return ChallengeMaterial(11, b"", (), 0, UNIT, 0)


def _watcher(protocol: FakeProtocol, clock: list[int], **extra: Any) -> ReportWatcher:
    return ReportWatcher(
        protocol,  # type: ignore[arg-type]
        lambda _posted: _material(),
        lambda: clock[0],
        chain_time=lambda: clock[0],
        **extra,
    )


def test_challenge_then_resolve_only_at_the_response_deadline() -> None:
    protocol, clock = FakeProtocol(), [100]
    watcher = _watcher(protocol, clock)
    assert watcher.advance(_posted()) is True
    assert [c.challenge_id for c in watcher.challenged] == [CHALLENGE]
    watcher._resolve_due()
    assert protocol.calls == ["challenge"]  # before the deadline: nothing
    clock[0] = DEADLINE
    watcher._resolve_due()
    assert protocol.calls == ["challenge", "resolve"]
    assert [r.slashed_total for r in watcher.resolved] == [42]
    watcher._resolve_due()
    assert protocol.calls == ["challenge", "resolve"]  # resolved once


def test_pending_challenge_is_adopted_not_challenged_again() -> None:
    protocol, clock = FakeProtocol(), [100]
    protocol.pending = CHALLENGE  # e.g. ours, opened before a restart
    watcher = _watcher(protocol, clock)
    assert watcher.advance(_posted()) is False
    assert watcher.advance(_posted()) is False
    assert "challenge" not in protocol.calls
    clock[0] = DEADLINE
    watcher._resolve_due()
    assert protocol.calls == ["resolve"]
    assert watcher.advance(_posted()) is True  # no longer pending: the finder's proof again
    assert protocol.calls == ["resolve", "challenge"]


def test_decoy_on_another_device_does_not_block_our_challenge() -> None:
    """Issue 12 finding 5: a pending challenge against another reading (a decoy) no longer
    holds ours back; the decoy is still queued for resolution when due."""
    protocol, clock = FakeProtocol(), [100]
    protocol.pending = 1
    protocol.pending_device = 99  # someone else's challenge on another device
    watcher = _watcher(protocol, clock)
    assert watcher.advance(_posted()) is True
    assert protocol.calls == ["challenge"]
    assert sorted(watcher._to_resolve) == [1, CHALLENGE]


def test_challenge_without_free_stake_is_retried_not_dropped() -> None:
    protocol, clock = FakeProtocol(), [100]

    def no_stake(*_args: Any) -> ChallengeResult:
        raise _reverted("InsufficientFreeStake")

    protocol.challenge = no_stake  # type: ignore[method-assign]
    watcher = _watcher(protocol, clock)
    try:
        watcher.advance(_posted())
    except TransactionReverted as error:
        assert error.error_name == "InsufficientFreeStake"
    else:
        raise AssertionError("a failed challenge must be retried (raised to the backoff)")


def test_challenge_settled_by_someone_else_is_done() -> None:
    protocol, clock = FakeProtocol(), [DEADLINE]
    protocol.pending = CHALLENGE
    protocol.status = ChallengeStatus.REBUTTED
    protocol.resolve_error = "ChallengeNotPending"
    watcher = _watcher(protocol, clock)
    watcher.advance(_posted())
    watcher._resolve_due()
    watcher._resolve_due()
    assert protocol.calls == ["resolve"]
    assert watcher.resolved == []


def test_rebuts_with_the_finders_unit_before_the_deadline_only() -> None:
    protocol, clock = FakeProtocol(), [100]
    seen: list[int] = []

    def finder(state: ChallengeState) -> tuple[MeterUnit, int] | None:
        seen.append(state.challenge_id)
        return UNIT, 2

    watcher = _watcher(protocol, clock, rebuttal_finder=finder)
    assert watcher._try_rebut(CHALLENGE) is True
    assert protocol.calls == ["rebut:2"] and seen == [CHALLENGE]
    assert [r.penalty for r in watcher.rebutted] == [99]

    late = _watcher(FakeProtocol(), [DEADLINE], rebuttal_finder=finder)
    assert late._try_rebut(CHALLENGE) is True
    assert seen == [CHALLENGE]  # past the deadline the finder is not even asked
