"""Public conflict evidence: both device-signed units of each contradiction this oracle
holds, per device or per report (its CONFLICT records), so a CONFLICT record can be
checked from public data (`gridflex.rules.attestation.verify_unit` on both units: same device,
same interval, two values). Peers read the per-device route while reconciling.

Answers: 200; 404 unknown request or round (report route); 422 bad ids or bounds; 425
before the report is measured; 503 chain or database down."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query

from gridflex.chain.facts import read_request
from gridflex.rules.baselines import EventWindow
from gridflex.rules.measurement import ReadingSpan, reading_span
from gridflex.rules.reports import Quality
from oracle.api.deps import ServiceDep
from oracle.api.routes.reports import RequestId, Round, _report
from oracle.evidence import MAX_EVIDENCE_PAGE, read_conflict_pairs
from oracle.models import INT64_MAX

router = APIRouter(prefix="/v1", tags=["evidence"])

UnixSeconds = Annotated[int, Query(ge=0, le=INT64_MAX, description="unix seconds")]


@router.get("/devices/{device_id}/conflicts")
def device_conflicts(
    service: ServiceDep,
    device_id: Annotated[int, Path(ge=0, le=INT64_MAX)],
    start: UnixSeconds | None = None,
    end: UnixSeconds | None = None,
    after: Annotated[
        int, Query(ge=0, le=INT64_MAX, description="`nextAfter` of the previous page")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_EVIDENCE_PAGE)] = MAX_EVIDENCE_PAGE,
) -> dict[str, Any]:
    """The device's contradictions with an interval in `[start, end)`, oldest first; each
    carries both signed units (with their EIP-712 digests) exactly as the device signed
    them. Page on with `after=nextAfter` while it is not null."""
    if start is not None and end is not None and end <= start:
        raise HTTPException(422, f"end {end} must be after start {start}")
    service.ensure_schema()
    span = ReadingSpan(start or 0, INT64_MAX if end is None else end)
    pairs = read_conflict_pairs(service.engine, device_id, span, after_id=after, limit=limit)
    return {
        "deviceId": device_id,
        "conflicts": [pair.to_json() for pair in pairs],
        "nextAfter": pairs[-1].evidence_id if len(pairs) == limit else None,
    }


@router.get("/reports/{request_id}/conflicts")
def report_conflicts(
    service: ServiceDep, request_id: RequestId, round: Round = None
) -> dict[str, Any]:
    """Every CONFLICT record of the report with the evidence behind it: the contradictions
    this oracle holds for that device within the readings the request's method can read
    (the first `MAX_EVIDENCE_PAGE` per device; the device route pages on)."""
    measured = _report(service, request_id, round)
    try:
        state = read_request(service.reports.measurer.protocol, request_id)
    except Exception as error:  # chain RPC down between the two reads
        raise HTTPException(
            503,
            f"chain unavailable: {str(error).splitlines()[0] if str(error) else error!r}",
            headers={"Retry-After": str(service.settings.retry_after_seconds)},
        ) from error
    window = EventWindow(state.window_start, state.window_end, state.interval_seconds)
    span = reading_span(state.baseline_method, window)
    devices = []
    for record in measured.trees.records:
        if record.quality != Quality.CONFLICT:
            continue
        pairs = read_conflict_pairs(service.engine, record.device_id, span)
        devices.append(
            {
                "deviceId": record.device_id,
                "bidIndex": record.bid_index,
                "conflicts": [pair.to_json() for pair in pairs],
            }
        )
    return {
        "requestId": measured.request_id,
        "round": measured.round,
        "span": {"start": span.start, "end": span.end, "dailySeconds": span.daily_seconds},
        "devices": devices,
    }
