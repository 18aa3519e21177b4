"""Issue 12 findings 4 and 6 through the Python client on a real anvil: a cheaper bid gets
into a full request by displacing the worst one, after which slot order is no longer bid
order, so `Protocol.clear` must send the merit order by (price, sequence) that the contract
checks; and a device cannot back two overlapping requests (one readable refusal)."""

from __future__ import annotations

import pytest
from eth_account import Account
from support.chain import fresh_protocol, funded_account, staked_owner
from web3 import Web3

from gridflex.chain.anvil import increase_time
from gridflex.chain.compiler import load_artifacts
from gridflex.chain.protocol import Protocol
from gridflex.errors import TransactionReverted
from gridflex.errors_text import explain
from gridflex.rules.clearing import merit_order
from gridflex.rules.eip712 import secp256k1_device_key
from gridflex.rules.types import DeviceKind, RequestSpec, RequestStatus, zone_id

pytestmark = pytest.mark.integration

FLEX = 10**18
EUR = 10**18
ZONE = zone_id("NL-DISPLACE-01")


def _owner_with_device(governance: Protocol, w3: Web3) -> tuple[Protocol, int]:
    owner = staked_owner(governance, 200 * FLEX)
    proof = secp256k1_device_key(
        Account.create().key, owner.address, w3.eth.chain_id, owner.registry.address
    )
    return owner, owner.register_device(DeviceKind.BATTERY, 10_000, ZONE, proof)


def _spec(w3: Web3, token: str, offset_s: int) -> RequestSpec:
    now = w3.eth.get_block("latest")["timestamp"]
    start = now - now % 900 + 2 * 3600 + offset_s
    return RequestSpec(
        zone=ZONE, power_w=20_000, window_start=start, window_end=start + 3600,
        price_cap_per_kwh=EUR // 2, gate_closure=now - now % 900 + 3600,
        settlement_token=token,
    )  # fmt: skip


def test_displacement_then_clearing_by_sequence_and_no_device_in_two_overlapping_requests(
    w3: Web3,
) -> None:
    governance = fresh_protocol(w3)
    operator = governance.as_account(funded_account(w3))
    governance.grant_grid_operator(operator.address)
    token = operator.client.deploy(load_artifacts()["FlexToken"], operator.address, 10**6 * EUR)
    governance.send(governance.market.functions.setMaxBidsPerRequest(2))
    (alice, alice_device), (bob, bob_device), (carol, carol_device) = (
        _owner_with_device(governance, w3) for _ in range(3)
    )

    spec = _spec(w3, token.address, 0)
    request_id, _ = operator.create_request(spec)
    assert alice.bid(request_id, 10_000, EUR // 5, [alice_device]) == 0  # sequence 0
    assert bob.bid(request_id, 10_000, EUR // 10, [bob_device]) == 1  # sequence 1
    with pytest.raises(TransactionReverted) as full:  # not cheaper than the worst (alice)
        carol.bid(request_id, 10_000, EUR // 5, [carol_device])
    assert full.value.error_name == "TooManyBids"
    assert carol.bid(request_id, 10_000, EUR // 10, [carol_device]) == 0  # displaces alice
    offers = governance.bids(request_id)
    assert [(o.index, o.bidder, o.sequence) for o in offers] == [
        (0, carol.address, 2),
        (1, bob.address, 1),
    ]
    # Equal prices: bob placed first, though carol holds the lower slot.
    assert merit_order(offers) == [1, 0]

    # Alice's device is free again: she bids it on an overlapping request; bob's is not.
    overlapping = _spec(w3, token.address, 1800)
    overlapping_id, _ = operator.create_request(overlapping)
    assert alice.bid(overlapping_id, 10_000, EUR // 5, [alice_device]) == 0
    with pytest.raises(TransactionReverted) as stacked:
        bob.bid(overlapping_id, 10_000, EUR // 5, [bob_device])
    assert stacked.value.error_name == "DeviceOvercommitted"
    assert stacked.value.error_args == {"deviceId": bob_device, "otherRequestId": request_id}
    assert explain(stacked.value).startswith(
        f"device {bob_device} already backs a live bid in request {request_id}"
    )
    assert (
        governance.overlapping_commitment(
            bob_device, overlapping.window_start, overlapping.window_end
        )
        == request_id
    )

    increase_time(w3, spec.gate_closure - w3.eth.get_block("latest")["timestamp"])
    operator.clear(request_id)  # the merit order by (price, sequence) passes the check
    assert governance.request(request_id).status == RequestStatus.CLEARED
    assert governance.awarded_w(request_id) == [10_000, 10_000]
