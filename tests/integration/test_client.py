"""ChainClient signs locally, and every kind of revert comes back decoded."""

from __future__ import annotations

import pytest
from web3.contract import Contract

from gridflex.chain.anvil import AnvilProcess, anvil_dev_account
from gridflex.chain.client import ChainClient
from gridflex.chain.compiler import Artifact, compile_contracts
from gridflex.errors import TransactionReverted

pytestmark = pytest.mark.integration

METER_SOURCE = """// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

contract Meter is Ownable {
    error ReadingOutOfOrder(uint64 lastInterval, uint64 interval);

    uint64 public lastInterval;
    uint256[] public readingsWh;

    constructor() Ownable(msg.sender) {}

    function record(uint64 interval, uint256 energyWh) external onlyOwner {
        if (interval <= lastInterval) revert ReadingOutOfOrder(lastInterval, interval);
        require(energyWh > 0, "zero reading");
        lastInterval = interval;
        readingsWh.push(energyWh);
    }

    function reading(uint256 index) external view returns (uint256) {
        return readingsWh[index];
    }
}
"""


@pytest.fixture(scope="module")
def meter_artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Artifact]:
    source_dir = tmp_path_factory.mktemp("meter") / "contracts"
    source_dir.mkdir()
    (source_dir / "Meter.sol").write_text(METER_SOURCE)
    return compile_contracts(source_dir, build_dir=source_dir.parent / "build")


@pytest.fixture(scope="module")
def meter_client(anvil: AnvilProcess, meter_artifacts: dict[str, Artifact]) -> ChainClient:
    return ChainClient.from_url(anvil.url, anvil_dev_account(0).key.hex(), meter_artifacts)


@pytest.fixture(scope="module")
def meter(meter_client: ChainClient, meter_artifacts: dict[str, Artifact]) -> Contract:
    return meter_client.deploy(meter_artifacts["Meter"])


def test_send_returns_successful_receipt(meter_client: ChainClient, meter: Contract) -> None:
    receipt = meter_client.send(meter.functions.record(10, 1_500))

    assert receipt["status"] == 1
    assert meter_client.call(meter.functions.lastInterval()) == 10


def test_custom_error_is_decoded_with_named_args(
    meter_client: ChainClient, meter: Contract
) -> None:
    meter_client.send(meter.functions.record(20, 700))

    with pytest.raises(TransactionReverted) as raised:
        meter_client.send(meter.functions.record(5, 700))

    assert raised.value.error_name == "ReadingOutOfOrder"
    assert raised.value.error_args == {"lastInterval": 20, "interval": 5}


def test_mined_revert_is_decoded_by_replay(meter_client: ChainClient, meter: Contract) -> None:
    with pytest.raises(TransactionReverted) as raised:
        meter_client.send(meter.functions.record(1, 700), gas=200_000)  # skips estimation

    assert raised.value.tx_hash is not None
    assert raised.value.error_name == "ReadingOutOfOrder"


def test_dependency_error_is_decoded(
    meter_client: ChainClient, meter: Contract, meter_artifacts: dict[str, Artifact]
) -> None:
    # Only Meter's own ABI is given: OwnableUnauthorizedAccount comes from the inherited ABI.
    stranger = ChainClient(
        meter_client.w3,
        anvil_dev_account(1),
        {"Meter": meter_artifacts["Meter"]},
    )

    with pytest.raises(TransactionReverted) as raised:
        stranger.send(meter.functions.record(99, 1))

    assert raised.value.error_name == "OwnableUnauthorizedAccount"
    assert raised.value.error_args == {"account": anvil_dev_account(1).address}


def test_require_string_is_decoded(meter_client: ChainClient, meter: Contract) -> None:
    with pytest.raises(TransactionReverted) as raised:
        meter_client.send(meter.functions.record(1_000, 0))

    assert raised.value.error_name == "Error"
    assert raised.value.error_args == {"message": "zero reading"}


def test_panic_is_decoded(meter_client: ChainClient, meter: Contract) -> None:
    with pytest.raises(TransactionReverted) as raised:
        meter_client.call(meter.functions.reading(1_000))

    assert raised.value.error_name == "Panic"
    assert raised.value.error_args["code"] == 0x32
