"""`gridflex node init | register | stream` as a device owner runs them: keys, on-chain
registration with proof of possession and stake, signed history delivered to an oracle."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from node_support import DAY, FAST_SCRYPT_N, MONDAY, FakeOracle
from typer.testing import CliRunner

from cli.main import app
from gridflex.chain.anvil import AnvilProcess, free_port
from gridflex.chain.deployments import save_deployment
from gridflex.chain.protocol import Protocol
from gridflex.config import get_settings
from gridflex.rules.attestation import (
    DeviceSigningKey,
    MeterUnit,
    meter_domain_separator,
    verify_unit,
)
from gridflex.rules.eip712 import KeyType
from gridflex.rules.types import zone_id
from node.state import load_state

PASSWORD = "node test password"
FLEX = 10**18


@pytest.fixture
def node_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh node data dir and deployments dir, cheap scrypt, password in an env var."""
    data_dir = tmp_path / "node"
    monkeypatch.setenv("GRIDFLEX_NODE_DATA_DIR", str(data_dir))
    monkeypatch.setenv("GRIDFLEX_NODE_SCRYPT_N", str(FAST_SCRYPT_N))
    monkeypatch.setenv("GRIDFLEX_DEPLOYMENTS_DIR", str(tmp_path / "deployments"))
    monkeypatch.setenv("NODE_PW", PASSWORD)
    monkeypatch.delenv("GRIDFLEX_NODE_PASSWORD", raising=False)
    get_settings.cache_clear()
    yield data_dir
    get_settings.cache_clear()


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["node", *args])
    return result.exit_code, result.output


def test_init_prints_keys_and_refuses_a_second_init(node_env: Path) -> None:
    code, output = invoke("init", "--devices", "3", "--p256", "1", "--password-env", "NODE_PW")
    assert code == 0, output
    state = load_state(node_env)
    assert state.owner in output
    key_types = [d.key_type for d in state.devices]
    assert key_types == [KeyType.SECP256K1, KeyType.SECP256K1, KeyType.P256]
    assert state.devices[0].public_key in output

    code, output = invoke("init", "--password-env", "NODE_PW")
    assert code == 1
    assert "already exists" in output and "refusing to overwrite" in output
    assert load_state(node_env).owner == state.owner


def test_init_with_an_unset_password_variable_says_so(node_env: Path) -> None:
    code, output = invoke("init", "--password-env", "NO_SUCH_VARIABLE")
    assert code == 1
    assert "NO_SUCH_VARIABLE" in output and "not set" in output
    assert not node_env.exists()


def fund_owner(protocol: Protocol, owner: str, flex: int) -> None:
    protocol.client.w3.provider.make_request("anvil_setBalance", [owner, hex(10**20)])
    protocol.send(protocol.token.functions.transfer(owner, flex))


def on_chain_key(protocol: Protocol, device_id: int) -> DeviceSigningKey:
    device = protocol.device(device_id)
    return DeviceSigningKey(KeyType(device.key_type), device.key_x, device.key_y)


