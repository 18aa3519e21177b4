"""Node fixtures: a stand-in oracle (a real HTTP server on a free port implementing the
ingest answer contract), a node data dir and a protocol deployed on the session anvil."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from eth_account import Account
from node_support import FakeOracle, OracleHandler
from web3 import Web3

from gridflex.chain.client import ChainClient
from gridflex.chain.compiler import load_artifacts
from gridflex.chain.deploy import ProtocolParams, deploy_protocol
from gridflex.chain.protocol import Protocol


@pytest.fixture
def oracle_server() -> Iterator[Callable[[FakeOracle], str]]:
    """Start FakeOracles on free ports; returns each one's base URL."""
    servers: list[ThreadingHTTPServer] = []

    def start(oracle: FakeOracle) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), OracleHandler)
        server.oracle = oracle  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def node_dir(tmp_path: Path) -> Path:
    return tmp_path / "node"


@pytest.fixture(scope="session")
def deployed_protocol(w3: Web3) -> Protocol:
    """A protocol deployed once for the node tests by its own fresh governance account, so
    no other fixture's cached nonce for anvil's account 0 goes stale."""
    governance = Account.create()
    w3.provider.make_request("anvil_setBalance", [governance.address, hex(10**21)])
    artifacts = load_artifacts()
    client = ChainClient(w3, governance, artifacts)
    deployment = deploy_protocol(client, ProtocolParams.local(), artifacts)
    return Protocol(client, deployment)
