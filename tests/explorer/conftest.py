"""Explorer fixtures: an explorer database (SQLite in the test's directory); a small
settled market on the session anvil indexed into it, served by a TestClient; and a real
settled event (oracle process, nodes) shared by the browser and verification tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from explorer_event import SettledEvent, settled_event
from explorer_market import (
    POSTGRES_URL,
    IndexedMarket,
    build_market,
    explorer_context,
    settle_request,
)
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from support.chain import fresh_protocol
from web3 import Web3

from explorer.app import create_app
from explorer.db import create_explorer_engine, init_db
from explorer.indexer import Indexer
from gridflex.chain.anvil import AnvilProcess


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = create_explorer_engine(f"sqlite:///{tmp_path / 'explorer.db'}")
    init_db(engine)
    return engine


@pytest.fixture(scope="module")
def indexed_market(w3: Web3, tmp_path_factory: pytest.TempPathFactory) -> Iterator[IndexedMarket]:
    """Two settled requests (one under-delivered bid, slashed) indexed into SQLite."""
    directory = tmp_path_factory.mktemp("explorer")
    market = build_market(w3, fresh_protocol(w3, directory / "deployments"))
    settle_request(market)
    settle_request(market, (100, 20))
    context = explorer_context(w3, market, f"sqlite:///{directory / 'explorer.db'}")
    Indexer(context.engine, w3, context.deployment).sync()
    with TestClient(create_app(context)) as client:
        yield IndexedMarket(market, context, client)
    context.engine.dispose()


@pytest.fixture(scope="session")
def event(
    w3: Web3, anvil: AnvilProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SettledEvent]:
    """Built once per session: it takes real nodes and a real oracle through a window."""
    with settled_event(w3, anvil.url, tmp_path_factory.mktemp("event")) as settled:
        yield settled


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A database of this test's own on the local PostgreSQL server, dropped afterwards."""
    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=2)
    except psycopg.OperationalError as error:
        pytest.skip(f"no PostgreSQL at {POSTGRES_URL}: {error}")
    name = f"explorer_test_{os.getpid()}"
    with admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
        yield POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
