"""Shared fixtures: one anvil per test session on a free port, and a Web3 bound to it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from web3 import Web3

from gridflex.chain.anvil import AnvilProcess


@pytest.fixture(scope="session")
def anvil() -> Iterator[AnvilProcess]:
    """A running Osaka anvil for the whole session, stopped (no orphan) at the end."""
    with AnvilProcess() as process:
        yield process


@pytest.fixture(scope="session")
def w3(anvil: AnvilProcess) -> Web3:
    """Web3 on the session anvil."""
    return Web3(Web3.HTTPProvider(anvil.url))
