"""`gridflex grid ...` as a grid operator runs it, against the session anvil: post a request
(permit + escrow), list, show, clear, finalize, cancel; and one readable failure each."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import Result
from eth_account import Account
from eth_account.signers.local import LocalAccount
from typer.testing import CliRunner
from web3 import Web3

from cli.main import app
from gridflex.chain.anvil import AnvilProcess, anvil_dev_account, free_port, increase_time
from gridflex.chain.client import ChainClient
from gridflex.chain.compiler import load_artifacts
from gridflex.chain.deploy import ProtocolParams, deploy_protocol
from gridflex.chain.deployments import save_deployment
from gridflex.chain.protocol import Protocol
from gridflex.config import get_settings
from gridflex.errors_text import explain_revert
from gridflex.rules.eip712 import ReportPayload, secp256k1_device_key, sign_report
from gridflex.rules.types import DeviceKind, RequestStatus, zone_id

pytestmark = pytest.mark.integration

FLEX = 10**18
ZONE = "NL-AMS-01"
OPERATOR_ENV = "GRIDFLEX_OPERATOR_KEY"
BIDDER_ENV = "GRIDFLEX_TEST_BIDDER_KEY"


@dataclass
class Market:
    url: str
    w3: Web3
    deployments_dir: Path
    governance: Protocol
    operator: Protocol
    bidder: Protocol
    bidder_device: int
    oracle: LocalAccount


@pytest.fixture(scope="module")
def market(anvil: AnvilProcess, w3: Web3, tmp_path_factory: pytest.TempPathFactory) -> Market:
    """A fresh deployment (governance = dev account 9) recorded in a temp deployments dir,
    with a funded grid operator, a staked bidder owning a 40 kW battery, and one oracle."""
    artifacts = load_artifacts()
    client = ChainClient(w3, anvil_dev_account(9), artifacts)
    deployment = deploy_protocol(client, ProtocolParams.local(), artifacts)
    deployments_dir = tmp_path_factory.mktemp("deployments")
    save_deployment(deployment, deployments_dir)
    governance = Protocol(client, deployment)
    operator = governance.as_account(anvil_dev_account(8))
    bidder = governance.as_account(anvil_dev_account(7))
    oracle = anvil_dev_account(6)
    governance.grant_grid_operator(operator.address)
    governance.send(governance.token.functions.transfer(operator.address, 1_000 * FLEX))
    governance.send(governance.token.functions.transfer(bidder.address, 1_000 * FLEX))
    governance.seat_oracle(oracle, 1)
    bidder.stake(1_000 * FLEX)
    device = bidder.register_device(
        DeviceKind.BATTERY, 40_000, zone_id(ZONE),
        secp256k1_device_key(
            Account.create().key, bidder.address, w3.eth.chain_id, governance.registry.address
        ),
    )  # fmt: skip
    return Market(anvil.url, w3, deployments_dir, governance, operator, bidder, device, oracle)


@pytest.fixture(autouse=True)
def cli_env(market: Market, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("GRIDFLEX_DEPLOYMENTS_DIR", str(market.deployments_dir))
    monkeypatch.setenv(OPERATOR_ENV, anvil_dev_account(8).key.hex())
    monkeypatch.setenv(BIDDER_ENV, anvil_dev_account(7).key.hex())
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.delenv("GRIDFLEX_RPC_URL", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def grid(market: Market, *args: str) -> Result:
    return CliRunner().invoke(app, ["grid", *args, "--rpc-url", market.url], env=dict(os.environ))


def _now(market: Market) -> int:
    return int(market.w3.eth.get_block("latest")["timestamp"])


def _aligned_start(market: Market, seconds_ahead: int) -> int:
    target = _now(market) + seconds_ahead
    return target - target % 900 + 900


def post_request(market: Market, start: int | str, *extra: str) -> Result:
    return grid(
        market, "request", "--zone", ZONE, "--power-kw", "50", "--start", str(start),
        "--hours", "1", "--price-cap", "0.25", "--availability-price", "0.01", *extra,
    )  # fmt: skip


def request_id_of(result: Result) -> int:
    assert result.exit_code == 0, result.output
    match = re.search(r"request (\d+) created", result.output)
    assert match, result.output
    return int(match.group(1))


def test_request_permits_and_escrows_the_budget_in_one_step(market: Market) -> None:
    start = _aligned_start(market, 3 * 3600)
    before = market.operator.balance_of(market.operator.token.address)
    result = post_request(market, start, "--baseline", "pjm", "--pricing", "uniform")
    request_id = request_id_of(result)
    # 50 kWh at 0.25 + 50 kW x 1 h at 0.01
    assert "budget 13.00 FLEX escrowed (via permit)" in result.output
    assert "reduce 50 kW in NL-AMS-01" in result.output
    state = market.operator.request(request_id)
    assert state.escrow == 13 * FLEX
    assert state.baseline_method == 2 and state.pricing_rule == 1
    assert state.window_end - state.window_start == 3600
    assert state.gate_closure == start - 3600
    assert market.operator.balance_of(market.operator.token.address) == before - 13 * FLEX
    allowance = market.operator.token.functions.allowance(
        market.operator.address, market.operator.market.address
    ).call()
    assert allowance == 0  # the permit covered exactly the budget


def test_request_takes_iso_start_and_intervals(market: Market) -> None:
    from datetime import UTC, datetime

    start = _aligned_start(market, 4 * 3600)
    iso = datetime.fromtimestamp(start, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = grid(
        market, "request", "--zone", ZONE, "--power-kw", "20", "--start", iso,
        "--intervals", "2", "--price-cap", "0.1", "--direction", "increase",
        "--gate-closure-minutes-before", "30",
    )  # fmt: skip
    request_id = request_id_of(result)
    state = market.operator.request(request_id)
    assert state.window_start == start and state.window_end == start + 1800
    assert state.gate_closure == start - 1800
    assert int(state.direction) == 1
    assert "budget 1.00 FLEX" in result.output  # 10 kWh at 0.10


def test_request_with_gate_closure_in_the_past_is_refused_readably(market: Market) -> None:
    start = _aligned_start(market, 900)  # gate closure 60 min before: already past
    result = post_request(market, start)
    assert result.exit_code == 1
    assert "gate closure has passed" in result.output
    assert "Traceback" not in result.output


def test_request_without_allowance_says_how_much_is_missing(market: Market) -> None:
    result = post_request(market, _aligned_start(market, 3 * 3600), "--no-approve")
    assert result.exit_code == 1
    assert "insufficient allowance: need 13.00 FLEX, have 0.00" in result.output


def test_request_by_a_non_operator_points_to_governance(
    market: Market, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = post_request(market, _aligned_start(market, 3 * 3600), "--key-env", BIDDER_ENV)
    assert result.exit_code == 1
    assert "not a grid operator" in result.output
    assert "GRID_OPERATOR_ROLE" in result.output


def test_request_beyond_the_balance_is_refused_before_sending(market: Market) -> None:
    result = grid(
        market, "request", "--zone", ZONE, "--power-kw", "50", "--start",
        str(_aligned_start(market, 3 * 3600)), "--hours", "1", "--price-cap", "100",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "insufficient balance: need 5,000.00 FLEX" in result.output


def test_requests_lists_the_market(market: Market) -> None:
    request_id = request_id_of(post_request(market, _aligned_start(market, 3 * 3600)))
    result = grid(market, "requests")
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if f"│ {request_id} " in line)
    assert "open" in row and "50 kW" in row and "13.00 FLEX" in row
    mine = grid(market, "requests", "--mine", "--key-env", BIDDER_ENV)
    assert mine.exit_code == 0, mine.output
    assert f"│ {request_id} " not in mine.output


def test_requests_with_a_bad_rpc_url_says_no_chain_answers(market: Market) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(app, ["grid", "requests", "--rpc-url", url])
    assert result.exit_code == 1
    assert f"no chain answers at {url}" in result.output


def test_show_unknown_request_is_readable(market: Market) -> None:
    result = grid(market, "show", "999")
    assert result.exit_code == 1
    assert "request 999 does not exist" in result.output


def test_clear_before_gate_closure_is_refused_readably(market: Market) -> None:
    request_id = request_id_of(post_request(market, _aligned_start(market, 3 * 3600)))
    result = grid(market, "clear", str(request_id))
    assert result.exit_code == 1
    assert "gate closure has not passed yet" in result.output
    assert market.operator.request(request_id).status == RequestStatus.OPEN


def test_cancel_by_a_non_operator_is_refused_then_the_operator_cancels(market: Market) -> None:
    request_id = request_id_of(post_request(market, _aligned_start(market, 3 * 3600)))
    refused = grid(market, "cancel", str(request_id), "--key-env", BIDDER_ENV)
    assert refused.exit_code == 1
    assert f"not the operator of request {request_id}" in refused.output

    result = grid(market, "cancel", str(request_id))
    assert result.exit_code == 0, result.output
    assert f"request {request_id} cancelled: refund 13.00 FLEX" in result.output
    assert market.operator.request(request_id).status == RequestStatus.CANCELLED
    shown = grid(market, "show", str(request_id))
    assert "cancelled: refund 13.00 FLEX" in shown.output


def test_cancel_without_a_key_says_which_variable_to_set(
    market: Market, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(OPERATOR_ENV)
    result = grid(market, "cancel", "1")
    assert result.exit_code == 1
    assert f"set {OPERATOR_ENV}" in result.output


def test_event_lifecycle_clear_finalize_and_show(market: Market) -> None:
    start = _aligned_start(market, 3 * 3600)
    request_id = request_id_of(post_request(market, start))
    market.bidder.bid(request_id, 30_000, FLEX // 5, [market.bidder_device])

    finalize_open = grid(market, "finalize", str(request_id))
    assert finalize_open.exit_code == 1
    assert f"request {request_id} is open, this needs it reported" in finalize_open.output

    increase_time(market.w3, start - 3600 - _now(market))
    cleared = grid(market, "clear", str(request_id))
    assert cleared.exit_code == 0, cleared.output
    assert "30 kW awarded to 1 bid(s), clearing price 0.20 FLEX/kWh" in cleared.output
    assert f"bid #0 {market.bidder.address}: 30 kW at 0.20 FLEX/kWh" in cleared.output

    # After the window the (single) oracle reports full delivery: 30 kW x 1 h.
    increase_time(market.w3, start + 3600 - _now(market))
    governance = market.governance
    delivered = [30_000]
    payload = ReportPayload(
        governance.market.address, request_id, 0, delivered, b"\x01" * 32, b"\x02" * 32
    )
    signatures = sign_report(
        payload, market.w3.eth.chain_id, governance.committee.address, [market.oracle.key]
    )
    governance.submit_report(request_id, delivered, b"\x01" * 32, b"\x02" * 32, signatures)

    too_early = grid(market, "finalize", str(request_id))
    assert too_early.exit_code == 1
    assert f"the dispute window of request {request_id} is still open until" in too_early.output

    increase_time(market.w3, governance.market.functions.disputeWindow().call())
    settled = grid(market, "finalize", str(request_id))
    assert settled.exit_code == 0, settled.output
    # 30 kWh at 0.20 + 30 kW x 1 h at 0.01 = 6.30 gross; 1% fee; refund 13 - 6.30
    assert f"request {request_id} settled: payouts 6.237 FLEX, fees 0.063 FLEX" in settled.output
    assert "refund 6.70 FLEX" in settled.output
    assert market.operator.request(request_id).status == RequestStatus.SETTLED

    shown = grid(market, "show", str(request_id))
    assert shown.exit_code == 0, shown.output
    output = shown.output
    assert f"request {request_id}: settled" in output
    assert market.bidder.address in output and "0.20 FLEX" in output
    assert "report (round 0): #0: 30,000 Wh" in output
    assert "settlement: payouts 6.237 FLEX" in output
    assert "bid #0: delivered 30,000 Wh" in output

    again = grid(market, "clear", str(request_id))
    assert again.exit_code == 1
    assert f"request {request_id} is settled, this needs it open" in again.output


def _sample(abi_type: str) -> object:
    if abi_type.endswith("]"):
        return []
    if abi_type == "address":
        return "0x" + "11" * 20
    if abi_type.startswith("bytes"):
        return b"\x00" * (int(abi_type[5:]) if abi_type[5:] else 0)
    if abi_type == "string":
        return "text"
    if abi_type == "bool":
        return True
    return 1


def test_every_custom_error_of_the_protocol_has_a_sentence() -> None:
    artifacts = load_artifacts()
    for name in ("FlexToken", "DeviceRegistry", "Staking", "OracleCommittee", "FlexMarket",
                 "DisputeResolver", "DeliveryDispute", "PoolRegistry"):  # fmt: skip
        for entry in (e for e in artifacts[name].abi if e["type"] == "error"):
            args = {
                item.get("name") or f"arg{index}": _sample(item["type"])
                for index, item in enumerate(entry["inputs"])
            }
            sentence = explain_revert(entry["name"], args)
            assert not sentence.startswith("reverted with"), (name, entry["name"], sentence)
