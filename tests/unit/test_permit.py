"""The EIP-2612 permit message `gridflex.chain.permit` signs, checked against the hash the
standard defines (written out here by hand with eth-abi), so a wrong type string, field
order or domain would fail before any token refuses a permit."""

from __future__ import annotations

import pytest
from eth_abi import encode
from eth_account import Account
from eth_utils import keccak

from gridflex.chain.permit import PermitDomain, permit_message

DOMAIN_TYPEHASH = keccak(
    text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
PERMIT_TYPEHASH = keccak(
    text="Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)"
)
TOKEN = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
SPENDER = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"


def domain_separator(domain: PermitDomain) -> bytes:
    return keccak(
        encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [
                DOMAIN_TYPEHASH,
                keccak(text=domain.name),
                keccak(text=domain.version),
                domain.chain_id,
                domain.verifying_contract,
            ],
        )
    )


@pytest.mark.parametrize(
    ("domain", "value", "nonce", "deadline"),
    [
        (PermitDomain("GridFlex Token", "1", 31337, TOKEN), 13 * 10**18, 0, 1_800_000_000),
        (PermitDomain("Other", "2", 1, SPENDER), 2**256 - 1, 7, 2**48),
    ],
)
def test_permit_message_is_the_eip2612_digest_and_recovers_the_owner(
    domain: PermitDomain, value: int, nonce: int, deadline: int
) -> None:
    owner = Account.create()
    message = permit_message(domain, owner.address, SPENDER, value, nonce, deadline)

    struct_hash = keccak(
        encode(
            ["bytes32", "address", "address", "uint256", "uint256", "uint256"],
            [PERMIT_TYPEHASH, owner.address, SPENDER, value, nonce, deadline],
        )
    )
    assert message.version == b"\x01"
    assert message.header == domain_separator(domain)
    assert message.body == struct_hash
    signed = owner.sign_message(message)
    assert signed.message_hash == keccak(b"\x19\x01" + domain_separator(domain) + struct_hash)
    assert Account.recover_message(message, signature=signed.signature) == owner.address


def test_a_permit_for_another_value_is_another_message() -> None:
    domain = PermitDomain("GridFlex Token", "1", 31337, TOKEN)
    owner = Account.create().address
    first = permit_message(domain, owner, SPENDER, 1, 0, 10)
    assert first.body != permit_message(domain, owner, SPENDER, 2, 0, 10).body
    assert first.body != permit_message(domain, owner, SPENDER, 1, 1, 10).body
