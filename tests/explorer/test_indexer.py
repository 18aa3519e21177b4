"""The indexer on its own anvil (snapshots are reverted here, which must not disturb the
session chain): it projects a settled request exactly as the chain holds it, resumes from
its cursor without counting twice, and after `evm_revert` plus a different history it
holds exactly what a fresh index of the new chain holds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from explorer_market import Market, after_revert, build_market, settle_request
from sqlalchemy import Engine, func
from sqlmodel import Session, select
from support.chain import fresh_protocol
from web3 import Web3

from explorer.db import create_explorer_engine, init_db
from explorer.indexer import Indexer
from explorer.models import Bid, ChainEvent, IndexerCursor, LedgerEntry, Request
from gridflex.chain.anvil import AnvilProcess
from gridflex.chain.protocol import Protocol

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def own_chain() -> Iterator[Web3]:
    with AnvilProcess() as process:
        yield Web3(Web3.HTTPProvider(process.url))


@pytest.fixture
def governance(own_chain: Web3, tmp_path: Path) -> Protocol:
    return fresh_protocol(own_chain, tmp_path / "deployments")


def _indexer(engine: Engine, governance: Protocol, batch_blocks: int = 7) -> Indexer:
    """Small batches, so a few dozen blocks already take several `eth_getLogs` calls."""
    return Indexer(engine, governance.client.w3, governance.deployment, batch_blocks=batch_blocks)


def _snapshot(engine: Engine) -> dict[str, object]:
    """Everything the pages count, in a comparable form."""
    with Session(engine) as session:
        requests = session.exec(select(Request).order_by(Request.request_id)).all()
        bids = session.exec(select(Bid).order_by(Bid.request_id, Bid.bid_index)).all()
        ledger = session.exec(
            select(LedgerEntry.account, LedgerEntry.kind, LedgerEntry.amount, LedgerEntry.tx_hash)
        ).all()
        return {
            "events": session.exec(select(func.count()).select_from(ChainEvent)).one(),
            "requests": [r.model_dump() for r in requests],
            "bids": [b.model_dump() for b in bids],
            "ledger": sorted(ledger),
        }


def _check_against_chain(engine: Engine, market: Market) -> None:
    governance = market.governance
    with Session(engine) as session:
        for request_id in market.request_ids:
            stored = session.get(Request, request_id)
            assert stored is not None and stored.status == "settled"
            state = governance.request(request_id)
            assert stored.clearing_price == state.clearing_price
            assert stored.escrow == state.escrow
            assert stored.payouts + stored.fees + stored.refund == stored.escrow
            for bid in session.exec(select(Bid).where(Bid.request_id == request_id)).all():
                assert bid.awarded_w == governance.awarded_w(request_id)[bid.bid_index]
        paid = {
            owner.address: sum(
                e.amount
                for e in session.exec(
                    select(LedgerEntry).where(
                        LedgerEntry.account == owner.address, LedgerEntry.kind == "payout"
                    )
                ).all()
            )
            for owner in market.owners
        }
    for owner in market.owners:  # nobody withdrew: claimable is the sum of the payouts
        assert paid[owner.address] == governance.claimable(market.token, owner.address)


def test_indexer_projects_settlement_and_resumes_without_double_counting(
    engine: Engine, governance: Protocol, own_chain: Web3
) -> None:
    market = build_market(own_chain, governance)
    settle_request(market)
    first = _indexer(engine, governance).sync()
    assert first.new_events > 20 and first.indexed_block == first.chain_head
    _check_against_chain(engine, market)
    before = _snapshot(engine)

    restarted = _indexer(engine, governance)  # a new process on the same database
    again = restarted.sync()
    assert again.new_events == 0 and _snapshot(engine) == before

    with Session(engine) as session:  # a crash between commit and cursor: replay a range
        cursor = session.get(IndexerCursor, 1)
        assert cursor is not None
        cursor.next_block = governance.deployment.deployed_at_block
        session.add(cursor)
        session.commit()
    replay = restarted.sync()
    assert replay.new_events == 0 and _snapshot(engine) == before


@pytest.fixture(params=["sqlite", "postgresql"])
def any_engine(request: pytest.FixtureRequest, engine: Engine) -> Iterator[Engine]:
    """The SQLite engine, or one on a PostgreSQL database of the test's own."""
    if request.param == "sqlite":
        yield engine
        return
    postgres = create_explorer_engine(request.getfixturevalue("postgres_url"))
    init_db(postgres)
    yield postgres
    postgres.dispose()


