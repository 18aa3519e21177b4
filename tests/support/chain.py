"""Chain helpers shared by integration tests: funded throwaway accounts, a protocol of a
test's own (fresh governance, so no nonce clash with other tests on the session anvil), and
polling for a condition."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from gridflex.chain.anvil import AnvilProcess, increase_time
from gridflex.chain.client import ChainClient
from gridflex.chain.compiler import Artifact, load_artifacts
from gridflex.chain.deploy import ProtocolParams, deploy_protocol
from gridflex.chain.deployments import save_deployment
from gridflex.chain.protocol import Protocol


def funded_account(w3: Web3, wei: int = 10**21) -> LocalAccount:
    """A fresh account with gas money: its transactions share no nonce with anyone."""
    account = Account.create()
    w3.provider.make_request("anvil_setBalance", [account.address, hex(wei)])
    return account


def staked_owner(governance: Protocol, stake: int) -> Protocol:
    """A fresh funded account, given `stake` FLEX by governance and staking all of it."""
    owner = governance.as_account(funded_account(governance.client.w3))
    governance.send(governance.token.functions.transfer(owner.address, stake))
    owner.stake(stake)
    return owner


def fresh_protocol(
    w3: Web3,
    deployments_dir: Path | None = None,
    artifacts: dict[str, Artifact] | None = None,
) -> Protocol:
    """The protocol deployed by a fresh governance account (local windows); its record is
    written to `deployments_dir` when given, for processes that read it."""
    artifacts = artifacts or load_artifacts()
    client = ChainClient(w3, funded_account(w3), artifacts)
    governance = Protocol(client, deploy_protocol(client, ProtocolParams.local(), artifacts))
    if deployments_dir is not None:
        save_deployment(governance.deployment, deployments_dir)
    return governance


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def anvil_behind_wall_clock(days: int) -> AnvilProcess:
    """An anvil (not started) whose chain time runs `days` behind the wall clock: devices
    registered on it exist before the past days a test streams by wall time (a reading
    before its device's registration is refused, issue 12 finding 9)."""
    genesis = int(time.time()) - days * 86_400
    return AnvilProcess(extra_args=["--timestamp", str(genesis)])


def advance_to_time_of_day(w3: Web3, seconds_of_day: int) -> int:
    """Move chain time forward to the next `seconds_of_day` (UTC); returns the new time.
    Simulated devices follow the time of day (a home battery is empty from 22:00 to 01:00
    and has nothing to offer then), so a test whose nodes bid with them picks its hour
    instead of depending on when the suite runs."""
    now = int(w3.eth.get_block("latest")["timestamp"])
    return increase_time(w3, (seconds_of_day - now) % 86_400)
