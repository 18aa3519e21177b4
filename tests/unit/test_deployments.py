"""Deployment records round-trip and fail clearly when missing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gridflex.chain.deployments import (
    DeployedContract,
    Deployment,
    load_deployment,
    save_deployment,
)
from gridflex.errors import DeploymentNotFoundError

TOKEN_ABI = [{"type": "function", "name": "totalSupply", "inputs": [], "outputs": []}]


def test_saved_deployment_loads_back_identical(tmp_path: Path) -> None:
    deployment = Deployment(
        chain_id=31337,
        deployed_at_block=3,
        rpc_url="http://127.0.0.1:8545",
        contracts={
            "FlexToken": DeployedContract("0x5FbDB2315678afecb367f032d93F642f64180aa3", TOKEN_ABI)
        },
    )

    path = save_deployment(deployment, tmp_path)

    assert path == tmp_path / "31337.json"
    assert load_deployment(31337, tmp_path) == deployment
    on_disk = json.loads(path.read_text())
    assert on_disk["contracts"]["FlexToken"]["abi"] == TOKEN_ABI  # usable by cast/jq
    assert deployment.address_of("FlexToken") == "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def test_lowercase_address_is_checksummed_on_load(tmp_path: Path) -> None:
    (tmp_path / "1.json").write_text(
        json.dumps(
            {
                "chainId": 1,
                "deployedAtBlock": 10,
                "contracts": {
                    "FlexToken": {
                        "address": "0x5fbdb2315678afecb367f032d93f642f64180aa3",
                        "abi": [],
                    }
                },
            }
        )
    )

    assert load_deployment(1, tmp_path).address_of("FlexToken") == (
        "0x5FbDB2315678afecb367f032d93F642f64180aa3"
    )


def test_missing_deployment_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(DeploymentNotFoundError, match="gridflex deploy"):
        load_deployment(5, tmp_path)


def test_unknown_contract_lists_deployed_names() -> None:
    deployment = Deployment(chain_id=1, deployed_at_block=0)

    with pytest.raises(KeyError, match="FlexMarket"):
        deployment.address_of("FlexMarket")
