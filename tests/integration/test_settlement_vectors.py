"""Python and Solidity settlement math agree to the unit: both run the hand-computed
shared vectors, then hypothesis compares them on random inputs through the harness
contract deployed on anvil (the same library bytecode the market links)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web3 import Web3
from web3.contract import Contract

from gridflex.chain.anvil import anvil_dev_account
from gridflex.chain.client import ChainClient
from gridflex.chain.compiler import REPO_ROOT, compile_contracts
from gridflex.rules import settlement

pytestmark = pytest.mark.integration

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "settlement.json").read_text())


def _int(value: Any) -> int:
    return int(value)


@pytest.fixture(scope="module")
def harness(w3: Web3) -> Contract:
    artifacts = compile_contracts(REPO_ROOT / "contracts" / "test" / "harness")
    client = ChainClient(w3, anvil_dev_account(0), artifacts)
    return client.deploy(artifacts["SettlementMathHarness"])


def _bid_args(case: dict[str, Any]) -> tuple[int, ...]:
    keys = ("awarded_w", "duration_s", "delivered_wh", "price_per_kwh")
    keys += ("availability_price_per_kwh", "threshold_bps", "bond")
    return tuple(_int(case[key]) for key in keys)


def _expected_outcome(case: dict[str, Any]) -> tuple[int, ...]:
    fields = ("awarded_wh", "credited_wh", "utilization", "availability", "slashed")
    return tuple(_int(case["expected"][name]) for name in fields)


def _python_outcome(args: tuple[int, ...]) -> tuple[int, ...]:
    o = settlement.settle_bid(*args)
    return (o.awarded_wh, o.credited_wh, o.utilization, o.availability, o.slashed)


@pytest.mark.parametrize("case", VECTORS["settle_bid"], ids=lambda c: c["name"])
def test_settle_bid_vector_matches_in_python_and_solidity(case: dict, harness: Contract) -> None:
    args = _bid_args(case)
    assert _python_outcome(args) == _expected_outcome(case)
    assert tuple(harness.functions.settleBid(*args).call()) == _expected_outcome(case)


@pytest.mark.parametrize("case", VECTORS["max_budget"])
def test_max_budget_vector_matches_in_python_and_solidity(case: dict, harness: Contract) -> None:
    keys = ("power_w", "duration_s", "price_cap_per_kwh", "availability_price_per_kwh")
    args = tuple(_int(case[key]) for key in keys)
    expected = (_int(case["expected"]["utilization"]), _int(case["expected"]["availability"]))
    assert settlement.max_budget(*args) == expected
    assert tuple(harness.functions.maxBudget(*args).call()) == expected


@pytest.mark.parametrize("case", VECTORS["fee"])
def test_fee_vector_matches_in_python_and_solidity(case: dict, harness: Contract) -> None:
    assert settlement.fee(case["gross"], case["fee_bps"]) == case["expected"]
    assert harness.functions.fee(case["gross"], case["fee_bps"]).call() == case["expected"]


@pytest.mark.parametrize("case", VECTORS["bond_for"])
def test_bond_vector_matches_in_python_and_solidity(case: dict, harness: Contract) -> None:
    args = (_int(case["power_w"]), _int(case["bond_per_kw"]))
    assert settlement.bond_for(*args) == _int(case["expected"])
    assert harness.functions.bondFor(*args).call() == _int(case["expected"])


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    awarded_w=st.integers(0, 2**48 - 1),
    intervals=st.integers(1, 96),
    interval_s=st.sampled_from([900, 1800]),
    delivered_wh=st.integers(0, 2**64),
    price=st.integers(0, 2**96 - 1),
    availability_price=st.integers(0, 2**96 - 1),
    threshold_bps=st.integers(0, 10_000),
    bond=st.integers(0, 2**96 - 1),
)
def test_settle_bid_python_equals_solidity_on_random_inputs(
    harness: Contract,
    awarded_w: int,
    intervals: int,
    interval_s: int,
    delivered_wh: int,
    price: int,
    availability_price: int,
    threshold_bps: int,
    bond: int,
) -> None:
    args = (awarded_w, intervals * interval_s, delivered_wh, price, availability_price)
    args += (threshold_bps, bond)
    assert tuple(harness.functions.settleBid(*args).call()) == _python_outcome(args)


@pytest.mark.parametrize("case", VECTORS["pool_split"], ids=lambda c: c["name"])
def test_pool_split_vector_matches_in_python_and_solidity(case: dict, harness: Contract) -> None:
    args = (_int(case["payout"]), _int(case["commission_bps"]))
    expected = (_int(case["expected"]["commission"]), _int(case["expected"]["member_pot"]))
    assert settlement.pool_split(*args) == expected
    assert tuple(harness.functions.poolSplit(*args).call()) == expected


@pytest.mark.parametrize("case", VECTORS["member_share"], ids=lambda c: c["name"])
def test_member_share_vector_matches_in_python_and_solidity(case: dict, harness: Contract) -> None:
    args = (case["member_pot"], case["bid_delivered_wh"], case["device_delivered_wh"])
    assert settlement.member_share(*args) == case["expected"]
    assert harness.functions.memberShare(*args).call() == case["expected"]


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    pot=st.integers(0, 2**128 - 1),
    bid_delivered=st.integers(0, 2**64),
    device_delivered=st.integers(-(2**63), 2**63 - 1),
    commission_bps=st.integers(0, 5_000),
)
def test_pool_math_python_equals_solidity_on_random_inputs(
    harness: Contract, pot: int, bid_delivered: int, device_delivered: int, commission_bps: int
) -> None:
    assert tuple(harness.functions.poolSplit(pot, commission_bps).call()) == settlement.pool_split(
        pot, commission_bps
    )
    assert harness.functions.memberShare(pot, bid_delivered, device_delivered).call() == (
        settlement.member_share(pot, bid_delivered, device_delivered)
    )
