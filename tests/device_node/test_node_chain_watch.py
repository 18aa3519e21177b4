"""The chain watcher on the session anvil: exactly-once handling across restarts and RPC
outages, with the handler's effects committed together with the cursor."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from eth_account import Account
from web3 import Web3

from gridflex.chain.anvil import AnvilProcess, increase_time
from gridflex.chain.compiler import load_artifacts
from gridflex.chain.protocol import Protocol
from gridflex.rules.types import RequestSpec, zone_id
from node.chain_watch import (
    ChainWatcher,
    MarketEvent,
    RequestCreated,
)

EUR = 10**18
ZONE = zone_id("NL-WATCH-01")
DEAD_RPC = "http://127.0.0.1:9"  # discard port: connection refused


SEEN = "CREATE TABLE IF NOT EXISTS seen (block INTEGER, log_index INTEGER, kind TEXT, id INTEGER)"


def _record(event: MarketEvent, db: sqlite3.Connection) -> None:
    db.execute(SEEN)
    db.execute(
        "INSERT INTO seen VALUES (?, ?, ?, ?)",
        (event.meta.block_number, event.meta.log_index, type(event).__name__, event.request_id),
    )


def _seen(db_path: Path) -> list[tuple[int, int, str, int]]:
    with sqlite3.connect(db_path) as db:
        db.execute(SEEN)
        return db.execute("SELECT * FROM seen ORDER BY block, log_index").fetchall()


@pytest.fixture
def operator(deployed_protocol: Protocol, w3: Web3) -> tuple[Protocol, str]:
    """A fresh grid operator holding a fresh settlement token."""
    governance = deployed_protocol
    account = Account.create()
    w3.provider.make_request("anvil_setBalance", [account.address, hex(10**21)])
    governance.grant_grid_operator(account.address)
    op = governance.as_account(account)
    deployed = op.client.deploy(load_artifacts()["FlexToken"], op.address, 10**6 * EUR)
    return op, deployed.address


def _spec(w3: Web3, token: str, offset_h: int = 2) -> RequestSpec:
    now = w3.eth.get_block("latest")["timestamp"]
    start = now - now % 900 + offset_h * 3600
    return RequestSpec(
        zone=ZONE, power_w=10_000, window_start=start, window_end=start + 3600,
        price_cap_per_kwh=EUR // 4, availability_price_per_kwh=EUR // 100,
        gate_closure=start - 1800, settlement_token=token,
    )  # fmt: skip


def test_restart_mid_way_handles_every_event_exactly_once(
    deployed_protocol: Protocol, operator: tuple[Protocol, str], w3: Web3, anvil: AnvilProcess,
    tmp_path: Path,
) -> None:  # fmt: skip
    op, token = operator
    db_path = tmp_path / "outbox.sqlite"
    start_block = w3.eth.block_number
    deployment = op.deployment
    watcher = ChainWatcher(db_path, deployment, anvil.url, _record, max_range=3)
    assert watcher.poll_once() is not None  # catches up from the deployment block

    spec = _spec(w3, token)
    first, _ = op.create_request(spec)
    second, _ = op.create_request(_spec(w3, token, 3))
    assert watcher.poll_once() == 2
    watcher.close()

    # A new instance on the same DB: nothing handled twice, later events picked up.
    op.send(op.market.functions.cancelRequest(second))
    increase_time(w3, spec.gate_closure - w3.eth.get_block("latest")["timestamp"])
    op.clear(first)
    restarted = ChainWatcher(db_path, deployment, anvil.url, _record, max_range=3)
    restarted.poll_once()
    assert restarted.next_block == w3.eth.block_number + 1
    restarted.close()

    ours = [row for row in _seen(db_path) if row[0] > start_block and row[3] in (first, second)]
    kinds = [(kind, rid) for _, _, kind, rid in ours]
    assert kinds == [
        ("RequestCreated", first),
        ("RequestCreated", second),
        ("RequestCancelled", second),
        ("RequestCleared", first),
        ("RequestSettled", first),  # cleared without bids: refunded at once
    ]
    keys = [(b, i) for b, i, _, _ in _seen(db_path)]
    assert len(keys) == len(set(keys))


def test_rpc_outage_loses_no_event_and_typed_records(
    operator: tuple[Protocol, str], w3: Web3, anvil: AnvilProcess, tmp_path: Path
) -> None:
    op, token = operator
    events: list[MarketEvent] = []

    def handler(event: MarketEvent, db: sqlite3.Connection) -> None:
        _record(event, db)
        events.append(event)

    db_path = tmp_path / "watch.sqlite"
    watcher = ChainWatcher(db_path, op.deployment, anvil.url, handler, backoff_base_s=0.01)
    watcher.poll_once()
    before = watcher.next_block

    watcher.use_rpc(DEAD_RPC)
    spec = _spec(w3, token)
    request_id, escrow = op.create_request(spec)
    for _ in range(3):
        assert watcher.poll_once() is None  # no crash, no progress
    assert watcher.failures == 3 and 0 < watcher.backoff_s() <= 0.04
    assert watcher.next_block == before

    watcher.use_rpc(anvil.url)
    assert watcher.poll_once() is not None
    assert watcher.failures == 0
    created = [e for e in events if isinstance(e, RequestCreated) and e.request_id == request_id]
    assert len(created) == 1
    (event,) = created
    assert (event.zone, event.power_w, event.window_start, event.window_end) == (
        ZONE, spec.power_w, spec.window_start, spec.window_end,
    )  # fmt: skip
    assert (event.price_cap_per_kwh, event.escrow, event.settlement_token) == (
        spec.price_cap_per_kwh, escrow, token,
    )  # fmt: skip
    watcher.close()


def test_handler_error_rolls_back_the_range(
    operator: tuple[Protocol, str], w3: Web3, anvil: AnvilProcess, tmp_path: Path
) -> None:
    op, token = operator
    db_path = tmp_path / "watch.sqlite"
    ok = ChainWatcher(db_path, op.deployment, anvil.url, _record)
    ok.poll_once()
    before = ok.next_block
    ok.close()
    request_id, _ = op.create_request(_spec(w3, token))

    def broken(event: MarketEvent, db: sqlite3.Connection) -> None:
        _record(event, db)
        raise ValueError("bug in the handler")

    watcher = ChainWatcher(db_path, op.deployment, anvil.url, broken)
    with pytest.raises(ValueError, match="bug in the handler"):
        watcher.poll_once()
    assert watcher.next_block == before
    assert all(row[3] != request_id for row in _seen(db_path))
    watcher.close()