@pytest.mark.integration
def test_register_then_stream_a_day_of_verified_readings(
    node_env: Path,
    anvil: AnvilProcess,
    deployed_protocol: Protocol,
    oracle_server: Callable[[FakeOracle], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    save_deployment(deployed_protocol.deployment, get_settings().deployments_dir)
    assert invoke("init", "--devices", "5", "--p256", "2", "--password-env", "NODE_PW")[0] == 0
    owner = load_state(node_env).owner
    fund_owner(deployed_protocol, owner, 500 * FLEX)
    monkeypatch.setenv("GRIDFLEX_NODE_PASSWORD", PASSWORD)

    code, output = invoke("register", "--stake", "100", "--rpc-url", anvil.url)

    assert code == 0, output
    state = load_state(node_env)
    registry = deployed_protocol.registry
    assert (state.chain_id, state.registry) == (31337, registry.address)
    for device in state.devices:
        assert device.device_id is not None
        on_chain = deployed_protocol.device(device.device_id)
        assert (on_chain.owner, on_chain.capacity_w, on_chain.kind) == (
            owner, device.capacity_w, device.kind
        )  # fmt: skip
        assert on_chain.zone == zone_id(state.zone)
    assert deployed_protocol.staking.functions.accountOf(owner).call()[0] == 100 * FLEX

    oracle = FakeOracle()
    url = oracle_server(oracle)
    code, output = invoke(
        "stream", "--oracle", url, "--backfill-hours", "24", "--end", str(MONDAY + DAY), "--json"
    )
    assert code == 0, output
    summary = json.loads(output.strip().splitlines()[-1])
    assert summary["signedUnits"] == summary["ackedUnits"] == 5
    domain = meter_domain_separator(31337, registry.address)
    for device in state.devices:
        payload = oracle.stored[(device.device_id, 0)]
        unit = MeterUnit.from_json(payload)
        assert (unit.first_interval_start, len(unit.energy_wh)) == (MONDAY, 96)
        verify_unit(unit, domain, on_chain_key(deployed_protocol, device.device_id))

    code, output = invoke("stream", "--oracle", url, "--end", str(MONDAY + DAY), "--json")
    assert code == 0, output
    assert json.loads(output.strip().splitlines()[-1])["signedUnits"] == 0  # nothing re-signed


@pytest.mark.integration
def test_register_with_a_wrong_password_changes_nothing(
    node_env: Path, anvil: AnvilProcess, deployed_protocol: Protocol
) -> None:
    save_deployment(deployed_protocol.deployment, get_settings().deployments_dir)
    assert invoke("init", "--devices", "1", "--password-env", "NODE_PW")[0] == 0
    count_before = deployed_protocol.registry.functions.deviceCount().call()

    result = CliRunner().invoke(
        app, ["node", "register", "--rpc-url", anvil.url], input="not the password\n"
    )  # no --password-env and no GRIDFLEX_NODE_PASSWORD: prompts
    assert result.exit_code == 1
    assert "wrong password" in result.output
    assert deployed_protocol.registry.functions.deviceCount().call() == count_before
    assert load_state(node_env).devices[0].device_id is None


@pytest.mark.integration
def test_register_without_a_deployment_or_chain_is_readable(
    node_env: Path, anvil: AnvilProcess
) -> None:
    assert invoke("init", "--devices", "1", "--password-env", "NODE_PW")[0] == 0

    code, output = invoke("register", "--rpc-url", anvil.url, "--password-env", "NODE_PW")
    assert code == 1
    assert "no deployment for chain 31337" in output

    down = f"http://127.0.0.1:{free_port()}"
    code, output = invoke("register", "--rpc-url", down, "--password-env", "NODE_PW")
    assert code == 1
    assert f"no chain answers at {down}" in output


def test_stream_before_register_says_to_register(node_env: Path) -> None:
    assert invoke("init", "--devices", "1", "--password-env", "NODE_PW")[0] == 0
    code, output = invoke("stream", "--oracle", "http://127.0.0.1:1", "--password-env", "NODE_PW")
    assert code == 1
    assert "gridflex node register" in output


def test_strategy_sets_a_devices_floor_and_share_and_refuses_bad_values(node_env: Path) -> None:
    assert invoke("init", "--devices", "2", "--password-env", "NODE_PW")[0] == 0
    name = load_state(node_env).devices[1].name
    code, output = invoke(
        "strategy", name, "--min-price-per-kwh", "150000", "--max-share-pct", "60"
    )
    assert code == 0, output
    record = load_state(node_env).devices[1]
    assert (record.min_price_per_kwh, record.max_share_bps) == (150_000, 6_000)
    assert "60%" in output

    code, output = invoke("strategy", name, "--max-share-pct", "120")
    assert code == 1 and "at most 100" in output
    code, output = invoke("strategy", "no-such-device", "--min-price-per-kwh", "1")
    assert code == 1 and "no device named 'no-such-device'" in output
    assert load_state(node_env).devices[1].max_share_bps == 6_000  # refused changes nothing


def test_build_node_refuses_unregistered_devices_before_reaching_a_chain(node_env: Path) -> None:
    from node.builder import build_node
    from node.config import NodeSettings
    from node.errors import NotRegisteredError

    assert invoke("init", "--devices", "1", "--password-env", "NODE_PW")[0] == 0
    down = f"http://127.0.0.1:{free_port()}"  # reaching it would raise ChainUnavailableError
    with pytest.raises(NotRegisteredError, match="gridflex node register"):
        build_node(
            NodeSettings(data_dir=node_env), PASSWORD, rpc_url=down, oracle_urls=[down],
            deployments_dir=get_settings().deployments_dir, history_hours=1,
        )  # fmt: skip


@pytest.mark.integration
def test_build_node_wires_the_registered_devices_as_the_owner(
    node_env: Path, anvil: AnvilProcess, deployed_protocol: Protocol
) -> None:
    from node.builder import build_node
    from node.config import NodeSettings

    save_deployment(deployed_protocol.deployment, get_settings().deployments_dir)
    assert invoke("init", "--devices", "2", "--password-env", "NODE_PW")[0] == 0
    state = load_state(node_env)
    fund_owner(deployed_protocol, state.owner, 0)
    assert invoke("register", "--rpc-url", anvil.url, "--password-env", "NODE_PW")[0] == 0
    assert invoke("strategy", state.devices[1].name, "--max-share-pct", "50")[0] == 0
    state = load_state(node_env)

    runner = build_node(
        NodeSettings(data_dir=node_env), PASSWORD, rpc_url=anvil.url,
        oracle_urls=["http://127.0.0.1:9"], deployments_dir=get_settings().deployments_dir,
        history_hours=1,
    )  # fmt: skip
    try:
        assert runner.protocol.address == state.owner
        assert runner.protocol.deployment.chain_id == 31337
        assert [d.device_id for d in runner.devices] == [d.device_id for d in state.devices]
        assert [d.max_share_bps for d in runner.devices] == [10_000, 5_000]
        assert runner.zone == zone_id(state.zone)
        assert runner.outbox.oracles == ("http://127.0.0.1:9",)
        registered = max(runner.protocol.registered_at(d.device_id) for d in runner.devices)
        assert runner.first_start >= registered
        assert runner.claimable() == {}  # no bid won yet: nothing to withdraw anywhere
    finally:
        runner.close()
