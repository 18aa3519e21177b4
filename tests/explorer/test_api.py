"""The JSON API and the pages over a real indexed database (a settled market on anvil):
every figure equals the chain's, the CSV holds every settled bid, `/health` reports the
index at the chain head, and the same holds on PostgreSQL."""

from __future__ import annotations

import csv
import dataclasses
import io

import pytest
from explorer_market import IndexedMarket, explorer_context
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from web3 import Web3

from explorer.app import create_app
from explorer.indexer import Indexer
from explorer.queries import SettlementRow

pytestmark = pytest.mark.integration


def _claimable_payouts(indexed: IndexedMarket) -> dict[str, int]:
    market = indexed.market
    return {o.address: market.governance.claimable(market.token, o.address) for o in market.owners}


def test_request_figures_equal_the_chain(indexed_market: IndexedMarket) -> None:
    market = indexed_market.market
    for request_id in market.request_ids:
        body = indexed_market.client.get(f"/api/requests/{request_id}").json()
        state = market.governance.request(request_id)
        request = body["request"]
        assert request["status"] == "settled"
        assert int(request["clearing_price"]) == state.clearing_price
        assert int(request["escrow"]) == state.escrow
        assert (
            int(request["payouts"]) + int(request["fees"]) + int(request["refund"]) == state.escrow
        )
        assert [b["awarded_w"] for b in body["bids"]] == market.governance.awarded_w(request_id)
        assert body["reports"][0]["devices_root"] == "0x" + "01" * 32
        assert len(body["reports"][0]["signers"]) == 2
    paid: dict[str, int] = {}
    for row in indexed_market.client.get(f"/api/accounts/{market.owners[0].address}").json()[
        "ledger"
    ]:
        if row["kind"] == "payout":
            paid[row["token"]] = paid.get(row["token"], 0) + int(row["amount"])
    assert paid[market.token] == _claimable_payouts(indexed_market)[market.owners[0].address]


def test_overview_account_device_and_csv(indexed_market: IndexedMarket) -> None:
    client, market = indexed_market.client, indexed_market.market
    overview = client.get("/api/overview").json()
    assert overview["devices"] == 2 and overview["requests_by_status"] == {"settled": 2}
    (token,) = overview["tokens"]
    assert int(token["payouts"]) == sum(_claimable_payouts(indexed_market).values())
    assert int(overview["slashed_total"]) > 0  # the 20% delivery was below the threshold
    assert overview["history"][-1]["requests"] == 2

    owner = market.owners[1]
    account = client.get(f"/api/accounts/{owner.address.lower()}").json()  # any case
    staked, locked, *_ = market.governance.staking.functions.accountOf(owner.address).call()
    assert (int(account["stake"]["staked"]), int(account["stake"]["locked"])) == (staked, locked)
    assert int(account["slashed"]) > 0

    device = client.get(f"/api/devices/{market.device_ids[0]}").json()
    assert device["device"]["owner"] == market.owners[0].address
    assert device["device"]["key_type"] == "secp256k1"
    assert [e["request_id"] for e in device["events"]] == sorted(market.request_ids, reverse=True)

    answer = client.get("/api/settlements.csv")
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert len(rows) == 4
    assert set(rows[0]) == set(SettlementRow.model_fields)  # every figure, nothing else
    assert sum(int(r["payout"]) for r in rows) == sum(_claimable_payouts(indexed_market).values())


def test_pages_render_and_unknown_ids_are_404(indexed_market: IndexedMarket) -> None:
    client, market = indexed_market.client, indexed_market.market
    request_id = market.request_ids[0]
    for path, expected in (
        ("/", "<svg"),
        ("/requests", f'href="/requests/{request_id}"'),
        (f"/requests/{request_id}", "Merit order"),
        ("/devices", f'href="/devices/{market.device_ids[0]}"'),
        (f"/devices/{market.device_ids[0]}", f'href="/requests/{request_id}"'),
        (f"/accounts/{market.owners[0].address}", "payout"),
    ):
        answer = client.get(path)
        assert answer.status_code == 200, path
        assert expected in answer.text, path
    assert client.get("/requests/999999").status_code == 404
    assert client.get("/api/devices/999999").status_code == 404
    assert client.get(f"/api/requests/{request_id}/devices/999/verification").status_code == 404
    assert client.get("/static/explorer.css").status_code == 200
    assert "cdn" not in client.get("/").text.lower()


def test_health_reports_the_index_at_the_chain_head(indexed_market: IndexedMarket) -> None:
    health = indexed_market.client.get("/health").json()
    assert health["status"] == "ok"
    assert health["indexed_block"] == health["chain_head"]


def test_same_answers_on_postgresql(
    indexed_market: IndexedMarket, w3: Web3, postgres_url: str
) -> None:
    context = explorer_context(w3, indexed_market.market, postgres_url)
    Indexer(context.engine, w3, context.deployment).sync()
    with TestClient(create_app(context)) as client:
        for path in (
            "/api/overview",
            f"/api/requests/{indexed_market.market.request_ids[1]}",
            f"/api/accounts/{indexed_market.market.owners[1].address}",
            "/api/settlements.csv",
        ):
            mine, theirs = client.get(path), indexed_market.client.get(path)
            if path.endswith(".csv"):
                assert mine.text == theirs.text
                continue
            mine_body, theirs_body = mine.json(), theirs.json()
            for body in (mine_body, theirs_body):  # the chain moved on between the indexes
                body.pop("progress", None)
            assert mine_body == theirs_body, path
    context.engine.dispose()


def test_an_empty_database_serves_every_page(engine: Engine, indexed_market: IndexedMarket) -> None:
    """Before the first indexing pass (a fresh explorer): pages answer, health says so."""
    context = dataclasses.replace(indexed_market.context, engine=engine)
    with TestClient(create_app(context)) as client:
        assert client.get("/health").json()["status"] == "starting"
        for path in ("/", "/requests", "/devices", "/api/overview", "/api/settlements.csv"):
            assert client.get(path).status_code == 200, path
        assert "not started" in client.get("/").text
