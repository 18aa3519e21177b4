"""Issue 12 finding 12 in the explorer: a voided round's device records are fetched from
the oracle (`?round=`) and shown, marked voided, and a CONFLICT record links the oracle's
public evidence (both signed units). Events are hand-made (`test_projection.Chain`), the
oracle an in-process transport."""

from __future__ import annotations

import re

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select
from test_projection import BIDDER, ORACLE, Chain
from web3 import Web3

from explorer.app import create_app
from explorer.deps import ExplorerContext
from explorer.models import DeviceResult, EventInterval
from explorer.records import RecordFetcher
from explorer.settings import ExplorerSettings
from gridflex.chain.deployments import Deployment
from gridflex.rules.reports import (
    DeviceRecord,
    Quality,
    build_report_trees,
    pack_used_readings,
    used_readings_leaf,
)


def test_a_voided_rounds_records_are_fetched_and_its_conflict_links_the_evidence(
    engine: Engine,
) -> None:
    """Issue 12 finding 12: the records of a voided round (here with a CONFLICT device)
    are fetched from the oracle and rendered, marked voided, and the CONFLICT record links
    the oracle's public evidence (both signed units). b0384e6 fetched no voided round."""
    conflict = DeviceRecord(4, 0, 0, 0, 0, Quality.CONFLICT)
    honest = DeviceRecord(5, 0, 2_000, 200, 1_800, Quality.OK)
    used = {4: b"", 5: pack_used_readings([(900_000 - 900, 2_000), (900_000, 200)])}
    trees = build_report_trees([conflict, honest], used, 1)
    root = "0x" + trees.devices_root.hex()
    with Session(engine) as session:
        chain = Chain(session)
        chain.emit("OracleCommittee", "OracleAdded", oracle=ORACLE, id=1, bond=10**21)
        chain.request(1)
        chain.emit("FlexMarket", "BidPlaced", requestId=1, bidIndex=0, bidder=BIDDER,
                   powerW=10_000, pricePerKWh=10**17, bond=10**19, deviceIds=[4, 5])  # fmt: skip
        chain.emit("FlexMarket", "Awarded", requestId=1, bidIndex=0, bidder=BIDDER,
                   awardedW=10_000, pricePerKWh=10**17)  # fmt: skip
        chain.emit("FlexMarket", "ReportSubmitted", requestId=1, round=0,
                   report={"devicesRoot": root,
                           "readingsRoot": "0x" + trees.readings_root.hex()},
                   deliveredWh=[1_800], signerBitmap=1, disputeEndsAt=5_000_000)  # fmt: skip
        chain.emit("FlexMarket", "ReportVoided", requestId=1, round=0, signerBitmap=1)
        session.commit()

    oracle = "http://oracle.test"
    asked: list[str] = []

    def serve(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        if request.url.params.get("round") != "0":
            return httpx.Response(404, json={"detail": "no such round"})
        path = request.url.path
        if path == "/v1/reports/1":
            return httpx.Response(200, json={
                "round": 0, "signer": ORACLE, "deliveredWh": [1_800], "devicesRoot": root,
                "readingsRoot": "0x" + trees.readings_root.hex(),
                "records": [conflict.to_json(), honest.to_json()],
            })  # fmt: skip
        for record in (conflict, honest):
            if path == f"/v1/reports/1/devices/{record.device_id}":
                packed = trees.used_readings[record.device_id]
                proof = trees.readings_tree.proof(used_readings_leaf(record.device_id, packed))
                return httpx.Response(200, json={
                    "record": record.to_json(), "usedReadings": "0x" + packed.hex(),
                    "readingsProof": ["0x" + node.hex() for node in proof], "units": [],
                })  # fmt: skip
        return httpx.Response(404, json={"detail": "unknown"})

    with httpx.Client(transport=httpx.MockTransport(serve)) as http:
        fetching = ExplorerContext(
            ExplorerSettings(oracles=oracle), engine, Web3(), Deployment(31337, 0), http
        )
        assert RecordFetcher(fetching).sync().reports_fetched == 1
    with Session(engine) as session:
        stored = session.exec(select(DeviceResult.round, DeviceResult.device_id)).all()
        assert sorted(stored) == [(0, 4), (0, 5)]
        assert session.exec(select(EventInterval)).all() == []  # curves: standing reports only

    context = ExplorerContext(ExplorerSettings(), engine, Web3(), Deployment(31337, 0))
    with TestClient(create_app(context)) as client:
        page = client.get("/requests/1")
        detail = client.get("/api/requests/1").json()
    assert page.status_code == 200
    assert {(x["round"], x["device_id"], x["quality"]) for x in detail["device_results"]} == {
        (0, 4, "CONFLICT"),
        (0, 5, "OK"),
    }
    rows = re.findall(
        r'<tr class="device-result voided" data-round="0" data-device="(\d+)"', page.text
    )
    assert sorted(rows) == ["4", "5"]
    evidence = f'href="{oracle}/v1/reports/1/conflicts?round=0"'
    assert page.text.count(evidence) == 1  # the CONFLICT record only
    assert 'class="evidence-link"' in page.text
