"""What the fault tests share: a fleet of registered simulated devices on a deployment of
the test's own (the node side signs with their keys), a flexibility event taken to the end
of its window with the devices' signed readings, and a JSON-RPC proxy that cuts the chain
away from an oracle at the worst moment."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
from eth_account import Account
from support.chain import fresh_protocol, funded_account, staked_owner, wait_for
from web3 import Web3

from gridflex.chain.anvil import increase_time
from gridflex.chain.protocol import Protocol
from gridflex.rules.attestation import MeterUnit, meter_domain_separator, sign_unit
from gridflex.rules.eip712 import secp256k1_device_key
from gridflex.rules.types import DeviceKind, RequestSpec, RequestStatus, zone_id
from node.devices.simulated import simulated_device
from node.meter_loop import MeteredDevice

FLEX = 10**18
ZONE = zone_id("NL-FAULTS-01")
DEVICE_KINDS_W = ((DeviceKind.BATTERY, 10_000), (DeviceKind.HEAT_PUMP, 6_000))


@dataclass
class Fleet:
    """A deployment of the test's own, one staked owner and its registered devices."""

    governance: Protocol
    owner: Protocol
    devices: list[MeteredDevice]
    capacities_w: dict[int, int]
    domain: bytes
    deployments_dir: Path


def deploy_fleet(w3: Web3, deployments_dir: Path) -> Fleet:
    governance = fresh_protocol(w3, deployments_dir)
    owner = staked_owner(governance, 1_000 * FLEX)
    chain_id, registry = owner.client.chain_id, owner.registry.address
    devices, capacities = [], {}
    for seed, (kind, capacity_w) in enumerate(DEVICE_KINDS_W):
        key = bytes(Account.create().key)
        proof = secp256k1_device_key(key, owner.address, chain_id, registry)
        device_id = owner.register_device(kind, capacity_w, ZONE, proof)
        devices.append(MeteredDevice(device_id, simulated_device(kind, capacity_w, seed), key))
        capacities[device_id] = capacity_w
    domain = meter_domain_separator(chain_id, registry)
    return Fleet(governance, owner, devices, capacities, domain, deployments_dir)


# ─── A flexibility event ───────────────────────────────────────────────────────────────

INTERVAL = 900
EVENT_INTERVALS = 2
PRICE_PER_KWH = FLEX // 10


@dataclass(frozen=True)
class EndedEvent:
    """A cleared request whose window has ended, with each device's signed readings:
    the interval before the window at 80% of capacity, then 90% of capacity less in the
    window (a device exports what it stopped drawing and more)."""

    request_id: int
    escrow: int
    operator: Protocol
    units: list[MeterUnit]
    delivered_wh: int
    """What the one bid delivered (MBMA: baseline minus metered, under every cap)."""
    duration_seconds: int = EVENT_INTERVALS * INTERVAL

    def units_json(self) -> dict[str, list[dict[str, object]]]:
        return {"units": [unit.to_json() for unit in self.units]}


def end_an_event(fleet: Fleet, w3: Web3) -> EndedEvent:
    """Request (the fleet's whole capacity, paid in FLEX), one bid of all devices, clearing
    at gate closure, chain time moved just past the window end."""
    governance, owner = fleet.governance, fleet.owner
    operator = governance.as_account(funded_account(w3))
    governance.grant_grid_operator(operator.address)
    governance.send(governance.token.functions.transfer(operator.address, 1_000 * FLEX))
    now = int(w3.eth.get_block("latest")["timestamp"])
    start = now - now % INTERVAL + 2 * 3600
    end = start + EVENT_INTERVALS * INTERVAL
    power_w = sum(fleet.capacities_w.values())
    spec = RequestSpec(
        zone=ZONE, power_w=power_w, window_start=start, window_end=end,
        price_cap_per_kwh=FLEX // 4, gate_closure=start - 3600,
        settlement_token=governance.token.address,
    )  # fmt: skip
    request_id, escrow = operator.create_request(spec)
    owner.bid(request_id, power_w, PRICE_PER_KWH, list(fleet.capacities_w))
    increase_time(w3, spec.gate_closure - int(w3.eth.get_block("latest")["timestamp"]))
    governance.clear(request_id)
    increase_time(w3, end + 1 - int(w3.eth.get_block("latest")["timestamp"]))
    units, delivered_wh = [], 0
    for device in fleet.devices:
        full_wh = fleet.capacities_w[device.device_id] * INTERVAL // 3600
        baseline_wh = full_wh * 8 // 10
        reduction_wh = full_wh * 9 // 10
        energy = (baseline_wh,) + (baseline_wh - reduction_wh,) * EVENT_INTERVALS
        unit = MeterUnit(device.device_id, start - INTERVAL, INTERVAL, 0, energy)
        units.append(sign_unit(unit, fleet.domain, device.signing_key))
        delivered_wh += reduction_wh * EVENT_INTERVALS
    return EndedEvent(request_id, escrow, operator, units, delivered_wh)


