"""Fixtures of the stories that move chain time forward by a day or more (to a time of day,
through gate closure, the window, the report delay and the dispute window). They run on a
chain of their own: on the shared end-to-end chain, which runs a few days behind the wall
clock so devices register before the history a node streams, those days would run out and
a later test's history would precede its devices' registration."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import REPORT_DELAY_S
from eth_account import Account
from eth_account.signers.local import LocalAccount
from support.chain import fresh_protocol
from support.oracle_process import OracleServer, start_oracle
from web3 import Web3

from gridflex.chain.anvil import AnvilProcess
from gridflex.chain.protocol import Protocol


@pytest.fixture(scope="session")
def anvil() -> Iterator[AnvilProcess]:
    with AnvilProcess() as process:
        yield process


@pytest.fixture(scope="session")
def w3(anvil: AnvilProcess) -> Web3:
    return Web3(Web3.HTTPProvider(anvil.url))


@pytest.fixture
def protocol(w3: Web3, tmp_path: Path) -> Protocol:
    return fresh_protocol(w3, tmp_path / "deployments")


@pytest.fixture
def oracle(anvil: AnvilProcess, tmp_path: Path, protocol: Protocol) -> Iterator[OracleServer]:
    """One committee oracle, seated at threshold 1, on chain time."""
    account: LocalAccount = Account.create()
    protocol.client.w3.provider.make_request("anvil_setBalance", [account.address, hex(10**21)])
    protocol.seat_oracle(account, 1)
    env = {
        "GRIDFLEX_ORACLE_RPC_URL": anvil.url,
        "GRIDFLEX_ORACLE_DEPLOYMENTS_DIR": str(tmp_path / "deployments"),
        "GRIDFLEX_ORACLE_DATA_DIR": str(tmp_path / "oracle"),
        "GRIDFLEX_ORACLE_SIGNER_KEY": account.key.hex(),
        "GRIDFLEX_ORACLE_CLOCK": "chain",
        "GRIDFLEX_ORACLE_COMMITTEE_POLL_SECONDS": "0.3",
        "GRIDFLEX_ORACLE_REPORT_DELAY_SECONDS": str(REPORT_DELAY_S),
    }
    server = start_oracle(tmp_path, env)
    try:
        yield server
    finally:
        server.stop()
