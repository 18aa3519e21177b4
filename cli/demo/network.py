"""The demo's network on one machine: an embedded Osaka anvil with GridFlex deployed, an
oracle committee (each oracle its own `gridflex oracle serve` process and SQLite file), device
owners' nodes (`gridflex node run` processes, several devices each), and at the end the
explorer (`gridflex explorer`). Everything is a real part talking over HTTP/JSON-RPC;
only time is compressed (anvil's clock is moved, and every service runs on chain time).

`DemoNetwork` owns every process it starts: `close()` (also on Ctrl-C, SIGTERM or an
error) stops them all, in reverse order, and reaps them.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from eth_account import Account
from eth_account.signers.local import LocalAccount

from cli.demo.processes import (
    ChildProcess,
    explorer_at_head,
    gridflex_command,
    spawn,
    spawn_explorer,
)
from gridflex.chain.anvil import (
    AnvilProcess,
    anvil_dev_account,
    free_port,
    increase_time,
    set_balance,
)
from gridflex.chain.client import ChainClient
from gridflex.chain.compiler import load_artifacts
from gridflex.chain.deploy import ProtocolParams, deploy_protocol
from gridflex.chain.deployments import save_deployment
from gridflex.chain.protocol import Protocol
from gridflex.rules.eip712 import secp256k1_device_key
from gridflex.rules.types import DeviceKind, zone_id
from node.keystore import create_node_keys, load_node
from node.registration import register_devices
from node.state import save_state

FLEX = 10**18
ZONE_NAME = "NL-AMS-01"
NODE_PASSWORD = "gridflex demo node"  # demo keystores only: a real owner is prompted
DEMO_SCRYPT_N = 2**10  # demo keystores only: fast to open, not to brute-force
NODE_STAKE = 20_000 * FLEX  # covers the bond (10 FLEX per kW) of every device offered
NODE_POLL_SECONDS = 0.4
REPORT_DELAY_SECONDS = 60
INTERVAL_SECONDS = 900  # the nodes' metering interval (`node run` default)
STORY_START_UTC = 15 * 3600  # requests for the evening peak (17:00) and the night (20:00)
DEVICES_PER_NODE = 10
MAX_NODES = 5
# Bids ask this share of the price cap, one level per node: a visible merit order.
NODE_PRICE_FRACTIONS_BPS = (5_000, 6_000, 7_000, 8_000, 9_000)
NODE_KINDS = (  # each owner a different mix: households, a fleet depot, a factory...
    (DeviceKind.BATTERY, DeviceKind.HEAT_PUMP, DeviceKind.EV_CHARGER, DeviceKind.HVAC),
    (DeviceKind.EV_CHARGER, DeviceKind.BATTERY, DeviceKind.PV_INVERTER),
    (DeviceKind.HVAC, DeviceKind.HEAT_PUMP, DeviceKind.BATTERY, DeviceKind.INDUSTRIAL_LOAD),
    (DeviceKind.BATTERY, DeviceKind.EV_CHARGER, DeviceKind.HEAT_PUMP),
    (DeviceKind.HEAT_PUMP, DeviceKind.HVAC, DeviceKind.BATTERY, DeviceKind.EV_CHARGER),
)


@dataclass
class Oracle:
    account: LocalAccount
    url: str
    data_dir: Path
    process: ChildProcess | None = None

    @property
    def database(self) -> Path:
        return self.data_dir / "oracle.db"


@dataclass
class Node:
    """One device owner's node."""

    index: int
    data_dir: Path
    owner: Protocol
    device_ids: list[int]
    capacities_w: dict[int, int]
    kinds: dict[int, DeviceKind]
    price_fraction_bps: int
    process: ChildProcess | None = None

    @property
    def address(self) -> str:
        return self.owner.address

    def env(self, network: DemoNetwork) -> dict[str, str]:
        return {
            "GRIDFLEX_NODE_DATA_DIR": str(self.data_dir),
            "GRIDFLEX_NODE_PASSWORD": NODE_PASSWORD,
            "GRIDFLEX_NODE_RPC_URL": network.rpc_url,
            "GRIDFLEX_NODE_ORACLE_URLS": json.dumps(network.oracle_urls),
            "GRIDFLEX_NODE_BID_PRICE_FRACTION_BPS": str(self.price_fraction_bps),
            "GRIDFLEX_DEPLOYMENTS_DIR": str(network.deployments_dir),
            "GRIDFLEX_RPC_URL": network.rpc_url,
        }