def test_reverted_snapshot_is_undone_before_anything_counts_again(
    any_engine: Engine, governance: Protocol, own_chain: Web3, tmp_path: Path
) -> None:
    engine = any_engine
    market = build_market(own_chain, governance)
    settle_request(market)
    indexer = _indexer(engine, governance)
    indexer.sync()
    snapshot_id = own_chain.provider.make_request("evm_snapshot", [])["result"]

    settle_request(market, (100, 100))  # a second request, indexed, then reverted away
    indexer.sync()
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(Request)).one() == 2
    assert own_chain.provider.make_request("evm_revert", [snapshot_id])["result"] is True

    market = after_revert(market)
    market.request_ids.pop()
    settle_request(market, (50, 0))  # another history on the same block numbers
    result = indexer.sync()
    assert result.rolled_back_to is not None and not result.reset
    _check_against_chain(engine, market)

    fresh_engine = create_explorer_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    init_db(fresh_engine)
    _indexer(fresh_engine, governance, batch_blocks=1_000).sync()
    assert _snapshot(engine) == _snapshot(fresh_engine)
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(Request)).one() == 2


def test_a_restarted_chain_resets_the_index(
    engine: Engine, governance: Protocol, own_chain: Web3, tmp_path: Path
) -> None:
    """Same chain id, new genesis (anvil restarted, protocol redeployed): nothing of the
    old chain survives in the database."""
    market = build_market(own_chain, governance)
    settle_request(market)
    _indexer(engine, governance).sync()
    with AnvilProcess() as restarted:
        w3 = Web3(Web3.HTTPProvider(restarted.url))
        new_governance = fresh_protocol(w3, tmp_path / "restarted")
        new_market = build_market(w3, new_governance)
        result = _indexer(engine, new_governance).sync()
        assert result.reset
        with Session(engine) as session:
            assert session.exec(select(func.count()).select_from(Request)).one() == 0
            cursor = session.get(IndexerCursor, 1)
            assert cursor is not None and cursor.chain_id == w3.eth.chain_id
        settle_request(new_market)
        _indexer(engine, new_governance).sync()
        _check_against_chain(engine, new_market)
        with Session(engine) as session:
            assert session.exec(select(func.count()).select_from(Request)).one() == 1


def test_batches_shrink_when_the_provider_refuses_a_range(
    engine: Engine, governance: Protocol, own_chain: Web3
) -> None:
    """Hosted RPCs cap `eth_getLogs` ranges: a refused range is halved until accepted."""
    market = build_market(own_chain, governance)
    settle_request(market)
    indexer = _indexer(engine, governance, batch_blocks=1_000)
    real_get_logs = own_chain.eth.get_logs

    def capped_get_logs(params: dict[str, int]) -> object:
        if params["toBlock"] - params["fromBlock"] >= 8:
            raise ValueError("query exceeds max block range 8")
        return real_get_logs(params)  # type: ignore[arg-type]

    own_chain.eth.get_logs = capped_get_logs  # type: ignore[method-assign,assignment]
    try:
        result = indexer.sync()
    finally:
        own_chain.eth.get_logs = real_get_logs  # type: ignore[method-assign]
    assert indexer.batch_blocks <= 8 and result.indexed_block == result.chain_head
    _check_against_chain(engine, market)
