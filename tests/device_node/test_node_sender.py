"""The sender against a real HTTP server speaking the oracle's answer contract: outages,
rejections and batch limits; every unit arrives once, in order, or is dead-lettered."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest
from eth_account import Account
from node_support import DOMAIN, MONDAY, FakeOracle

from gridflex.chain.anvil import free_port
from gridflex.rules.attestation import MeterUnit, sign_unit
from node.errors import DrainTimeoutError
from node.outbox import Outbox
from node.sender import Backoff, Sender

INTERVAL = 900
KEY = bytes(Account.create().key)
StartOracle = Callable[[FakeOracle], str]


class RecordingSleep:
    """Stands in for time.sleep so backoff tests do not wait: records and advances a clock."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def fill(outbox: Outbox, devices: int, units_per_device: int) -> None:
    for index in range(units_per_device):
        for device_id in range(1, devices + 1):
            start = MONDAY + index * INTERVAL
            outbox.append(
                device_id, start, INTERVAL, [device_id * 10 + index],
                lambda unit: sign_unit(unit, DOMAIN, KEY),
            )  # fmt: skip


def sender_for(outbox: Outbox, timer: RecordingSleep | None = None, batch_size: int = 5) -> Sender:
    timer = timer or RecordingSleep()
    return Sender(
        outbox, batch_size=batch_size, backoff=Backoff(base_s=0.5, cap_s=30.0),
        rng=random.Random(1), clock=timer.clock, sleep=timer.sleep,
    )  # fmt: skip


def test_every_oracle_gets_every_unit_once_and_the_outbox_empties(
    tmp_path: Path, oracle_server: StartOracle
) -> None:
    oracles = [FakeOracle(), FakeOracle()]
    urls = [oracle_server(oracle) for oracle in oracles]
    with Outbox(tmp_path / "outbox.sqlite", urls) as outbox:
        fill(outbox, devices=3, units_per_device=8)
        stats = sender_for(outbox).drain(timeout_s=30)
        assert outbox.stored_count() == 0
    assert stats.acked == 48 and stats.rejected == 0
    for oracle in oracles:
        assert len(oracle.stored) == 24
        assert max(oracle.batch_sizes) == 5
        for device_id in (1, 2, 3):
            sequences = [seq for dev, seq in oracle.arrival if dev == device_id]
            assert sequences == list(range(8))


def test_an_outage_is_retried_with_jittered_exponential_backoff(
    tmp_path: Path, oracle_server: StartOracle
) -> None:
    oracle = FakeOracle(fail_next=4)
    url = oracle_server(oracle)
    timer = RecordingSleep()
    with Outbox(tmp_path / "outbox.sqlite", [url]) as outbox:
        fill(outbox, devices=1, units_per_device=3)
        stats = sender_for(outbox, timer).drain(timeout_s=120)
        assert outbox.stored_count() == 0
    assert stats.retries == 4
    assert len(timer.sleeps) == 4
    for attempt, slept in enumerate(timer.sleeps):
        assert 0 <= slept <= min(30.0, 0.5 * 2**attempt)
    assert sorted(oracle.stored) == [(1, 0), (1, 1), (1, 2)]


def test_backoff_is_capped_and_full_jitter() -> None:
    backoff = Backoff(base_s=0.5, cap_s=30.0)
    rng = random.Random(3)
    delays = [backoff.delay_s(20, rng) for _ in range(500)]
    assert max(delays) <= 30.0
    assert min(delays) < 3.0  # full jitter: anywhere from 0 up to the cap


def test_rejected_units_are_dead_lettered_and_the_rest_resent_in_order(
    tmp_path: Path, oracle_server: StartOracle
) -> None:
    def reject(unit: MeterUnit) -> str | None:
        return "energyWh above capacity" if (unit.device_id, unit.sequence) == (2, 1) else None

    oracle = FakeOracle(reject=reject)
    url = oracle_server(oracle)
    with Outbox(tmp_path / "outbox.sqlite", [url]) as outbox:
        fill(outbox, devices=2, units_per_device=4)
        stats = sender_for(outbox, batch_size=4).drain(timeout_s=30)
        (letter,) = outbox.dead_letters()
        assert outbox.stored_count() == 0
    assert (letter.unit.device_id, letter.unit.sequence) == (2, 1)
    assert letter.reason == "energyWh above capacity"
    assert stats.rejected == 1 and stats.duplicates == 0
    expected = [(d, s) for s in range(4) for d in (1, 2) if (d, s) != (2, 1)]
    assert oracle.arrival == expected  # in order, each once


def test_resending_after_a_lost_ack_is_answered_duplicate_not_stored_twice(
    tmp_path: Path, oracle_server: StartOracle
) -> None:
    oracle = FakeOracle()
    url = oracle_server(oracle)
    with Outbox(tmp_path / "outbox.sqlite", [url]) as outbox:
        fill(outbox, devices=1, units_per_device=3)
        for item in outbox.pending(url, 10):  # the oracle committed, the ack was lost
            oracle.stored[(1, item.unit.sequence)] = item.unit.to_json()
        stats = sender_for(outbox).drain(timeout_s=30)
        assert outbox.stored_count() == 0
    assert stats.duplicates == 3 and len(oracle.stored) == 3 and oracle.arrival == []


def test_oversized_batches_halve_the_batch_size(tmp_path: Path, oracle_server: StartOracle) -> None:
    oracle = FakeOracle(max_batch=3)
    url = oracle_server(oracle)
    with Outbox(tmp_path / "outbox.sqlite", [url]) as outbox:
        fill(outbox, devices=1, units_per_device=10)
        sender = sender_for(outbox, batch_size=16)
        sender.drain(timeout_s=30)
        assert outbox.stored_count() == 0
    assert sender.links[url].batch_size == 2  # 16 -> 8 -> 4 -> 2
    assert [seq for _, seq in oracle.arrival] == list(range(10))


def test_an_unreachable_oracle_times_out_and_loses_nothing(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    timer = RecordingSleep()
    with Outbox(tmp_path / "outbox.sqlite", [url]) as outbox:
        fill(outbox, devices=1, units_per_device=2)
        with pytest.raises(DrainTimeoutError, match="pending") as raised:
            sender_for(outbox, timer).drain(timeout_s=60)
        assert raised.value.pending == {url: 2}
        assert outbox.stored_count() == 2
    assert len(timer.sleeps) >= 3
