"""The AutoBidder on the session anvil: bids automatically on requests in its zone, never
commits a device twice, follows the awards, and bids nothing twice across restarts."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account import Account
from web3 import Web3

from gridflex.chain.anvil import AnvilProcess, increase_time
from gridflex.chain.compiler import load_artifacts
from gridflex.chain.protocol import Protocol
from gridflex.rules.eip712 import secp256k1_device_key
from gridflex.rules.types import DeviceKind, RequestSpec, zone_id
from node.bidder import watch_and_bid
from node.strategy import DeviceStrategy, peak_committed_w

EUR = 10**18
FLEX = 10**18
ZONE = zone_id("NL-BID-01")

pytestmark = pytest.mark.integration


@pytest.fixture
def operator(deployed_protocol: Protocol, w3: Web3) -> tuple[Protocol, str]:
    account = Account.create()
    w3.provider.make_request("anvil_setBalance", [account.address, hex(10**21)])
    deployed_protocol.grant_grid_operator(account.address)
    op = deployed_protocol.as_account(account)
    deployed = op.client.deploy(load_artifacts()["FlexToken"], op.address, 10**6 * EUR)
    return op, deployed.address


@pytest.fixture
def owner(deployed_protocol: Protocol, w3: Web3) -> tuple[Protocol, list[DeviceStrategy]]:
    """A staked device owner with two registered 5 kW devices in ZONE."""
    account = Account.create()
    w3.provider.make_request("anvil_setBalance", [account.address, hex(10**21)])
    deployed_protocol.send(deployed_protocol.token.functions.transfer(account.address, 500 * FLEX))
    node = deployed_protocol.as_account(account)
    node.stake(500 * FLEX)
    devices = []
    for kind in (DeviceKind.BATTERY, DeviceKind.INDUSTRIAL_LOAD):
        key = Account.create().key
        proof = secp256k1_device_key(key, account.address, 31337, node.registry.address)
        device_id = node.register_device(kind, 5_000, ZONE, proof)
        devices.append(DeviceStrategy(device_id, kind, 5_000))
    return node, devices


def _spec(w3: Web3, token: str, *, power_w: int, cap: int, offset_s: int) -> RequestSpec:
    now = w3.eth.get_block("latest")["timestamp"]
    base = now - now % 900 + 4 * 3600
    return RequestSpec(
        zone=ZONE, power_w=power_w, window_start=base + offset_s,
        window_end=base + offset_s + 3600, price_cap_per_kwh=cap,
        gate_closure=base - 1800, settlement_token=token,
    )  # fmt: skip


def _no_device_overcommitted(bidder: object, devices: list[DeviceStrategy]) -> None:
    commitments = bidder.commitments.all()  # type: ignore[attr-defined]
    for device in devices:
        assert peak_committed_w(commitments, device.device_id, 0, 2**62) <= device.capacity_w


def test_bids_by_value_without_double_commitment_and_follows_awards(
    owner: tuple[Protocol, list[DeviceStrategy]], operator: tuple[Protocol, str],
    w3: Web3, anvil: AnvilProcess, tmp_path: Path,
) -> None:  # fmt: skip
    node, devices = owner
    op, token = operator
    db_path = tmp_path / "outbox.sqlite"
    watcher, bidder = watch_and_bid(db_path, node, devices, ZONE, anvil.url)
    bidder.poll_once(watcher)  # catch up

    cheap = _spec(w3, token, power_w=8_000, cap=EUR // 4, offset_s=0)
    valuable = _spec(w3, token, power_w=6_000, cap=EUR // 2, offset_s=1800)  # overlaps
    cheap_id, _ = op.create_request(cheap)
    valuable_id, _ = op.create_request(valuable)
    other_zone, _ = op.create_request(
        RequestSpec(**{**cheap.__dict__, "zone": zone_id("NL-ELSEWHERE")})
    )
    bidder.poll_once(watcher)

    bids = {b.request_id: b for b in bidder.own_bids()}
    # The more valuable one first, in full, on both devices; the cheap one overlaps it, and
    # a device backs one bid among overlapping requests (the market refuses a second one):
    # nothing is left for it, though 4 kW of capacity is (issue 12 finding 4).
    assert set(bids) == {valuable_id}
    assert bids[valuable_id].power_w == 6_000
    assert node.bids(cheap_id) == []
    _no_device_overcommitted(bidder, devices)
    chain_bids = node.bids(valuable_id)
    assert [(b.bidder, b.power_w) for b in chain_bids] == [(node.address, 6_000)]
    assert node.bids(other_zone) == []

    # Restart mid-way: a new watcher and bidder on the same database bid nothing twice.
    watcher.close()
    watcher, bidder = watch_and_bid(db_path, node, devices, ZONE, anvil.url)
    assert bidder.poll_once(watcher) == 0
    assert bidder.bid_open() == []
    assert (len(node.bids(cheap_id)), len(node.bids(valuable_id))) == (0, 1)

    # A bid that reached the chain before a crash (row not committed) is adopted, not redone.
    third = _spec(w3, token, power_w=1_000, cap=EUR // 10, offset_s=7200)
    third_id, _ = op.create_request(third)
    index = node.bid(third_id, 1_000, EUR // 20, [devices[0].device_id])
    bidder.poll_once(watcher)
    assert {b.request_id: b.bid_index for b in bidder.own_bids()}[third_id] == index
    assert len(node.bids(third_id)) == 1
    op.send(op.market.functions.cancelRequest(third_id))
    bidder.poll_once(watcher)
    assert all(c.request_id != third_id for c in bidder.commitments.all())

    # Clearing: the awards are what stays committed.
    increase_time(w3, cheap.gate_closure - w3.eth.get_block("latest")["timestamp"])
    op.clear(cheap_id)
    op.clear(valuable_id)
    bidder.poll_once(watcher)
    awarded = {b.request_id: b.awarded_w for b in bidder.own_bids()}
    assert cheap_id not in awarded
    assert awarded[valuable_id] == node.awarded_w(valuable_id)[0] == 6_000
    per_request = {}
    for c in bidder.commitments.all():
        per_request[c.request_id] = per_request.get(c.request_id, 0) + c.power_w
    assert per_request == {valuable_id: 6_000}
    _no_device_overcommitted(bidder, devices)
    watcher.close()


def test_partial_award_keeps_the_awarded_power_and_a_lost_bid_releases(
    owner: tuple[Protocol, list[DeviceStrategy]], operator: tuple[Protocol, str],
    deployed_protocol: Protocol, w3: Web3, anvil: AnvilProcess, tmp_path: Path,
) -> None:  # fmt: skip
    node, devices = owner
    op, token = operator
    rival_account = Account.create()
    w3.provider.make_request("anvil_setBalance", [rival_account.address, hex(10**21)])
    deployed_protocol.send(
        deployed_protocol.token.functions.transfer(rival_account.address, 500 * FLEX)
    )
    rival = deployed_protocol.as_account(rival_account)
    rival.stake(500 * FLEX)
    proof = secp256k1_device_key(Account.create().key, rival.address, 31337, rival.registry.address)
    rival_device = rival.register_device(DeviceKind.BATTERY, 20_000, ZONE, proof)

    watcher, bidder = watch_and_bid(tmp_path / "outbox.sqlite", node, devices, ZONE, anvil.url)
    bidder.poll_once(watcher)
    partial = _spec(w3, token, power_w=6_000, cap=EUR // 2, offset_s=0)
    lost = _spec(w3, token, power_w=4_000, cap=EUR // 2, offset_s=7200)  # no overlap
    partial_id, _ = op.create_request(partial)
    lost_id, _ = op.create_request(lost)
    bidder.poll_once(watcher)
    bids = {b.request_id: b for b in bidder.own_bids()}
    assert (bids[partial_id].power_w, bids[lost_id].power_w) == (6_000, 4_000)

    # The rival undercuts: 3 kW of the first request, all of the second.
    rival.bid(partial_id, 3_000, EUR // 10, [rival_device])
    rival.bid(lost_id, 4_000, EUR // 10, [rival_device])
    increase_time(w3, partial.gate_closure - w3.eth.get_block("latest")["timestamp"])
    op.clear(partial_id)
    op.clear(lost_id)
    bidder.poll_once(watcher)

    awarded = {b.request_id: b.awarded_w for b in bidder.own_bids()}
    assert awarded == {partial_id: 3_000, lost_id: 0}
    by_request: dict[int, int] = {}
    for c in bidder.commitments.all():
        by_request[c.request_id] = by_request.get(c.request_id, 0) + c.power_w
    assert by_request == {partial_id: 3_000}
    watcher.close()


def test_a_displaced_bid_frees_its_devices_and_an_overcommitted_bid_is_one_line(
    owner: tuple[Protocol, list[DeviceStrategy]], operator: tuple[Protocol, str],
    deployed_protocol: Protocol, w3: Web3, anvil: AnvilProcess, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """Issue 12 findings 4 and 6 from the node's side: a cheaper rival displaces the node's
    bid in a full request, the node frees the devices and bids them on an overlapping
    request; a bid the market refuses (device committed elsewhere) is skipped with one
    readable line."""
    node, devices = owner
    op, token = operator
    rival_account = Account.create()
    w3.provider.make_request("anvil_setBalance", [rival_account.address, hex(10**21)])
    deployed_protocol.send(
        deployed_protocol.token.functions.transfer(rival_account.address, 500 * FLEX)
    )
    rival = deployed_protocol.as_account(rival_account)
    rival.stake(500 * FLEX)
    proof = secp256k1_device_key(Account.create().key, rival.address, 31337, rival.registry.address)
    rival_device = rival.register_device(DeviceKind.BATTERY, 20_000, ZONE, proof)

    watcher, bidder = watch_and_bid(tmp_path / "outbox.sqlite", node, devices, ZONE, anvil.url)
    bidder.poll_once(watcher)
    max_bids = deployed_protocol.market.functions.maxBidsPerRequest().call()
    deployed_protocol.send(deployed_protocol.market.functions.setMaxBidsPerRequest(1))
    try:
        full = _spec(w3, token, power_w=6_000, cap=EUR // 2, offset_s=0)
        full_id, _ = op.create_request(full)
        bidder.poll_once(watcher)
        (own,) = bidder.own_bids()
        assert own.request_id == full_id and set(own.device_ids) == {d.device_id for d in devices}
        rival.bid(full_id, 6_000, own.price_per_kwh - 1, [rival_device])  # displaces the node
    finally:
        deployed_protocol.send(deployed_protocol.market.functions.setMaxBidsPerRequest(max_bids))
    assert [b.bidder for b in node.bids(full_id)] == [rival.address]

    overlapping = _spec(w3, token, power_w=6_000, cap=EUR // 2, offset_s=1800)
    overlapping_id, _ = op.create_request(overlapping)
    bidder.poll_once(watcher)
    bids = {b.request_id: b for b in bidder.own_bids()}
    assert bids[full_id].awarded_w == 0  # displaced: its devices were released
    assert bids[overlapping_id].power_w == 6_000  # and bid again, where they are free
    assert {c.request_id for c in bidder.commitments.all()} == {overlapping_id}

    # The node's commitments lost (e.g. a new database): the market still refuses the
    # device in an overlapping request, and the node logs it once and skips the request.
    third = _spec(w3, token, power_w=2_000, cap=EUR // 2, offset_s=900)
    third_id, _ = op.create_request(third)
    assert node.overlapping_commitment(devices[0].device_id, third.window_start,
                                       third.window_end) == overlapping_id  # fmt: skip
    fresh_watcher, fresh = watch_and_bid(tmp_path / "fresh.sqlite", node, devices[:1], ZONE,
                                         anvil.url)  # fmt: skip
    capsys.readouterr()
    fresh.poll_once(fresh_watcher)
    captured = capsys.readouterr()
    lines = [line for line in (captured.out + captured.err).splitlines() if "bid_failed" in line]
    assert any(f"request {overlapping_id}" in line and "overlaps" in line for line in lines)
    assert node.bids(third_id) == []
    watcher.close()
    fresh_watcher.close()


def test_a_node_bids_only_on_requests_of_its_own_metering_interval_length(
    owner: tuple[Protocol, list[DeviceStrategy]], operator: tuple[Protocol, str],
    w3: Web3, anvil: AnvilProcess, tmp_path: Path,
) -> None:  # fmt: skip
    """A request is measured from readings of its own interval length (issue 12, finding
    9). A node metering 900 s intervals awarded in an 1,800 s request used to be measured
    from every other 900 s reading as if it were 30 minutes (half its delivery); now it
    would be missing data, so it does not bid. A node metering 1,800 s bids there."""
    node, devices = owner
    op, token = operator
    quarter = _spec(
        w3, token, power_w=2_000, cap=EUR // 4, offset_s=2 * 86_400
    )  # clear of earlier tests' awards
    # after the quarter-hour request: one device backs one bid among overlapping windows
    start = quarter.window_end - quarter.window_end % 1800 + 1800
    half = RequestSpec(
        **{**quarter.__dict__, "interval_seconds": 1800, "window_start": start,
           "window_end": start + 3600}
    )  # fmt: skip
    quarter_id, _ = op.create_request(quarter)
    half_id, _ = op.create_request(half)

    bidders = {}
    for interval in (900, 1800):
        watcher, bidder = watch_and_bid(
            tmp_path / f"outbox-{interval}.sqlite", node, devices, ZONE, anvil.url, interval
        )
        bidder.poll_once(watcher)
        bidders[interval] = {b.request_id for b in bidder.own_bids()}
        watcher.close()
    assert quarter_id in bidders[900] and half_id not in bidders[900]
    assert half_id in bidders[1800] and quarter_id not in bidders[1800]
