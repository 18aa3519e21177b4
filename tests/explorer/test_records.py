"""Oracle records follow the chain: after a rollback replaced a report (other roots) or
removed it, its device records and interval curves are dropped, the current ones kept."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session, select
from web3 import Web3

from explorer.deps import ExplorerContext
from explorer.models import DeviceResult, EventInterval, Report
from explorer.records import RecordFetcher
from explorer.settings import ExplorerSettings
from gridflex.chain.deployments import Deployment


def _report(request_id: int, root: str) -> Report:
    return Report(
        request_id=request_id, round=0, devices_root=root, readings_root=root,
        delivered_wh="[1]", signer_bitmap=1, signers="[]", dispute_ends_at=0, posted_at=0,
        tx_hash="0x",
    )  # fmt: skip


def _result(request_id: int, root: str) -> list[DeviceResult | EventInterval]:
    return [
        DeviceResult(
            request_id=request_id, round=0, device_id=7, bid_index=0, baseline_wh=10,
            metered_wh=4, delivered_wh=6, quality=0, source="http://oracle", devices_root=root,
        ),
        EventInterval(
            request_id=request_id, device_id=7, interval_start=900, baseline_wh=10,
            metered_wh=4, delivered_wh=6,
        ),
    ]  # fmt: skip


def test_records_of_replaced_or_removed_reports_are_dropped(engine: Engine) -> None:
    with Session(engine) as session:
        session.add(_report(1, "0xaa"))  # still on chain, same root
        session.add(_report(2, "0xbb"))  # re-posted after a reorg with another root
        for request_id, root in ((1, "0xaa"), (2, "0xold"), (3, "0xgone")):
            session.add_all(_result(request_id, root))
        session.commit()
    context = ExplorerContext(ExplorerSettings(), engine, Web3(), Deployment(31337, 0))
    RecordFetcher(context).sync(chain_rewound=True)
    with Session(engine) as session:
        assert session.exec(select(DeviceResult.request_id)).all() == [1]
        assert session.exec(select(EventInterval.request_id)).all() == [1]
