"""A pool operator who lies about its members, against the deployed contracts and the
oracle's own rule for which devices back a pool bid: it cannot enrol a device with a
consent it signed itself or one replayed from another pool, count a member who asked to
leave or offer more than its members hold; and the devices the oracles measure for its
bid are exactly the members backing it at bid time. (Collecting a member's share:
`contracts/test/PoolRegistry.t.sol`, `NotDeviceOwnerAt`.)"""

from __future__ import annotations

import pytest
from support.chain import fresh_protocol, funded_account
from support.pools import enroll_with_consent, grid_operator_with_token, registered_device
from web3 import Web3

from gridflex.chain.anvil import increase_time
from gridflex.chain.facts import read_request_facts
from gridflex.chain.protocol import Protocol
from gridflex.errors import TransactionReverted
from gridflex.rules.eip712 import sign_digest_secp256k1
from gridflex.rules.pools import backing_devices, consent_digest
from gridflex.rules.types import RequestSpec, zone_id

pytestmark = pytest.mark.integration

FLEX = 10**18
ZONE = zone_id("NL-LIAR-01")


def _consent(
    signer: bytes, owner: str, protocol: Protocol, pool_id: int, ids: list[int]
) -> tuple[int, bytes]:
    """(deadline, signature) of a `PoolConsent` for `owner`'s `ids`, signed by `signer`."""
    deadline = protocol.latest_block_timestamp() + 86_400
    digest = consent_digest(
        protocol.client.chain_id, protocol.pools.address, pool_id, owner, ids, 0, deadline
    )
    return deadline, sign_digest_secp256k1(signer, digest)


def _reverts(name: str, call: object) -> None:
    with pytest.raises(TransactionReverted) as caught:
        call()  # type: ignore[operator]
    assert caught.value.error_name == name, caught.value


def test_a_lying_pool_operator_gains_nothing(w3: Web3) -> None:
    governance = fresh_protocol(w3)
    operator = governance.as_account(funded_account(w3))
    governance.send(governance.token.functions.transfer(operator.address, 1_000 * FLEX))
    operator.stake(1_000 * FLEX)
    pool_id = operator.create_pool(1_000, "honest-looking VPP")
    other_pool = operator.create_pool(1_000, "a second pool")
    owners = [governance.as_account(funded_account(w3)) for _ in range(3)]
    ids = [registered_device(owner, ZONE, 5_000) for owner in owners]

    # A consent the operator signed itself, for a device of someone else.
    deadline, forged = _consent(
        operator.client.account.key, owners[0].address, operator, pool_id, [ids[0]]
    )
    _reverts(
        "InvalidConsent",
        lambda: operator.enroll(pool_id, owners[0].address, [ids[0]], 0, deadline, forged),
    )
    # A genuine consent for another pool, replayed into this one.
    deadline, for_other = _consent(
        owners[0].client.account.key, owners[0].address, operator, other_pool, [ids[0]]
    )
    _reverts(
        "InvalidConsent",
        lambda: operator.enroll(pool_id, owners[0].address, [ids[0]], 0, deadline, for_other),
    )
    assert operator.pool_capacity(pool_id, ZONE) == 0, "nothing enrolled"

    for owner, device_id in zip(owners, ids, strict=True):
        enroll_with_consent(operator, pool_id, owner, [device_id])
    owners[2].request_leave([ids[2]])
    increase_time(w3, 2)

    dso, token = grid_operator_with_token(governance)
    now = governance.latest_block_timestamp()
    start = now - now % 900 + 2 * 3600
    spec = RequestSpec(
        zone=ZONE, power_w=10_000, window_start=start, window_end=start + 3600,
        price_cap_per_kwh=FLEX // 4, availability_price_per_kwh=0,
        gate_closure=start - 900, settlement_token=token,
    )  # fmt: skip
    request_id, _ = dso.create_request(spec)
    # The leaver no longer counts: 10 kW of two members, not 15 kW.
    _reverts(
        "PoolCapacityExceeded", lambda: operator.bid_as_pool(request_id, pool_id, 10_001, FLEX // 5)
    )
    bid_index = operator.bid_as_pool(request_id, pool_id, 10_000, FLEX // 5)
    increase_time(w3, spec.gate_closure - governance.latest_block_timestamp())
    governance.clear(request_id)

    # What every honest oracle measures for the bid: the two members backing it.
    facts = read_request_facts(governance, request_id)
    (bid,) = facts.bids
    assert bid.bid_index == bid_index and sorted(bid.device_capacity_w) == ids[:2]
    placed_at = governance.bid_of(request_id, bid_index).placed_at
    assert backing_devices(governance.memberships(pool_id), pool_id, ZONE, placed_at) == {
        ids[0]: 5_000,
        ids[1]: 5_000,
    }
