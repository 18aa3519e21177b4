"""A real settled event for the browser tests, on the session anvil: a fresh deployment,
one committee oracle process (`gridflex oracle serve`, chain clock), two nodes
(`NodeRunner`, simulated devices) that bid automatically at different prices, dispatch,
sign and send readings as chain time moves interval by interval, the oracle's report on
chain, and settlement after the dispute window. Then `gridflex explorer` as a child
process, polled on `/health` as `make demo` does, until it has the oracle's records."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from eth_account import Account
from support.chain import fresh_protocol, funded_account, wait_for
from support.oracle_process import OracleServer, start_oracle
from web3 import Web3

from gridflex.chain.anvil import free_port, increase_time
from gridflex.chain.compiler import load_artifacts
from gridflex.chain.protocol import DeviceKind, Protocol, RequestSpec, RequestStatus, zone_id
from gridflex.eip712 import secp256k1_device_key
from node.devices.simulated import simulated_device
from node.dispatch import CommandedDevice
from node.runner import NodeDevice, NodeRunner

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
    account = funded_account(w3)
    protocol.send(protocol.token.functions.transfer(account.address, 1_000 * FLEX))
    owner = protocol.as_account(account)
    owner.stake(1_000 * FLEX)
    devices = []
    for seat, (kind, capacity) in enumerate(NODE_DEVICES[index]):
        key = bytes(Account.create().key)
        proof = secp256k1_device_key(key, account.address, w3.eth.chain_id, owner.registry.address)
        device_id = owner.register_device(kind, capacity, ZONE, proof)
        model = simulated_device(kind, capacity, seed=10 * index + seat)
        devices.append(NodeDevice(device_id, CommandedDevice(model), key))
    return NodeRunner(
        owner, devices, ZONE, workdir / f"node-{index}", rpc, [oracle],
        price_fraction_bps=6_000 + 2_000 * index,
    )  # fmt: skip


def _chain_time(w3: Web3) -> int:
    return int(w3.eth.get_block("latest")["timestamp"])


@contextmanager
def settled_event(w3: Web3, rpc_url: str, workdir: Path) -> Iterator[SettledEvent]:
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


@dataclass
class ExplorerServer:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@contextmanager
def explorer_process(
    rpc_url: str, deployments_dir: Path, data_dir: Path, oracles: list[str], timeout: float = 60
) -> Iterator[ExplorerServer]:
    """`gridflex explorer` as a child; ready once `/health` shows the index at the head."""
    port = free_port()
    log_path = data_dir / "explorer.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if "GRIDFLEX" not in k and k != "DATABASE_URL"}
    command = [
        sys.executable, "-m", "gridflex.cli.main", "explorer", "--rpc-url", rpc_url,
        "--deployments-dir", str(deployments_dir), "--data-dir", str(data_dir),
        "--port", str(port), "--poll-seconds", "0.5",
    ] + [arg for url in oracles for arg in ("--oracle", url)]  # fmt: skip
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            command, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = ExplorerServer(f"http://127.0.0.1:{port}", process, log_path)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"explorer exited {process.returncode}:\n{log_path.read_text()}")
            try:
                health = httpx.get(server.url + "/health", timeout=2).json()
                if (
                    health["indexed_block"] is not None
                    and health["indexed_block"] >= health["chain_head"]
                ):
                    break
            except (httpx.HTTPError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"explorer did not catch up:\n{log_path.read_text()}")
            time.sleep(0.2)
        yield server
    finally:
        server.stop()
