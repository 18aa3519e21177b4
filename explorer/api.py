"""The JSON API: the same read models as the pages (`explorer.queries`), the live device
verification and the settlements as CSV."""

from __future__ import annotations

import csv
import io
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, TypeAdapter

from explorer import pools, queries
from explorer.deps import Address, ContextDep, Id, SessionDep, found, require_device_record
from explorer.verification import DeviceVerification, verify_device
from gridflex.verify import VerifyInputError

router = APIRouter(prefix="/api", tags=["api"])
DEVICE_LIST = TypeAdapter(list[queries.DeviceSummary])


def _json(content: BaseModel | bytes) -> Response:
    """Serialised once, by pydantic. Returned as a model, FastAPI would dump it and
    validate it again against `response_model`, which stays for the OpenAPI schema; the
    read models are built by our own code, so the second pass only costs time."""
    body = content if isinstance(content, bytes) else content.model_dump_json().encode()
    return Response(body, media_type="application/json")


MAX_READINGS_PAGE = 10_000
SETTLEMENT_COLUMNS = (
    "request_id", "bid_index", "bidder", "settlement_token", "awarded_w", "price_per_kwh",
    "clearing_price", "delivered_wh", "utilization", "availability", "fee", "payout",
    "slashed", "settled_at",
)  # fmt: skip


@router.get("/overview", response_model=queries.Overview)
def overview(session: SessionDep) -> Response:
    """Network totals: devices and capacity by kind and zone, stake, requests, delivery,
    money per settlement token, slashes, and their running totals over time."""
    return _json(queries.overview(session))


@router.get("/requests", response_model=queries.RequestList)
def requests(
    session: SessionDep,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Response:
    """Requests, newest first."""
    return _json(queries.request_list(session, offset, limit))


@router.get("/requests/{request_id}", response_model=queries.RequestDetail)
def request(session: SessionDep, request_id: Id) -> Response:
    """One request: parameters, bids and awards, reports, device records, settlement."""
    detail = found(queries.request_detail(session, request_id), f"no request {request_id} indexed")
    return _json(detail)


@router.get("/devices", response_model=list[queries.DeviceSummary])
def devices(session: SessionDep) -> Response:
    return _json(DEVICE_LIST.dump_json(queries.device_list(session)))


@router.get("/devices/{device_id}", response_model=queries.DeviceDetail)
def device(session: SessionDep, device_id: Id) -> Response:
    """One device: registration, latest readings, each event's intervals and earnings."""
    detail = found(queries.device_detail(session, device_id), f"no device {device_id} registered")
    return _json(detail)


@router.get("/devices/{device_id}/readings", response_model=queries.ReadingList)
def device_readings(
    session: SessionDep,
    device_id: Id,
    start: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
    end: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
    cursor: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_READINGS_PAGE)] = 1_000,
) -> Response:
    """Signed readings in interval order; pass `next_cursor` back as `cursor`."""
    return _json(queries.device_readings(session, device_id, start, end, cursor, limit))


@router.get("/accounts/{address}", response_model=queries.AccountDetail)
def account(session: SessionDep, address: Address) -> Response:
    """Stake, locks, bids, payouts, refunds and slashes of one address."""
    return _json(queries.account_detail(session, address))


@router.get("/pools", response_model=list[pools.PoolSummary])
def pool_list(session: SessionDep) -> list[pools.PoolSummary]:
    """Every pool: its name, operator, commission at creation and member devices."""
    return pools.pool_list(session)


@router.get("/pools/{pool_id}", response_model=pools.PoolDetail)
def pool(session: SessionDep, pool_id: Id) -> Response:
    """A pool: operator, commission history, members, capacity by zone, bids, payouts and
    the members' claims."""
    return _json(found(pools.pool_detail(session, pool_id), f"no pool {pool_id} indexed"))


@router.get("/accounts/{address}/member-payments", response_model=list[pools.MemberPayment])
def account_member_payments(session: SessionDep, address: Address) -> list[pools.MemberPayment]:
    """The pool shares this address claimed, newest first."""
    return pools.member_payments(session, owner=address)


@router.get(
    "/requests/{request_id}/devices/{device_id}/verification",
    response_model=DeviceVerification,
    responses={
        404: {"description": "no record of this device in the request"},
        502: {"description": "the check cannot run (no report posted, no oracle answering)"},
    },
)
async def verification(
    context: ContextDep, session: SessionDep, request_id: Id, device_id: Id
) -> DeviceVerification:
    """Checks the device's record against the on-chain roots (read live; Merkle proofs),
    its used readings against the device-signed units, and recomputes the whole report
    (`gridflex.verify.check_report`), once per report round: later views are stored."""
    require_device_record(session, request_id, device_id)
    try:
        return await run_in_threadpool(
            verify_device, context.protocol, context.settings.oracle_urls, request_id,
            device_id, context.http, context.engine,
        )  # fmt: skip
    except VerifyInputError as error:
        raise HTTPException(502, str(error)) from error


@router.get(
    "/settlements.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "one row per settled bid"}},
)
def settlements_csv(session: SessionDep) -> StreamingResponse:
    """Every settled bid, amounts in token base units."""
    rows = queries.settlements(session)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(SETTLEMENT_COLUMNS)
    for row in rows:
        values = row.model_dump()
        writer.writerow(values[column] for column in SETTLEMENT_COLUMNS)
    return StreamingResponse(
        iter([buffer.getvalue()]),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="settlements.csv"'},
    )
