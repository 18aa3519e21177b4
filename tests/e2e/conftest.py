"""End-to-end fixtures: the protocol deployed once on the session anvil, and a node of five
simulated devices of mixed kinds (two on P-256 keys) created and registered on-chain with
`gridflex node init` / `gridflex node register`, as a device owner would."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import FAST_SCRYPT_N, FLEX, PASSWORD, RegisteredNode, node_cli
from eth_account import Account
from support.chain import anvil_behind_wall_clock
from web3 import Web3

from gridflex.chain.anvil import AnvilProcess
from gridflex.chain.client import ChainClient
from gridflex.chain.compiler import load_artifacts
from gridflex.chain.deploy import ProtocolParams, deploy_protocol
from gridflex.chain.deployments import save_deployment
from gridflex.chain.protocol import Protocol
from gridflex.config import get_settings
from gridflex.rules.attestation import meter_domain_separator
from node.state import load_state

NODE_STAKE_FLEX = 100
CHAIN_BEHIND_DAYS = 8
"""The streamed history is at most the six days before the last wall-clock midnight."""


@pytest.fixture(scope="session")
def anvil() -> Iterator[AnvilProcess]:
    """The end-to-end tests' own anvil, its chain CHAIN_BEHIND_DAYS behind the wall clock:
    the node registers its devices before the past day it streams (`--end` a wall-clock
    midnight), as a real node registers before it meters."""
    with anvil_behind_wall_clock(CHAIN_BEHIND_DAYS) as process:
        yield process


@pytest.fixture(scope="session")
def w3(anvil: AnvilProcess) -> Web3:
    return Web3(Web3.HTTPProvider(anvil.url))


@pytest.fixture(scope="session")
def e2e_protocol(w3: Web3) -> Protocol:
    """The protocol deployed once for the end-to-end tests by its own governance account,
    so no other folder's cached nonce for anvil's account 0 goes stale."""
    governance = Account.create()
    w3.provider.make_request("anvil_setBalance", [governance.address, hex(10**21)])
    artifacts = load_artifacts()
    client = ChainClient(w3, governance, artifacts)
    return Protocol(client, deploy_protocol(client, ProtocolParams.local(), artifacts))


@pytest.fixture
def deployments_dir(tmp_path: Path, e2e_protocol: Protocol) -> Path:
    """The deployment record, read by both `gridflex node register` and the oracle."""
    directory = tmp_path / "deployments"
    save_deployment(e2e_protocol.deployment, directory)
    return directory


@pytest.fixture
def registered_node(
    tmp_path: Path,
    deployments_dir: Path,
    anvil: AnvilProcess,
    e2e_protocol: Protocol,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[RegisteredNode]:
    data_dir = tmp_path / "node"
    monkeypatch.setenv("GRIDFLEX_NODE_DATA_DIR", str(data_dir))
    monkeypatch.setenv("GRIDFLEX_NODE_SCRYPT_N", str(FAST_SCRYPT_N))
    monkeypatch.setenv("GRIDFLEX_NODE_PASSWORD", PASSWORD)
    monkeypatch.setenv("GRIDFLEX_DEPLOYMENTS_DIR", str(deployments_dir))
    monkeypatch.delenv("GRIDFLEX_NODE_ORACLE_URLS", raising=False)
    get_settings.cache_clear()

    node_cli("init", "--devices", "5", "--p256", "2")
    owner = load_state(data_dir).owner
    e2e_protocol.client.w3.provider.make_request("anvil_setBalance", [owner, hex(10**20)])
    e2e_protocol.send(e2e_protocol.token.functions.transfer(owner, 2 * NODE_STAKE_FLEX * FLEX))
    node_cli("register", "--stake", str(NODE_STAKE_FLEX), "--rpc-url", anvil.url)

    state = load_state(data_dir)
    assert state.chain_id is not None and state.registry is not None
    yield RegisteredNode(
        data_dir, state, e2e_protocol, meter_domain_separator(state.chain_id, state.registry)
    )
    get_settings.cache_clear()


@pytest.fixture
def oracle_env(tmp_path: Path, anvil: AnvilProcess, deployments_dir: Path) -> dict[str, str]:
    """Settings of an oracle on the same chain and deployment, SQLite in `oracle/oracle.db`."""
    return {
        "GRIDFLEX_ORACLE_RPC_URL": anvil.url,
        "GRIDFLEX_ORACLE_DEPLOYMENTS_DIR": str(deployments_dir),
        "GRIDFLEX_ORACLE_DATA_DIR": str(tmp_path / "oracle"),
    }
