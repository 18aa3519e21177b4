"""A small market on anvil for the explorer tests: owners with registered devices and
stake, a grid operator with its own settlement token, and one request taken through bids,
clearing, a report signed by two oracles (hand-made roots) and settlement. Fast: no oracle
process, no node. Also the explorer over it (`explorer_context`, `IndexedMarket`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from support.chain import funded_account
from web3 import Web3

from explorer.db import create_explorer_engine, init_db
from explorer.deps import ExplorerContext
from explorer.settings import ExplorerSettings
from gridflex.chain.anvil import increase_time
from gridflex.chain.compiler import load_artifacts
from gridflex.chain.protocol import Protocol
from gridflex.rules.eip712 import ReportPayload, secp256k1_device_key, sign_report
from gridflex.rules.types import DeviceKind, RequestSpec, zone_id

POSTGRES_URL = "postgresql://postgres@127.0.0.1/test"
FLEX = 10**18
EUR = 10**18
ZONE = zone_id("NL-EXP-01")
DEVICES = ((DeviceKind.BATTERY, 20_000), (DeviceKind.EV_CHARGER, 30_000))
DEVICES_ROOT = b"\x01" * 32
READINGS_ROOT = b"\x02" * 32


@dataclass
class Market:
    w3: Web3
    governance: Protocol
    operator: Protocol
    token: str
    owners: list[Protocol]
    device_ids: list[int]
    oracles: list[LocalAccount]
    request_ids: list[int] = field(default_factory=list)


def build_market(w3: Web3, governance: Protocol) -> Market:
    """Two oracles (k = 2), one operator, one owner per device, all staked."""
    oracles = [funded_account(w3) for _ in range(2)]
    for account, threshold in zip(oracles, (1, 2), strict=True):
        governance.seat_oracle(account, threshold)
    operator = governance.as_account(funded_account(w3))
    governance.grant_grid_operator(operator.address)
    token = operator.client.deploy(load_artifacts()["FlexToken"], operator.address, 10**6 * EUR)
    owners, device_ids = [], []
    for kind, capacity_w in DEVICES:
        owner = governance.as_account(funded_account(w3))
        governance.send(governance.token.functions.transfer(owner.address, 1_000 * FLEX))
        owner.stake(1_000 * FLEX)
        key = secp256k1_device_key(
            Account.create().key, owner.address, w3.eth.chain_id, governance.registry.address
        )
        device_ids.append(owner.register_device(kind, capacity_w, ZONE, key))
        owners.append(owner)
    return Market(w3, governance, operator, token.address, owners, device_ids, oracles)


def settle_request(market: Market, delivered_fraction_pct: tuple[int, ...] = (100, 40)) -> int:
    """One request for 40 kW over an hour; owner 0 bids cheaper (all 20 kW awarded), owner 1
    gets the remaining 20 kW; each bid delivers the given percent; settled."""
    w3, governance = market.w3, market.governance
    now = int(w3.eth.get_block("latest")["timestamp"])
    start = now - now % 900 + 2 * 3600
    spec = RequestSpec(
        zone=ZONE, power_w=40_000, window_start=start, window_end=start + 3600,
        price_cap_per_kwh=EUR // 4, availability_price_per_kwh=EUR // 100,
        gate_closure=start - 1800, settlement_token=market.token,
    )  # fmt: skip
    request_id, _ = market.operator.create_request(spec)
    for index, (owner, device_id) in enumerate(zip(market.owners, market.device_ids, strict=True)):
        capacity_w = DEVICES[index][1]
        owner.bid(request_id, capacity_w, EUR // 10 + index * EUR // 20, [device_id])
    increase_time(w3, spec.gate_closure - int(w3.eth.get_block("latest")["timestamp"]))
    governance.clear(request_id)
    awarded = governance.awarded_w(request_id)
    increase_time(w3, spec.window_end - int(w3.eth.get_block("latest")["timestamp"]))
    delivered = [w * pct // 100 for w, pct in zip(awarded, delivered_fraction_pct, strict=True)]
    payload = ReportPayload(
        governance.market.address, request_id, 0, delivered, DEVICES_ROOT, READINGS_ROOT
    )
    signatures = sign_report(
        payload, w3.eth.chain_id, governance.committee.address, [a.key for a in market.oracles]
    )
    governance.submit_report(request_id, delivered, DEVICES_ROOT, READINGS_ROOT, signatures)
    increase_time(w3, int(governance.market.functions.disputeWindow().call()) + 1)
    governance.finalize(request_id)
    market.request_ids.append(request_id)
    return request_id


def after_revert(market: Market) -> Market:
    """The same actors with fresh handles: a reverted chain forgot the nonces that the old
    handles counted locally."""

    def fresh(handle: Protocol) -> Protocol:
        return market.governance.as_account(handle.client.account)

    return Market(
        market.w3, fresh(market.governance), fresh(market.operator), market.token,
        [fresh(o) for o in market.owners], market.device_ids, market.oracles,
        list(market.request_ids),
    )  # fmt: skip


@dataclass
class IndexedMarket:
    market: Market
    context: ExplorerContext
    client: TestClient


def explorer_context(w3: Web3, market: Market, database_url: str) -> ExplorerContext:
    settings = ExplorerSettings(rpc_url=w3.provider.endpoint_uri, database_url=database_url)  # type: ignore[attr-defined]
    engine = create_explorer_engine(settings.resolved_database_url)
    init_db(engine)
    return ExplorerContext(settings, engine, w3, market.governance.deployment)
