"""Open one account's handle on the deployment of the chain at an RPC URL, through the one
connection path (`gridflex.chain.connect`): what every CLI command and the node builder do
before they touch the protocol."""

from __future__ import annotations

from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3.exceptions import Web3Exception

from gridflex.chain.client import ChainClient
from gridflex.chain.connect import DEFAULT_TIMEOUT_SECONDS, chain_id_at, connect
from gridflex.chain.deployments import load_deployment
from gridflex.chain.protocol import Protocol
from gridflex.errors import GridFlexError

LOCAL_RPC_URL = "http://127.0.0.1:8545"
"""Where `gridflex chain up` serves anvil: the RPC every command falls back to."""

CHAIN_CALL_ERRORS: tuple[type[Exception], ...] = (Web3Exception, OSError, ValueError)
"""What a chain call can raise besides GridFlexError (the node rejected the call, the
connection broke, a bad argument): callers that print one readable line catch these too."""


def open_protocol(
    rpc_url: str,
    deployments_dir: Path,
    account: LocalAccount | None = None,
    *,
    expected_chain_id: int | None = None,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
) -> Protocol:
    """The recorded deployment of the chain at `rpc_url`, signing as `account` (read-only
    callers get a throwaway account). Raises ChainUnavailableError when no chain answers,
    GridFlexError when the chain is not `expected_chain_id` or has no deployment record."""
    w3 = connect(rpc_url, timeout_seconds)
    chain_id = chain_id_at(w3, rpc_url)
    if expected_chain_id is not None and expected_chain_id != chain_id:
        raise GridFlexError(
            f"the RPC at {rpc_url} is chain {chain_id}, this node uses chain {expected_chain_id}"
        )
    deployment = load_deployment(chain_id, deployments_dir)
    client = ChainClient(w3, account or Account.create())
    for deployed in deployment.contracts.values():
        client.register_abi(deployed.abi)
    return Protocol(client, deployment)
