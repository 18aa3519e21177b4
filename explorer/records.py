"""Oracle data for the pages: per-device records of every posted report (checked against
the report's on-chain roots before they are stored), each event interval's baseline,
metered and delivered energy (recomputed from the report's used readings with the oracles'
own rules and chain facts: each device capped by its capacity when the bid was placed), and
the devices' signed readings (paginated `GET /v1/devices/{id}/readings`). Pages read these
tables only; nothing here runs in a page handler."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import structlog
from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from explorer.deps import ExplorerContext
from explorer.models import Device, DeviceResult, EventInterval, Reading, Report
from gridflex import safe_json
from gridflex.rules.baselines import compute_baseline, delivered_wh, device_cap_wh
from gridflex.rules.measurement import RequestFacts
from gridflex.rules.reports import DeviceRecord, Quality, unpack_used_readings
from gridflex.rules.types import BaselineMethod
from gridflex.verify import PublishedReport, VerifyInputError, fetch_published_report, read_facts

log = structlog.get_logger(__name__)
DELIVERING = (Quality.OK, Quality.FALLBACK)
"""Record qualities that deliver (`gridflex.rules.measurement`: any other delivers zero)."""

READINGS_PAGE = 5_000
READINGS_PAGE_MAX_BYTES = 16 * 1024 * 1024
"""Largest readings page decoded (5,000 readings are about 600 KiB)."""
READING_PAGES_PER_SYNC = 4
"""Per device and pass, so one chatty device cannot hold the others back."""


@dataclass(frozen=True)
class RecordSyncResult:
    reports_fetched: int
    readings_fetched: int


def interval_curves(
    facts: RequestFacts, record: DeviceRecord, used_readings: bytes
) -> list[EventInterval]:
    """One device's baseline, metered and delivered energy per event interval, from its
    used readings with the oracles' rules and chain facts (the device's cap from its
    capacity when the bid was placed, `read_request_facts`); empty for a device of no
    awarded bid. An honest record is the sum of its curve."""
    bid = next((b for b in facts.bids if b.bid_index == record.bid_index), None)
    if bid is None or record.device_id not in bid.device_capacity_w:
        return []
    window = facts.window
    readings = dict(unpack_used_readings(used_readings))
    baseline = compute_baseline(BaselineMethod(facts.baseline_method), readings, window).baseline_wh
    metered = [readings.get(t, 0) for t in window.interval_starts]
    cap = device_cap_wh(
        bid.awarded_w,
        bid.device_capacity_w[record.device_id],
        bid.capacity_w,
        window.interval_seconds,
    )
    delivered = delivered_wh(facts.direction, baseline, metered, cap)
    if record.quality not in DELIVERING:
        delivered = (0,) * len(delivered)
    return [
        EventInterval(
            request_id=facts.request_id, device_id=record.device_id, interval_start=start,
            baseline_wh=base, metered_wh=meter, delivered_wh=done,
        )
        for start, base, meter, done in zip(
            window.interval_starts, baseline, metered, delivered, strict=True
        )
    ]  # fmt: skip


class RecordFetcher:
    """Fetches from the context's oracles; its chain handle (bound on first use) reads the
    facts the interval curves need (`read_request_facts`)."""

    def __init__(self, context: ExplorerContext) -> None:
        self.context = context
        self.engine = context.engine
        self.oracle_urls = list(context.settings.oracle_urls)
        self.http = context.http
        self._checked_stale = False

    def sync(self, chain_rewound: bool = False) -> RecordSyncResult:
        """`chain_rewound`: the indexer undid blocks this pass (reorg, reset), so records of
        reports that left the chain are dropped first (also done on the first pass, for a
        rollback that happened while the explorer was down)."""
        if chain_rewound or not self._checked_stale:
            self._drop_stale_records()
            self._checked_stale = True
        if not self.oracle_urls:
            return RecordSyncResult(0, 0)
        reports = 0
        for report in self._missing_reports():
            try:
                reports += self._fetch_report(report)
            except Exception as error:  # one bad answer must not hold back the others
                log.warning(
                    "report records not stored", request=report.request_id, error=str(error)
                )
        readings = sum(self._fetch_readings(device_id) for device_id in self._device_ids())
        return RecordSyncResult(reports, readings)

    # ─── Report records ───────────────────────────────────────────────────────────────

    def _drop_stale_records(self) -> None:
        """Records of a report that a reorg or reverted snapshot removed or replaced."""
        with Session(self.engine) as session:
            current = {
                (r.request_id, r.round, r.devices_root) for r in session.exec(select(Report))
            }
            stale = {
                (row.request_id, row.round)
                for row in session.exec(select(DeviceResult))
                if (row.request_id, row.round, row.devices_root) not in current
            }
            for request_id, round_ in stale:
                session.exec(  # type: ignore[call-overload]
                    delete(DeviceResult).where(
                        col(DeviceResult.request_id) == request_id,
                        col(DeviceResult.round) == round_,
                    )
                )
                session.exec(  # type: ignore[call-overload]
                    delete(EventInterval).where(col(EventInterval.request_id) == request_id)
                )
            session.commit()

    def _missing_reports(self) -> list[Report]:
        with Session(self.engine) as session:
            have = set(session.exec(select(DeviceResult.request_id, DeviceResult.round)).all())
            # Voided rounds too: their records (a CONFLICT among them) are what a reader
            # needs to see why a report was voided and who equivocated.
            return [
                r
                for r in session.exec(select(Report).order_by(col(Report.round))).all()
                if (r.request_id, r.round) not in have
            ]

    def _fetch_report(self, report: Report) -> int:
        """Stores the first oracle's data whose roots are the posted ones; 1 when stored."""
        for url in self.oracle_urls:
            try:
                published = fetch_published_report(self.http, url, report.request_id, report.round)
            except VerifyInputError as error:
                log.info("oracle has no report yet", url=url, error=str(error))
                continue
            roots = ("0x" + published.devices_root.hex(), "0x" + published.readings_root.hex())
            if roots != (report.devices_root, report.readings_root):
                log.warning(
                    "oracle serves other roots than posted", url=url, request=report.request_id
                )
                continue
            self._store(report, published)
            return 1
        return 0

    def _store(self, report: Report, published: PublishedReport) -> None:
        """Device records of the round; the interval curves only for a standing report
        (one set per request: a voided round's records must not replace them)."""
        facts = (
            None
            if report.voided
            else read_facts(self.context.protocol, report.request_id, report.round)
        )
        with Session(self.engine) as session:
            if facts is not None:
                session.exec(  # type: ignore[call-overload]
                    delete(EventInterval).where(col(EventInterval.request_id) == report.request_id)
                )
            for device_id, data in published.devices.items():
                record = data.record
                session.add(
                    DeviceResult(
                        request_id=report.request_id, round=report.round, device_id=device_id,
                        bid_index=record.bid_index, baseline_wh=record.baseline_wh,
                        metered_wh=record.metered_wh, delivered_wh=record.delivered_wh,
                        quality=int(record.quality), source=published.source,
                        devices_root=report.devices_root,
                    )
                )  # fmt: skip
                if facts is not None:
                    session.add_all(interval_curves(facts, record, data.used_readings))
            session.commit()

    # ─── Readings ─────────────────────────────────────────────────────────────────────

    def _device_ids(self) -> list[int]:
        with Session(self.engine) as session:
            return list(session.exec(select(Device.device_id).order_by(Device.device_id)).all())

    def _fetch_readings(self, device_id: int) -> int:
        with Session(self.engine) as session:
            last = session.exec(
                select(func.max(Reading.interval_start)).where(Reading.device_id == device_id)
            ).one()
        fetched = 0
        for url in self.oracle_urls:
            cursor = last
            try:
                for _ in range(READING_PAGES_PER_SYNC):
                    params: dict[str, int] = {"limit": READINGS_PAGE}
                    if cursor is not None:
                        params["cursor"] = cursor
                    answer = self.http.get(f"{url}/v1/devices/{device_id}/readings", params=params)
                    answer.raise_for_status()
                    page = safe_json.loads(answer.content, max_bytes=READINGS_PAGE_MAX_BYTES)
                    rows = [
                        Reading(
                            device_id=device_id,
                            interval_start=int(r["interval_start"]),
                            energy_wh=int(r["energy_wh"]),
                            unit_digest=r["unit_digest"],
                        )
                        for r in page["readings"]
                    ]
                    if rows:
                        with Session(self.engine) as session:
                            session.add_all(rows)
                            session.commit()
                        fetched += len(rows)
                        cursor = rows[-1].interval_start
                    if page["next_cursor"] is None:
                        break
                return fetched
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as error:
                log.info("oracle readings unavailable", url=url, device=device_id, error=str(error))
        return fetched
