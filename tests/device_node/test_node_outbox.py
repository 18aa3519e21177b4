"""The outbox keeps every signed unit until every oracle is done with it, across crashes,
and never hands out a sequence number or an interval twice."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from eth_account import Account
from node_support import DOMAIN, MONDAY, registered_key

from gridflex.rules.attestation import MeterUnit, sign_unit, verify_unit
from node.outbox import Outbox

ORACLES = ["http://oracle-a", "http://oracle-b"]
DEVICE_KEY = bytes(Account.create().key)
INTERVAL = 900


def signer(unit: MeterUnit) -> MeterUnit:
    return sign_unit(unit, DOMAIN, DEVICE_KEY)


def fill(outbox: Outbox, device_id: int, count: int, first: int = MONDAY) -> list[int]:
    """`count` one-interval units of `device_id` from `first`; returns their row ids."""
    start = outbox.attested_until(device_id) or first
    return [
        outbox.append(device_id, start + i * INTERVAL, INTERVAL, [100 + i], signer).unit_id
        for i in range(count)
    ]


def test_units_are_stored_signed_with_per_device_sequences(tmp_path: Path) -> None:
    with Outbox(tmp_path / "outbox.sqlite", ORACLES) as outbox:
        fill(outbox, 1, 3)
        fill(outbox, 2, 2)
        pending = outbox.pending(ORACLES[0], 10)
    assert [(p.unit.device_id, p.unit.sequence) for p in pending] == [
        (1, 0), (1, 1), (1, 2), (2, 0), (2, 1)
    ]  # fmt: skip
    for item in pending:
        verify_unit(item.unit, DOMAIN, registered_key(DEVICE_KEY))


def test_a_unit_is_deleted_only_when_every_oracle_acked_it(tmp_path: Path) -> None:
    with Outbox(tmp_path / "outbox.sqlite", ORACLES) as outbox:
        unit_ids = fill(outbox, 1, 4)
        outbox.ack(ORACLES[0], unit_ids[:3])
        assert outbox.stored_count() == 4
        assert [p.unit_id for p in outbox.pending(ORACLES[0], 10)] == unit_ids[3:]
        assert [p.unit_id for p in outbox.pending(ORACLES[1], 10)] == unit_ids

        outbox.ack(ORACLES[1], unit_ids[:2])

        assert outbox.stored_count() == 2
        assert [p.unit_id for p in outbox.pending(ORACLES[1], 10)] == unit_ids[2:]


def test_a_rejected_unit_is_dead_lettered_for_that_oracle_only(tmp_path: Path) -> None:
    with Outbox(tmp_path / "outbox.sqlite", ORACLES) as outbox:
        first, second = fill(outbox, 1, 2)
        outbox.reject(ORACLES[0], first, "energy above capacity")

        assert [p.unit_id for p in outbox.pending(ORACLES[0], 10)] == [second]
        assert [p.unit_id for p in outbox.pending(ORACLES[1], 10)] == [first, second]
        (letter,) = outbox.dead_letters()
        assert (letter.oracle, letter.reason, letter.unit.sequence) == (
            ORACLES[0], "energy above capacity", 0
        )  # fmt: skip
        outbox.ack(ORACLES[1], [first])
        assert outbox.stored_count() == 1  # done everywhere: acked by b, rejected by a


def test_unsent_units_survive_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from eth_account import Account
        from gridflex.rules.attestation import sign_unit
        from node.outbox import Outbox
        from node_support import DOMAIN, MONDAY
        key = bytes.fromhex({DEVICE_KEY.hex()!r})
        outbox = Outbox({str(path)!r}, {ORACLES!r})
        ids = [outbox.append(7, MONDAY + i * 900, 900, [i], lambda u: sign_unit(u, DOMAIN, key))
               .unit_id for i in range(5)]
        outbox.ack({ORACLES[0]!r}, ids[:2])
        os._exit(0)  # no close, no cleanup: as if the process was killed
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)

    with Outbox(path, ORACLES) as reopened:
        assert [p.unit.sequence for p in reopened.pending(ORACLES[0], 10)] == [2, 3, 4]
        assert [p.unit.sequence for p in reopened.pending(ORACLES[1], 10)] == [0, 1, 2, 3, 4]
        assert reopened.next_sequence(7) == 5
        assert reopened.attested_until(7) == MONDAY + 5 * INTERVAL


def test_sequences_are_never_reused_after_reopening(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    with Outbox(path, ORACLES[:1]) as outbox:
        unit_ids = fill(outbox, 3, 3)
        outbox.ack(ORACLES[0], unit_ids)  # all delivered and deleted
        assert outbox.stored_count() == 0

    with Outbox(path, ORACLES[:1]) as reopened:
        fill(reopened, 3, 2)
        assert [p.unit.sequence for p in reopened.pending(ORACLES[0], 10)] == [3, 4]


def test_an_interval_is_never_signed_twice(tmp_path: Path) -> None:
    with Outbox(tmp_path / "outbox.sqlite", ORACLES) as outbox:
        fill(outbox, 1, 2)
        with pytest.raises(ValueError, match="already signed"):
            outbox.append(1, MONDAY + INTERVAL, INTERVAL, [999], signer)
        assert outbox.stored_count() == 2
        assert outbox.next_sequence(1) == 2


def test_dropping_an_oracle_from_the_config_releases_units_it_held(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    with Outbox(path, ORACLES) as outbox:
        unit_ids = fill(outbox, 1, 2)
        outbox.ack(ORACLES[0], unit_ids)
    with Outbox(path, ORACLES[:1]) as reopened:
        assert reopened.stored_count() == 0


def test_outbox_uses_wal_and_full_sync(tmp_path: Path) -> None:
    with Outbox(tmp_path / "outbox.sqlite", ORACLES) as outbox:
        assert outbox._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert outbox._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
