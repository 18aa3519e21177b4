"""The one way to reach a chain node: an HTTP provider with a request timeout, checked to
answer before anything is built on it. Every component and the CLI connect through here."""

from __future__ import annotations

from web3 import Web3
from web3.exceptions import Web3Exception

from gridflex.errors import ChainUnavailableError

DEFAULT_TIMEOUT_SECONDS = 30.0

Connection = Web3
"""A connection to a node, as `connect` builds it: the type to hold one by outside the
chain edge, which passes it back in (web3 stays an implementation detail here)."""

RPC_ERRORS: tuple[type[Exception], ...] = (Web3Exception, ValueError)
"""What a JSON-RPC call may raise when the node refuses it (a range too large for
`eth_getLogs`, no state at an old block)."""


def connect(rpc_url: str, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS) -> Web3:
    """A Web3 connection to `rpc_url` (not yet checked: see `chain_id_at`)."""
    return Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout_seconds}))


def chain_id_at(w3: Web3, rpc_url: str) -> int:
    """The chain id the node at `rpc_url` reports; ChainUnavailableError when none answers."""
    try:
        return int(w3.eth.chain_id)
    except Exception as error:
        raise ChainUnavailableError(
            f"no chain answers at {rpc_url} ({type(error).__name__})"
        ) from error
