"""A real settled event for the browser tests, on the session anvil: a fresh deployment,
one committee oracle process (`gridflex oracle serve`, chain clock), two nodes
(`NodeRunner`, simulated devices) that bid automatically at different prices, dispatch,
sign and send readings as chain time moves interval by interval, the oracle's report on
chain, and settlement after the dispute window."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from support.chain import advance_to_time_of_day, fresh_protocol, funded_account, wait_for
from support.nodes import staked_owner
from support.oracle_process import OracleServer, start_oracle
from web3 import Web3

from gridflex.chain.anvil import increase_time
from gridflex.chain.compiler import load_artifacts
from gridflex.chain.protocol import Protocol
from gridflex.rules.types import DeviceKind, RequestSpec, RequestStatus, zone_id
from node.runner import NodeRunner

FLEX = 10**18
EUR = 10**18
ZONE = zone_id("NL-EXPLORER-01")
INTERVAL = 900
REPORT_DELAY_S = 60
NODE_DEVICES = (
    ((DeviceKind.BATTERY, 5_000), (DeviceKind.INDUSTRIAL_LOAD, 8_000)),
    ((DeviceKind.INDUSTRIAL_LOAD, 10_000),),
)


@dataclass
class SettledEvent:
    protocol: Protocol
    request_id: int
    token: str
    operator: str
    owners: list[str]
    device_ids: list[int]
    oracle: OracleServer
    deployments_dir: Path


def _node(
    w3: Web3, protocol: Protocol, index: int, workdir: Path, rpc: str, oracle: str
) -> NodeRunner:
    owner, devices = staked_owner(w3, protocol, ZONE, NODE_DEVICES[index], seed=10 * index)
    return NodeRunner(
        owner, devices, ZONE, workdir / f"node-{index}", rpc, [oracle],
        price_fraction_bps=6_000 + 2_000 * index,
    )  # fmt: skip


def _chain_time(w3: Web3) -> int:
    return int(w3.eth.get_block("latest")["timestamp"])


@contextmanager
def settled_event(w3: Web3, rpc_url: str, workdir: Path) -> Iterator[SettledEvent]:
    advance_to_time_of_day(w3, 10 * 3600)  # the window at 12:00: every device can offer
    deployments_dir = workdir / "deployments"
    protocol = fresh_protocol(w3, deployments_dir)
    oracle_account = funded_account(w3)
    protocol.seat_oracle(oracle_account, 1)
    oracle = start_oracle(workdir, {
        "GRIDFLEX_ORACLE_RPC_URL": rpc_url,
        "GRIDFLEX_ORACLE_DEPLOYMENTS_DIR": str(deployments_dir),
        "GRIDFLEX_ORACLE_DATA_DIR": str(workdir / "oracle"),
        "GRIDFLEX_ORACLE_SIGNER_KEY": oracle_account.key.hex(),
        "GRIDFLEX_ORACLE_CLOCK": "chain",
        "GRIDFLEX_ORACLE_COMMITTEE_POLL_SECONDS": "0.3",
        "GRIDFLEX_ORACLE_REPORT_DELAY_SECONDS": str(REPORT_DELAY_S),
    })  # fmt: skip
    runners: list[NodeRunner] = []
    try:
        operator = protocol.as_account(funded_account(w3))
        protocol.grant_grid_operator(operator.address)
        token = operator.client.deploy(load_artifacts()["FlexToken"], operator.address, 10**6 * EUR)
        runners = [_node(w3, protocol, i, workdir, rpc_url, oracle.url) for i in range(2)]
        for runner in runners:
            runner.tick()
        now = _chain_time(w3)
        start = now - now % INTERVAL + 2 * 3600
        spec = RequestSpec(
            zone=ZONE, power_w=15_000, window_start=start, window_end=start + 3600,
            price_cap_per_kwh=EUR // 4, availability_price_per_kwh=EUR // 100,
            gate_closure=start - 1800, settlement_token=token.address,
        )  # fmt: skip
        request_id, _ = operator.create_request(spec)
        for runner in runners:
            runner.tick()
        increase_time(w3, spec.gate_closure - _chain_time(w3))
        operator.clear(request_id)
        boundary = spec.gate_closure
        while boundary < spec.window_end + INTERVAL:
            boundary += INTERVAL
            increase_time(w3, boundary + 1 - _chain_time(w3))
            for runner in runners:
                runner.tick()
        for runner in runners:
            runner.drain(timeout_s=60)
        increase_time(w3, REPORT_DELAY_S + 1)
        wait_for(lambda: protocol.request(request_id).status == RequestStatus.REPORTED,
                 "the oracle's report", timeout=90)  # fmt: skip
        increase_time(w3, int(protocol.market.functions.disputeWindow().call()) + 1)
        wait_for(lambda: protocol.request(request_id).status == RequestStatus.SETTLED,
                 "settlement", timeout=90)  # fmt: skip
        yield SettledEvent(
            protocol, request_id, token.address, operator.address,
            [r.protocol.address for r in runners],
            [d.device_id for r in runners for d in r.devices], oracle, deployments_dir,
        )  # fmt: skip
    finally:
        for runner in runners:
            runner.close()
        oracle.stop()
