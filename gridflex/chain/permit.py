"""EIP-2612 permits: an owner approves a spender with a signature instead of a transaction
(signed with eth-account's EIP-712 typed data), so posting a request is one step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account.messages import SignableMessage, encode_typed_data
from web3.contract import Contract

from gridflex.chain.client import ChainClient

PERMIT_DEADLINE_SECONDS = 3600
"""How long a signed permit stays valid (it is submitted right away)."""


def _named(params: str) -> list[dict[str, str]]:
    """ABI parameters from their Solidity spelling: "address owner, uint256 value"."""
    pairs = (param.split() for param in params.split(",") if param.strip())
    return [{"name": name, "type": type_} for type_, name in pairs]


def _function(name: str, mutability: str, inputs: str, outputs: str) -> dict[str, Any]:
    return {
        "type": "function",
        "name": name,
        "stateMutability": mutability,
        "inputs": _named(inputs),
        "outputs": _named(outputs),
    }


PERMIT_ABI: list[dict[str, Any]] = [
    _function("nonces", "view", "address owner", "uint256 nonce"),
    _function(
        "eip712Domain",
        "view",
        "",
        "bytes1 fields, string name, string version, uint256 chainId, "
        "address verifyingContract, bytes32 salt, uint256[] extensions",
    ),
    _function(
        "permit",
        "nonpayable",
        "address owner, address spender, uint256 value, uint256 deadline, "
        "uint8 v, bytes32 r, bytes32 s",
        "",
    ),
]
"""EIP-2612 (`nonces`, `permit`) and EIP-5267 (`eip712Domain`), the parts a permit needs."""

PERMIT_TYPES = {
    "Permit": _named(
        "address owner, address spender, uint256 value, uint256 nonce, uint256 deadline"
    )
}


@dataclass(frozen=True)
class PermitDomain:
    """The token's EIP-712 domain, as its `eip712Domain()` (EIP-5267) reports it."""

    name: str
    version: str
    chain_id: int
    verifying_contract: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "chainId": self.chain_id,
            "verifyingContract": self.verifying_contract,
        }


def permit_message(
    domain: PermitDomain, owner: str, spender: str, value: int, nonce: int, deadline: int
) -> SignableMessage:
    """The EIP-712 message an EIP-2612 `permit(owner, spender, value, deadline, v, r, s)`
    checks the signature against."""
    return encode_typed_data(
        domain.as_dict(),
        PERMIT_TYPES,
        {"owner": owner, "spender": spender, "value": value, "nonce": nonce, "deadline": deadline},
    )


def _permit_contract(client: ChainClient, token: str) -> Contract:
    return client.contract(token, PERMIT_ABI)


def permit_domain(client: ChainClient, token: str) -> PermitDomain | None:
    """The token's permit domain; None when it does not support EIP-2612 with EIP-5267."""
    contract = _permit_contract(client, token)
    try:
        contract.functions.nonces(client.address).call()
        _fields, name, version, chain_id, verifying, _salt, _ext = (
            contract.functions.eip712Domain().call()
        )
    except Exception:  # no such function: approve with a transaction instead
        return None
    return PermitDomain(str(name), str(version), int(chain_id), str(verifying))


def submit_permit(
    client: ChainClient, token: str, domain: PermitDomain, spender: str, value: int
) -> None:
    """Sign a permit letting `spender` pull `value` of `token` (whose domain is `domain`)
    from the client's account, and submit it (valid for PERMIT_DEADLINE_SECONDS)."""
    contract = _permit_contract(client, token)
    owner = client.address
    nonce = int(contract.functions.nonces(owner).call())
    deadline = int(client.w3.eth.get_block("latest")["timestamp"]) + PERMIT_DEADLINE_SECONDS
    signed = client.account.sign_message(
        permit_message(domain, owner, spender, value, nonce, deadline)
    )
    client.send(
        contract.functions.permit(
            owner,
            spender,
            value,
            deadline,
            signed.v,
            signed.r.to_bytes(32, "big"),
            signed.s.to_bytes(32, "big"),
        )
    )
