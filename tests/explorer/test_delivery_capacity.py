"""Per-interval delivery on the explorer follows the report: each device is capped by its
capacity when the bid was placed (the registry's history at `placedAt`, what the oracle
and `DeliveryDispute` read), not by today's. Main before issue 13 used today's capacity,
so a device updated after its bid showed curves that did not sum to its record."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from eth_account import Account
from explorer_market import ZONE, build_market, explorer_context
from sqlmodel import Session, col, select
from support.chain import fresh_protocol
from web3 import Web3

from explorer.indexer import Indexer
from explorer.models import DeviceResult, EventInterval
from explorer.records import RecordFetcher
from gridflex.chain.anvil import increase_time
from gridflex.chain.facts import read_request_facts
from gridflex.rules.eip712 import ReportPayload, secp256k1_device_key, sign_report
from gridflex.rules.measurement import measure_device
from gridflex.rules.reports import build_report_trees, used_readings_leaf
from gridflex.rules.types import DeviceKind, RequestSpec

pytestmark = pytest.mark.integration

EUR = 10**18
ORACLE = "http://oracle.test"


def _chain_time(w3: Web3) -> int:
    return int(w3.eth.get_block("latest")["timestamp"])


def test_curves_use_the_capacity_at_bid_time_and_sum_to_the_record(
    w3: Web3, tmp_path: Path
) -> None:
    market = build_market(w3, fresh_protocol(w3, tmp_path / "deployments"))
    governance, owner = market.governance, market.owners[0]
    battery = market.device_ids[0]  # 20 kW
    key = secp256k1_device_key(
        Account.create().key, owner.address, w3.eth.chain_id, governance.registry.address
    )
    heat_pump = owner.register_device(DeviceKind.HEAT_PUMP, 10_000, ZONE, key)
    now = _chain_time(w3)
    start = now - now % 900 + 2 * 3600
    spec = RequestSpec(
        zone=ZONE, power_w=30_000, window_start=start, window_end=start + 3600,
        price_cap_per_kwh=EUR // 4, gate_closure=start - 1800, settlement_token=market.token,
    )  # fmt: skip
    request_id, _ = market.operator.create_request(spec)
    owner.bid(request_id, 30_000, EUR // 10, [battery, heat_pump])
    increase_time(w3, 60)
    # After the bid: the battery's share of the 30 kW award was 2/3, today's would be 1/3.
    owner.send(owner.registry.functions.update(battery, 5_000, ZONE))
    increase_time(w3, spec.gate_closure - _chain_time(w3))
    governance.clear(request_id)
    increase_time(w3, spec.window_end - _chain_time(w3))

    # The oracle's measurement (its own rule and chain facts): 8 kWh before the event,
    # nothing during it, so each interval delivers its device's cap.
    facts = read_request_facts(governance, request_id)
    (bid,) = facts.bids
    readings = {start - 900: 8_000} | {t: 0 for t in facts.window.interval_starts}
    measured = {d: measure_device(facts, bid, d, readings, set()) for d in (battery, heat_pump)}
    trees = build_report_trees(
        [m.record for m in measured.values()],
        {d: m.used_readings for d, m in measured.items()},
        facts.bid_count,
    )
    assert [m.record.delivered_wh for m in measured.values()] == [20_000, 10_000]
    payload = ReportPayload(
        governance.market.address, request_id, 0, trees.delivered_wh, trees.devices_root,
        trees.readings_root,
    )  # fmt: skip
    signatures = sign_report(
        payload, w3.eth.chain_id, governance.committee.address, [a.key for a in market.oracles]
    )
    governance.submit_report(
        request_id, trees.delivered_wh, trees.devices_root, trees.readings_root, signatures
    )

    def serve(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == f"/v1/reports/{request_id}":
            return httpx.Response(200, json={
                "round": 0, "signer": market.oracles[0].address,
                "deliveredWh": trees.delivered_wh,
                "devicesRoot": "0x" + trees.devices_root.hex(),
                "readingsRoot": "0x" + trees.readings_root.hex(),
                "records": [m.record.to_json() for m in measured.values()],
            })  # fmt: skip
        for device_id, m in measured.items():
            if path == f"/v1/reports/{request_id}/devices/{device_id}":
                leaf = used_readings_leaf(device_id, m.used_readings)
                return httpx.Response(200, json={
                    "record": m.record.to_json(), "usedReadings": "0x" + m.used_readings.hex(),
                    "readingsProof": ["0x" + n.hex() for n in trees.readings_tree.proof(leaf)],
                    "units": [],
                })  # fmt: skip
        return httpx.Response(404, json={"detail": "unknown"})

    context = explorer_context(w3, market, f"sqlite:///{tmp_path / 'explorer.db'}")
    context.settings = context.settings.model_copy(update={"oracles": ORACLE})
    context.http = httpx.Client(transport=httpx.MockTransport(serve))
    Indexer(context.engine, w3, context.deployment).sync()
    with context.http:
        assert RecordFetcher(context).sync().reports_fetched == 1
    with Session(context.engine) as session:
        records = {
            r.device_id: r.delivered_wh
            for r in session.exec(select(DeviceResult).where(DeviceResult.request_id == request_id))
        }
        curves = {
            device_id: sum(
                session.exec(
                    select(col(EventInterval.delivered_wh)).where(
                        EventInterval.request_id == request_id,
                        EventInterval.device_id == device_id,
                    )
                ).all()
            )
            for device_id in records
        }
    context.engine.dispose()
    assert records == {battery: 20_000, heat_pump: 10_000}
    assert curves == records
