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

PERMIT_ABI: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": "nonces",
        "stateMutability": "view",
        "inputs": [{"name": "owner", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    },
    {
        "type": "function",
        "name": "eip712Domain",
        "stateMutability": "view",
        "inputs": [],
        "outputs": [
            {"name": "fields", "type": "bytes1"},
            {"name": "name", "type": "string"},
            {"name": "version", "type": "string"},
            {"name": "chainId", "type": "uint256"},
            {"name": "verifyingContract", "type": "address"},
            {"name": "salt", "type": "bytes32"},
            {"name": "extensions", "type": "uint256[]"},
        ],
    },
    {
        "type": "function",
        "name": "permit",
        "stateMutability": "nonpayable",
        "inputs": [
            {"name": "owner", "type": "address"},
            {"name": "spender", "type": "address"},
            {"name": "value", "type": "uint256"},
            {"name": "deadline", "type": "uint256"},
            {"name": "v", "type": "uint8"},
            {"name": "r", "type": "bytes32"},
            {"name": "s", "type": "bytes32"},
        ],
        "outputs": [],
    },
]

PERMIT_TYPES = {
    "Permit": [
        {"name": "owner", "type": "address"},
        {"name": "spender", "type": "address"},
        {"name": "value", "type": "uint256"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ]
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
