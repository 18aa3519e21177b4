"""The node's Prometheus metrics follow what the runner does: units signed, pending per
oracle while an oracle is down, send failures, acknowledgements, bids placed; and they
are served over HTTP for a scraper."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from node_support import FakeOracle
from prometheus_client.parser import text_string_to_metric_families
from support.chain import advance_to_time_of_day, funded_account, staked_owner
from web3 import Web3

from gridflex.chain.anvil import AnvilProcess, free_port, increase_time
from gridflex.chain.compiler import load_artifacts
from gridflex.chain.protocol import Protocol
from gridflex.rules.eip712 import secp256k1_device_key
from gridflex.rules.types import DeviceKind, RequestSpec, zone_id
from node.devices.simulated import simulated_device
from node.dispatch import CommandedDevice
from node.metrics import NodeMetrics
from node.runner import NodeDevice, NodeRunner

pytestmark = pytest.mark.integration

FLEX = 10**18
ZONE = zone_id("NL-METRICS-01")


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, labels): value} of a Prometheus text page."""
    samples = {}
    for family in text_string_to_metric_families(httpx.get(url).text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_node_metrics_count_signing_sending_and_bidding_and_are_served(
    deployed_protocol: Protocol,
    w3: Web3,
    anvil: AnvilProcess,
    node_dir: Path,
    oracle_server: Callable[[FakeOracle], str],
) -> None:
    advance_to_time_of_day(w3, 8 * 3600)  # the window at 14:00, when the battery can offer
    owner = staked_owner(deployed_protocol, 500 * FLEX)
    key = bytes(Account.create().key)
    proof = secp256k1_device_key(key, owner.address, 31337, owner.registry.address)
    device_id = owner.register_device(DeviceKind.BATTERY, 5_000, ZONE, proof)
    device = NodeDevice(
        device_id, CommandedDevice(simulated_device(DeviceKind.BATTERY, 5_000, 1)), key
    )
    increase_time(w3, 2 * 3600)  # the node's history (an hour back) after the registration

    operator = deployed_protocol.as_account(funded_account(w3))
    deployed_protocol.grant_grid_operator(operator.address)
    token = operator.client.deploy(load_artifacts()["FlexToken"], operator.address, 10**24)
    now = int(w3.eth.get_block("latest")["timestamp"])
    start = now - now % 900 + 4 * 3600
    spec = RequestSpec(
        zone=ZONE, power_w=5_000, window_start=start, window_end=start + 3600,
        price_cap_per_kwh=FLEX // 4, gate_closure=start - 1800, settlement_token=token.address,
    )  # fmt: skip
    operator.create_request(spec)

    oracle = FakeOracle(fail_next=1)
    oracle_url = oracle_server(oracle)
    runner = NodeRunner(owner, [device], ZONE, node_dir, anvil.url, [oracle_url])
    metrics = NodeMetrics()
    port = free_port()
    metrics.serve(port)
    metrics_url = f"http://127.0.0.1:{port}/metrics"
    try:
        metrics.observe_tick(runner, runner.tick())  # the oracle answers 503 once
        first = scrape(metrics_url)
        signed = first[("gridflex_node_units_signed_total", ())]
        assert signed >= 1
        assert first[("gridflex_node_pending_units", (("oracle", oracle_url),))] == signed
        assert first[("gridflex_node_send_failures_total", ())] == 1
        assert first[("gridflex_node_units_acked_total", ())] == 0
        assert first[("gridflex_node_bids_placed_total", ())] == 1

        runner.drain()
        metrics.observe_tick(runner, runner.tick())
        second = scrape(metrics_url)
        assert second[("gridflex_node_pending_units", (("oracle", oracle_url),))] == 0
        acked = second[("gridflex_node_units_acked_total", ())]
        assert acked == second[("gridflex_node_units_signed_total", ())] >= signed
        assert second[("gridflex_node_send_failures_total", ())] == 1
        assert second[("gridflex_node_bids_placed_total", ())] == 1  # not bid twice
        assert len(oracle.stored) == acked
    finally:
        runner.close()
