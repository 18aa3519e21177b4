"""`gridflex node status | earnings | withdraw` as a device owner runs them, on a fresh
deployment: the AutoBidder's commitments, the payout of a settled bid, pulling it, and the
readable failure of each command."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.chain import fresh_protocol, funded_account
from typer.testing import CliRunner
from web3 import Web3

from cli.main import app
from gridflex.chain.anvil import AnvilProcess, increase_time
from gridflex.config import get_settings
from gridflex.rules.eip712 import ReportPayload, sign_report
from gridflex.rules.types import RequestSpec, zone_id
from node.bidder import watch_and_bid
from node.config import NodeSettings
from node.keystore import load_owner
from node.state import load_state
from node.strategy import DeviceStrategy

PASSWORD = "node test password"
FLEX = 10**18
ZONE_NAME = "NL-NODECLI-01"
FAST_SCRYPT_N = 2**10

pytestmark = pytest.mark.integration


@pytest.fixture
def node_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    data_dir = tmp_path / "node"
    monkeypatch.setenv("GRIDFLEX_NODE_DATA_DIR", str(data_dir))
    monkeypatch.setenv("GRIDFLEX_NODE_SCRYPT_N", str(FAST_SCRYPT_N))
    monkeypatch.setenv("GRIDFLEX_DEPLOYMENTS_DIR", str(tmp_path / "deployments"))
    monkeypatch.setenv("GRIDFLEX_NODE_PASSWORD", PASSWORD)
    monkeypatch.setenv("COLUMNS", "250")
    get_settings.cache_clear()
    yield data_dir
    get_settings.cache_clear()


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["node", *args])
    return result.exit_code, result.output


def test_status_without_a_node_says_to_init(node_env: Path) -> None:
    code, output = invoke("status")
    assert code == 1
    assert "gridflex node init" in output


def test_status_earnings_withdraw_through_an_event(
    node_env: Path, anvil: AnvilProcess, w3: Web3, tmp_path: Path
) -> None:
    governance = fresh_protocol(w3, get_settings().deployments_dir)
    oracle = funded_account(w3)
    governance.seat_oracle(oracle, 1)
    operator = governance.as_account(funded_account(w3))
    governance.grant_grid_operator(operator.address)
    governance.send(governance.token.functions.transfer(operator.address, 1_000 * FLEX))

    assert invoke("init", "--devices", "1", "--zone", ZONE_NAME)[0] == 0
    owner = load_state(node_env).owner
    w3.provider.make_request("anvil_setBalance", [owner, hex(10**20)])
    governance.send(governance.token.functions.transfer(owner, 200 * FLEX))
    code, output = invoke("register", "--stake", "200", "--rpc-url", anvil.url)
    assert code == 0, output
    (device,) = load_state(node_env).devices
    assert device.device_id is not None

    code, output = invoke("status")
    assert code == 0, output
    assert owner in output and device.name in output and str(device.device_id) in output
    assert f"capacity {device.capacity_w:,} W" in output and "no current commitments" in output

    code, output = invoke("earnings", "--rpc-url", anvil.url)
    assert code == 0, output
    assert "0.00 FLEX" in output and "no settled bids yet" in output
    code, output = invoke("withdraw", "--rpc-url", anvil.url)
    assert code == 1
    assert f"nothing to withdraw for {owner}" in output
    flex = governance.token.address
    code, output = invoke("withdraw", "--token", flex, "--rpc-url", anvil.url)
    assert code == 1
    assert f"nothing to withdraw for {owner}" in output  # the decoded NothingToWithdraw

    # The node bids automatically; the operator clears, the oracle reports, it settles.
    now = w3.eth.get_block("latest")["timestamp"]
    start = now - now % 900 + 3 * 3600
    spec = RequestSpec(
        zone=zone_id(ZONE_NAME), power_w=device.capacity_w, window_start=start,
        window_end=start + 3600, price_cap_per_kwh=FLEX // 4, gate_closure=start - 1800,
        settlement_token=flex,
    )  # fmt: skip
    request_id, _ = operator.create_request(spec)
    node_protocol = governance.as_account(load_owner(node_env, PASSWORD))
    strategy = DeviceStrategy(device.device_id, device.kind, device.capacity_w)
    outbox = NodeSettings(data_dir=node_env).outbox_path
    watcher, bidder = watch_and_bid(outbox, node_protocol, [strategy], spec.zone, anvil.url)
    bidder.poll_once(watcher)
    (bid,) = bidder.own_bids()
    watcher.close()

    code, output = invoke("status")
    assert code == 0, output
    assert "current commitments" in output and str(request_id) in output
    assert f"{device.capacity_w}" in output

    increase_time(w3, spec.gate_closure - w3.eth.get_block("latest")["timestamp"])
    operator.clear(request_id)
    increase_time(w3, spec.window_end - w3.eth.get_block("latest")["timestamp"])
    delivered = [device.capacity_w]  # full delivery: capacity x 1 h
    roots = (b"\x01" * 32, b"\x02" * 32)
    payload = ReportPayload(governance.market.address, request_id, 0, delivered, *roots)
    signatures = sign_report(payload, 31337, governance.committee.address, [oracle.key])
    governance.submit_report(request_id, delivered, *roots, signatures)
    increase_time(w3, governance.market.functions.disputeWindow().call())
    governance.finalize(request_id)
    claimable = governance.claimable(flex, owner)
    assert claimable > 0

    code, output = invoke("earnings", "--rpc-url", anvil.url)
    assert code == 0, output
    money = f"{claimable / FLEX:,.2f}"
    assert output.count(money) >= 3  # claimable, settled total, the settled bid's row
    assert f"{request_id}" in output and "settled bids" in output
    assert bid.price_per_kwh > 0

    before = governance.balance_of(flex, owner)
    code, output = invoke("withdraw", "--rpc-url", anvil.url)
    assert code == 0, output
    assert f"withdrew {money}" in output
    assert governance.balance_of(flex, owner) == before + claimable
    assert governance.claimable(flex, owner) == 0

    code, output = invoke("withdraw", "--token", "not-an-address", "--rpc-url", anvil.url)
    assert code == 1 and "is not an address" in output
