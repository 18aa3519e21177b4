"""Pool fixtures on a live chain: a household registering a device and joining a pool with
its own signed consent, and a grid operator with a settlement token of its own."""

from __future__ import annotations

from eth_account import Account

from gridflex.chain.compiler import load_artifacts
from gridflex.chain.protocol import Protocol
from gridflex.rules.eip712 import secp256k1_device_key, sign_digest_secp256k1
from gridflex.rules.pools import consent_digest
from gridflex.rules.types import DeviceKind
from support.chain import funded_account


def registered_device(owner: Protocol, zone: bytes, capacity_w: int) -> int:
    """A battery of `owner` in `zone`, registered with a fresh secp256k1 key."""
    w3 = owner.client.w3
    key = secp256k1_device_key(
        Account.create().key, owner.address, w3.eth.chain_id, owner.registry.address
    )
    return owner.register_device(DeviceKind.BATTERY, capacity_w, zone, key)


def enroll_with_consent(
    operator: Protocol, pool_id: int, member: Protocol, devices: list[int]
) -> None:
    """The operator enrols `devices` with the member's own EIP-712 consent (nonce 0, one
    day to use it)."""
    deadline = operator.latest_block_timestamp() + 86_400
    digest = consent_digest(
        operator.client.chain_id, operator.pools.address, pool_id, member.address, devices, 0,
        deadline,
    )  # fmt: skip
    signature = sign_digest_secp256k1(member.client.account.key, digest)
    operator.enroll(pool_id, member.address, devices, 0, deadline, signature)


def grid_operator_with_token(governance: Protocol) -> tuple[Protocol, str]:
    """A funded account holding the grid operator role and its own settlement token
    (10^24 base units), for requests that settle apart from FLEX."""
    dso = governance.as_account(funded_account(governance.client.w3))
    governance.grant_grid_operator(dso.address)
    token = dso.client.deploy(load_artifacts()["FlexToken"], dso.address, 10**24)
    return dso, token.address
