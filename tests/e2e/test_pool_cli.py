"""`gridflex pool ...` as an operator and a member run it, on the end-to-end chain: the
operator creates a pool and raises its commission (in force after the notice); the member's
node signs a consent to join; the operator accepts it; status shows members and capacity;
the member asks to leave. Every refusal is one readable line and changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from e2e_support import FLEX, RegisteredNode
from eth_account import Account
from typer.testing import CliRunner

from cli.main import app
from gridflex.chain.anvil import AnvilProcess

pytestmark = pytest.mark.integration

OPERATOR_ENV = "GRIDFLEX_POOL_OPERATOR_KEY"


def pool(*args: str, ok: bool = True) -> str:
    result = CliRunner().invoke(app, ["pool", *args])
    assert "Traceback" not in result.output
    assert (result.exit_code == 0) == ok, result.output
    return " ".join(result.output.split())


def test_an_operator_and_a_member_run_a_pool_from_the_command_line(
    registered_node: RegisteredNode,
    anvil: AnvilProcess,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    protocol = registered_node.protocol
    operator = Account.create()
    protocol.client.w3.provider.make_request("anvil_setBalance", [operator.address, hex(10**20)])
    protocol.send(protocol.token.functions.transfer(operator.address, 100 * FLEX))
    monkeypatch.setenv(OPERATOR_ENV, operator.key.hex())
    monkeypatch.setenv("GRIDFLEX_RPC_URL", anvil.url)
    rpc = ("--rpc-url", anvil.url)

    created = pool("create", "--name", "Buurtbatterij", "--commission", "12.5%", *rpc)
    pool_id = int(created.split()[1])
    assert f"operator {operator.address}" in created
    assert "CommissionTooHigh" not in pool("commission", str(pool_id), "60%", *rpc, ok=False)
    assert "above the maximum of 5000 bps" in pool(
        "commission", str(pool_id), "60%", *rpc, ok=False
    )
    assert "commission 30% from" in pool("commission", str(pool_id), "30%", *rpc)

    consent = tmp_path / "consent.json"
    joined = pool("join", str(pool_id), "--out", str(consent), *rpc)
    assert "with 5 devices written" in joined and "commission 12.5%" in joined
    devices = [d.device_id for d in registered_node.state.devices]
    assert json.loads(consent.read_text())["deviceIds"] == sorted(devices)

    assert f"enrolled 5 devices of {registered_node.state.owner}" in pool(
        "accept", str(pool_id), str(consent), *rpc
    )
    assert all(protocol.is_pooled(d) for d in devices)
    again = pool("accept", str(pool_id), str(consent), *rpc, ok=False)
    assert "stale signature" in again and "next nonce" in again
    other = pool("create", "--name", "Other", "--commission", "5%", *rpc)
    other_id = int(other.split()[1])
    assert f"is for pool {pool_id}, not {other_id}" in pool(
        "accept", str(other_id), str(consent), *rpc, ok=False
    )
    (tmp_path / "junk.json").write_text("{not json")
    assert "not a consent file" in pool(
        "accept", str(pool_id), str(tmp_path / "junk.json"), *rpc, ok=False
    )

    status = pool("status", str(pool_id), *rpc)
    assert "Buurtbatterij" in status and "5 devices of 1 members" in status
    assert "commission 12.5%" in status and "commission 30% from" in status

    left = pool("leave", *rpc)
    assert left.count(f"leaves pool {pool_id} at") == 5
    assert "leaves its pool at" in pool("leave", "--complete", *rpc, ok=False)
    assert all(protocol.is_pooled(d) for d in devices), "a refused call changes nothing"
    assert "0 devices of 0 members" in pool("status", str(pool_id), *rpc)

    assert "unreachable" in pool("claim", "1", "--oracle", "http://127.0.0.1:9", *rpc, ok=False)
    monkeypatch.delenv(OPERATOR_ENV)
    assert f"set {OPERATOR_ENV}" in pool(
        "create", "--name", "x", "--commission", "1%", *rpc, ok=False
    )