def wait_for_status(protocol: Protocol, request_id: int, status: RequestStatus, what: str) -> None:
    wait_for(lambda: protocol.request(request_id).status == status, what)


def settle_after_dispute_window(protocol: Protocol, w3: Web3, request_id: int) -> None:
    """Move chain time past the dispute window; wait for an oracle to finalize."""
    increase_time(w3, int(protocol.market.functions.disputeWindow().call()) + 1)
    wait_for_status(protocol, request_id, RequestStatus.SETTLED, "finalize by an oracle")


def reports_submitted(protocol: Protocol, request_id: int) -> list[dict[str, object]]:
    """Every ReportSubmitted log of the request since the deployment."""
    return list(
        protocol.market.events.ReportSubmitted().get_logs(
            from_block=protocol.deployment.deployed_at_block,
            argument_filters={"requestId": request_id},
        )
    )


# ─── A JSON-RPC proxy that fails on cue ────────────────────────────────────────────────


@dataclass
class RpcProxy:
    """Forwards JSON-RPC to `upstream` until cut. Cut: every request is dropped without an
    answer (the client sees the connection close, as with a crashed or unreachable node).

    `cut_at_send` arms a cut at the next `eth_sendRawTransaction`: with `deliver=True` the
    transaction reaches the chain first and only the answer is lost (the case that tempts
    a naive client to post twice); with `deliver=False` it never arrives."""

    upstream: str
    cut: threading.Event = field(default_factory=threading.Event)
    dropped: int = 0
    sent_transactions: int = 0
    _armed: bool | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._http = httpx.Client(timeout=30)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if proxy.forward(body, self):
                    return
                self.close_connection = True  # no answer at all

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def cut_at_send(self, *, deliver: bool) -> None:
        self._armed = deliver

    def restore(self) -> None:
        self.cut.clear()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._http.close()

    def forward(self, body: bytes, handler: BaseHTTPRequestHandler) -> bool:
        """True when answered; False when the request is dropped."""
        with self._lock:
            sends = _is_send(body)
            if self.cut.is_set() or (sends and self._armed is False):
                self._drop_locked()
                return False
            if sends and self._armed:
                self._http.post(self.upstream, content=body, headers=_JSON)
                self.sent_transactions += 1
                self._drop_locked()
                return False
        answer = self._http.post(self.upstream, content=body, headers=_JSON)
        if sends:
            with self._lock:
                self.sent_transactions += 1
        handler.send_response(answer.status_code)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(answer.content)))
        handler.end_headers()
        handler.wfile.write(answer.content)
        return True

    def _drop_locked(self) -> None:
        self._armed = None
        self.cut.set()
        self.dropped += 1


_JSON = {"content-type": "application/json"}


def _is_send(body: bytes) -> bool:
    try:
        payload = json.loads(body)
    except ValueError:
        return False
    calls = payload if isinstance(payload, list) else [payload]
    return any(
        isinstance(call, dict) and call.get("method") == "eth_sendRawTransaction" for call in calls
    )
