"""Integration fixtures: the protocol compiled once and deployed once per session on the
session anvil, with local (short) protocol windows."""

from __future__ import annotations

import pytest
from web3 import Web3

from gridflex.chain.anvil import anvil_dev_account
from gridflex.chain.client import ChainClient
from gridflex.chain.compiler import Artifact, load_artifacts
from gridflex.chain.deploy import ProtocolParams, deploy_protocol
from gridflex.chain.protocol import Protocol


@pytest.fixture(scope="session")
def artifacts() -> dict[str, Artifact]:
    return load_artifacts()


@pytest.fixture(scope="session")
def governance(w3: Web3, artifacts: dict[str, Artifact]) -> Protocol:
    """Governance's handle on a freshly deployed protocol (anvil account 0)."""
    client = ChainClient(w3, anvil_dev_account(0), artifacts)
    deployment = deploy_protocol(client, ProtocolParams.local(), artifacts)
    return Protocol(client, deployment)
