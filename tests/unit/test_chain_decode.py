"""Structs decoded by ABI name (`gridflex.chain.decode`): every rules dataclass the chain
edge reads finds each of its fields among the contract's struct members, whatever their
order, and a struct that lost a member fails loudly instead of shifting values."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from gridflex.chain.compiler import load_artifacts
from gridflex.chain.decode import AbiShapeError, from_named, snake_name, struct_from_output
from gridflex.chain.protocol import Bid, ChallengeState, OracleSeat, StakeAccount
from gridflex.rules.types import DeviceEpoch, RegistryDevice, RequestState

READS = [
    ("FlexMarket", "request", RequestState),
    ("FlexMarket", "bidOf", Bid),
    ("DeviceRegistry", "device", RegistryDevice),
    ("DeviceRegistry", "deviceAt", DeviceEpoch),
    ("DeviceRegistry", "epochAt", DeviceEpoch),
    ("OracleCommittee", "oracleOf", OracleSeat),
    ("Staking", "accountOf", StakeAccount),
]


def function_abi(contract: str, name: str) -> dict[str, Any]:
    (entry,) = [
        e
        for e in load_artifacts()[contract].abi
        if e.get("type") == "function" and e["name"] == name
    ]
    return entry


def sample_value(component: dict[str, Any], index: int) -> Any:
    """A distinct value of the member's ABI type (so a shifted member shows)."""
    kind = component["type"]
    if kind == "address":
        return "0x" + f"{index + 1:040x}"
    if kind == "bool":
        return True
    if kind.startswith("bytes"):
        return bytes([index + 1]) * 32
    if kind == "uint8":  # enums: a value valid for every enum of the structs
        return index % 2
    return 1_000 + index


@pytest.mark.parametrize(("contract", "function", "cls"), READS)
def test_struct_members_land_on_the_fields_of_the_same_name(
    contract: str, function: str, cls: type
) -> None:
    abi = function_abi(contract, function)
    components = abi["outputs"][0]["components"]
    raw = tuple(sample_value(c, i) for i, c in enumerate(components))
    decoded = struct_from_output(cls, abi, raw)
    by_member = {snake_name(c["name"]): value for c, value in zip(components, raw, strict=True)}
    for field in dataclasses.fields(cls):
        value = getattr(decoded, field.name)
        assert value == by_member[field.name], field.name


def test_challenge_state_takes_its_id_from_the_caller() -> None:
    abi = function_abi("DisputeResolver", "challengeOf")
    components = abi["outputs"][0]["components"]
    members = {c["name"]: sample_value(c, i) for i, c in enumerate(components)}
    state = from_named(ChallengeState, members, challenge_id=9)
    assert (state.challenge_id, state.used_energy_wh) == (9, members["usedEnergyWh"])


def test_a_missing_member_is_refused_not_shifted() -> None:
    abi = function_abi("FlexMarket", "bidOf")
    components = abi["outputs"][0]["components"]
    with pytest.raises(AbiShapeError):
        struct_from_output(Bid, abi, tuple(range(len(components) - 1)))
    members = {c["name"]: 1 for c in components if c["name"] != "placedAt"}
    with pytest.raises(AbiShapeError, match="placed_at"):
        from_named(Bid, members)


@pytest.mark.parametrize(
    ("abi_name", "field"),
    [
        ("capacityW", "capacity_w"),
        ("priceCapPerKWh", "price_cap_per_kwh"),
        ("availabilityPricePerKWh", "availability_price_per_kwh"),
        ("keyX", "key_x"),
        ("usedEnergyWh", "used_energy_wh"),
        ("round", "round"),
    ],
)
def test_snake_name(abi_name: str, field: str) -> None:
    assert snake_name(abi_name) == field