def node_sizes(devices: int) -> list[int]:
    """Devices per node: about ten each, two to five nodes, as even as possible."""
    count = min(MAX_NODES, max(2, math.ceil(devices / DEVICES_PER_NODE)))
    count = min(count, devices)
    return [devices // count + (1 if i < devices % count else 0) for i in range(count)]


@dataclass
class DemoNetwork:
    workdir: Path
    seed: int = 0
    anvil: AnvilProcess = field(default_factory=AnvilProcess)
    governance: Protocol | None = None
    oracles: list[Oracle] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    explorer: ChildProcess | None = None
    withdrawn: int = 0
    """FLEX withdrawn from the market after settlement (pull payments: nothing is pushed)."""
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    # ─── Lifecycle ────────────────────────────────────────────────────────────────────

    def __enter__(self) -> DemoNetwork:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stops everything started, newest first (explorer, nodes, oracles, anvil)."""
        self._stack.close()

    @property
    def rpc_url(self) -> str:
        return self.anvil.url

    @property
    def deployments_dir(self) -> Path:
        return self.workdir / "deployments"

    @property
    def oracle_urls(self) -> list[str]:
        return [o.url for o in self.oracles]

    @property
    def protocol(self) -> Protocol:
        assert self.governance is not None, "deploy() first"
        return self.governance

    def chain_time(self) -> int:
        return self.protocol.latest_block_timestamp()

    def fund(self, address: str, flex: int = 0) -> None:
        """Gas money (anvil) and FLEX from governance."""
        set_balance(self.protocol.client.w3, address, 100 * 10**18)
        if flex:
            self.protocol.transfer(self.protocol.token.address, address, flex)

    # ─── Chain ────────────────────────────────────────────────────────────────────────

    def deploy(self) -> Protocol:
        self.anvil.start()
        self._stack.callback(self.anvil.stop)
        artifacts = load_artifacts()
        client = ChainClient.from_url(self.anvil.url, anvil_dev_account(0).key.hex(), artifacts)
        self.governance = Protocol(
            client, deploy_protocol(client, ProtocolParams.local(), artifacts)
        )
        save_deployment(self.governance.deployment, self.deployments_dir)
        # The devices follow the time of day: start every run at the same hour (the next
        # STORY_START_UTC of chain time), so --seed S tells the same story whenever it runs.
        now = self.chain_time()
        increase_time(client.w3, (STORY_START_UTC - now) % 86_400)
        return self.governance

    # ─── Oracles ──────────────────────────────────────────────────────────────────────

    def add_oracles(self, count: int) -> list[Oracle]:
        """Accounts, ports and data dirs of `count` more oracles (not seated, not started)."""
        added = [
            Oracle(
                Account.create(),
                f"http://127.0.0.1:{free_port()}",
                self.workdir / f"oracle-{len(self.oracles) + i}",
            )
            for i in range(count)
        ]
        self.oracles.extend(added)
        return added

    def seat(self, oracle: Oracle, threshold: int) -> None:
        self.fund(oracle.account.address)
        self.protocol.seat_oracle(oracle.account, threshold)

    def start_oracles(self, oracles: list[Oracle], *, watchers: bool = True) -> None:
        """Spawns them all, then waits for each (they boot in parallel)."""
        for oracle in oracles:
            self._spawn_oracle(oracle, watcher=watchers)
        for oracle in oracles:
            assert oracle.process is not None
            oracle.process.wait_http("/metrics", timeout=60)

    def _spawn_oracle(self, oracle: Oracle, *, watcher: bool) -> None:
        index = self.oracles.index(oracle)
        env = {
            "GRIDFLEX_ORACLE_RPC_URL": self.rpc_url,
            "GRIDFLEX_ORACLE_DEPLOYMENTS_DIR": str(self.deployments_dir),
            "GRIDFLEX_ORACLE_DATA_DIR": str(oracle.data_dir),
            "GRIDFLEX_ORACLE_SIGNER_KEY": oracle.account.key.hex(),
            "GRIDFLEX_ORACLE_PEERS": ",".join(u for u in self.oracle_urls if u != oracle.url),
            "GRIDFLEX_ORACLE_CLOCK": "chain",
            "GRIDFLEX_ORACLE_COMMITTEE_POLL_SECONDS": "0.3",
            "GRIDFLEX_ORACLE_REPORT_DELAY_SECONDS": str(REPORT_DELAY_SECONDS),
            "GRIDFLEX_ORACLE_REMEASURE_SECONDS": "1",
            "GRIDFLEX_ORACLE_WATCHER_ENABLED": "true" if watcher else "false",
            "GRIDFLEX_LOG_LEVEL": "INFO",
        }
        port = oracle.url.rsplit(":", 1)[1]
        oracle.process = spawn(
            f"oracle {index}",
            gridflex_command("oracle", "serve", "--port", port),
            log_path=self.workdir / "logs" / f"oracle-{index}.log",
            env=env,
            cwd=self.workdir,
            url=oracle.url,
        )
        self._stack.callback(oracle.process.stop)

    # ─── Nodes ────────────────────────────────────────────────────────────────────────

    def create_node(self, index: int, devices: int) -> Node:
        """Keys (`node init`), funding, on-chain registration and stake (`node register`)
        of one owner's node, in process."""
        data_dir = self.workdir / f"node-{index}"
        kinds = NODE_KINDS[index % len(NODE_KINDS)]
        create_node_keys(
            data_dir, NODE_PASSWORD, devices=devices, p256=1 if devices > 1 else 0,
            zone=ZONE_NAME, kinds=kinds, scrypt_n=DEMO_SCRYPT_N,
        )  # fmt: skip
        state, owner_account, keys = load_node(data_dir, NODE_PASSWORD)
        for position, device in enumerate(state.devices):  # --seed S: reproducible physics
            device.seed = (self.seed * 1_000_003 + index * 1_000 + position) % 2**32
        save_state(state, data_dir)
        self.fund(owner_account.address, NODE_STAKE)
        owner = self.protocol.as_account(owner_account)
        register_devices(owner, state, keys, data_dir)
        owner.stake(NODE_STAKE)
        ids = [int(d.device_id) for d in state.devices if d.device_id is not None]
        return Node(
            index, data_dir, owner, ids,
            {int(d.device_id): d.capacity_w for d in state.devices if d.device_id is not None},
            {int(d.device_id): d.kind for d in state.devices if d.device_id is not None},
            NODE_PRICE_FRACTIONS_BPS[index % len(NODE_PRICE_FRACTIONS_BPS)],
        )  # fmt: skip

    def create_street_node(
        self, index: int, households: list[Protocol], kinds: tuple[DeviceKind, ...]
    ) -> Node:
        """A node that meters and dispatches many households' devices, one each: every
        device registered by its own household's account (so the household is paid), its
        signing key in the street node's keystore (an installer-provisioned meter). The
        node's own account only reads the chain and never bids (its devices are pooled)."""
        data_dir = self.workdir / f"node-{index}"
        create_node_keys(
            data_dir, NODE_PASSWORD, devices=len(households), p256=0,
            zone=ZONE_NAME, kinds=kinds, scrypt_n=DEMO_SCRYPT_N,
        )  # fmt: skip
        state, owner_account, keys = load_node(data_dir, NODE_PASSWORD)
        chain_id, registry = self.protocol.client.chain_id, self.protocol.registry.address
        for position, (device, household) in enumerate(zip(state.devices, households, strict=True)):
            device.seed = (self.seed * 1_000_003 + index * 1_000 + position) % 2**32
            key = keys[device.name]
            assert isinstance(key, bytes)  # secp256k1 (p256=0)
            proof = secp256k1_device_key(key, household.address, chain_id, registry)
            device.device_id = household.register_device(
                device.kind, device.capacity_w, zone_id(ZONE_NAME), proof
            )
        state.chain_id, state.registry = chain_id, registry
        save_state(state, data_dir)
        self.fund(owner_account.address)
        ids = [int(d.device_id) for d in state.devices if d.device_id is not None]
        return Node(
            index, data_dir, self.protocol.as_account(owner_account), ids,
            {int(d.device_id): d.capacity_w for d in state.devices if d.device_id is not None},
            {int(d.device_id): d.kind for d in state.devices if d.device_id is not None},
            NODE_PRICE_FRACTIONS_BPS[index % len(NODE_PRICE_FRACTIONS_BPS)],
        )  # fmt: skip

    def start_node(self, node: Node, history_hours: float) -> None:
        argv = gridflex_command(
            "node", "run", "--poll-seconds", str(NODE_POLL_SECONDS),
            "--history-hours", str(history_hours),
        )  # fmt: skip
        node.process = spawn(
            f"node {node.index}",
            argv,
            log_path=self.workdir / "logs" / f"node-{node.index}.log",
            env=node.env(self),
            cwd=self.workdir,
        )
        self._stack.callback(node.process.stop)

    def pass_history(self, history_hours: float) -> int:
        """Moves chain time past `history_hours` after the registrations, in whole days
        (the story keeps its time of day), so the history a node backfills (`node run
        --history-hours`, counted back from chain time) starts after its devices were
        registered: oracles refuse readings from before (no dispute could judge them,
        `deviceAt` reverts there). Returns the new chain time."""
        needed = int(history_hours * 3600) + INTERVAL_SECONDS
        return increase_time(self.protocol.client.w3, -(-needed // 86_400) * 86_400)

    def check_alive(self) -> None:
        """Fails with the log tail of any child that died."""
        for child in self.children():
            if not child.alive:
                raise RuntimeError(
                    f"{child.name} exited with {child.process.returncode}; its log "
                    f"({child.log_path}) ends:\n{child.log()[-3000:]}"
                )

    def children(self) -> Iterator[ChildProcess]:
        for part in [*self.oracles, *self.nodes]:
            if part.process is not None:
                yield part.process
        if self.explorer is not None:
            yield self.explorer

    # ─── Explorer ─────────────────────────────────────────────────────────────────────

    def start_explorer(self, port: int) -> str:
        """`gridflex explorer` on this chain and the first oracles; returns its URL once its
        index is at the chain head."""
        self.explorer = spawn_explorer(
            rpc_url=self.rpc_url, deployments_dir=self.deployments_dir,
            data_dir=self.workdir / "explorer", oracles=self.oracle_urls[:3], port=port,
            poll_seconds=1.0,
        )  # fmt: skip
        self._stack.callback(self.explorer.stop)
        url = self.explorer.url or ""
        self.explorer.wait_for(lambda: explorer_at_head(url), "index at the chain head", 120)
        return url

    # ─── Readings at the oracles ──────────────────────────────────────────────────────

    def readings_missing(self, interval_start: int) -> int:
        """How many (oracle, device) pairs lack the reading of `interval_start`."""
        devices = [d for node in self.nodes for d in node.device_ids]
        running = [o for o in self.oracles if o.process is not None]

        def missing_at(oracle: Oracle) -> int:
            with httpx.Client(base_url=oracle.url, timeout=10) as http:
                return sum(
                    1
                    for device_id in devices
                    if not http.get(
                        f"/v1/devices/{device_id}/readings",
                        params={"start": interval_start, "end": interval_start + 1},
                    ).json()["readings"]
                )

        with ThreadPoolExecutor(max_workers=len(running) or 1) as pool:
            return sum(pool.map(missing_at, running))


def wait_until(
    condition: Callable[[], bool],
    what: str,
    network: DemoNetwork,
    *,
    timeout: float = 120.0,
    poll: float = 0.2,
) -> None:
    """Polls `condition`; fails naming `what` (and any child that died meanwhile)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        network.check_alive()
        time.sleep(poll)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
