"""The HTML pages: Jinja2 templates over the read models of `explorer.queries`, with
server-rendered SVG charts (`explorer.charts`). Every number with a unit is rendered with
its exact base value in a `data-*` attribute, so a reader (or a test) can check it against
the chain to the unit."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from starlette.requests import Request as HttpRequest

from explorer import pools, queries
from explorer.charts import Band, Series, chart
from explorer.deps import Address, ContextDep, Id, SessionDep, found, require_device_record
from explorer.verification import verify_device
from gridflex.verify import VerifyInputError

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
TOKEN_DECIMALS = 18
PAGE_SIZE = 50


def token_units(amount: int) -> str:
    """Base units as a decimal token amount, trailing zeros trimmed (exact)."""
    value = Decimal(int(amount)).scaleb(-TOKEN_DECIMALS)
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def utc(timestamp: int | None) -> str:
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(int(timestamp), UTC).strftime("%Y-%m-%d %H:%M UTC")


def short(value: str) -> str:
    return value if len(value) <= 14 else f"{value[:8]}…{value[-4:]}"


def kwh(wh: int) -> str:
    return f"{Decimal(int(wh)) / 1000:,.3f}"


def kw(w: int) -> str:
    return f"{Decimal(int(w)) / 1000:,.1f}"


def duration(seconds: int) -> str:
    seconds = max(int(seconds), 0)
    hours, rest = divmod(seconds, 3600)
    return f"{hours} h {rest // 60} min" if hours else f"{rest // 60} min {rest % 60} s"


templates.env.filters.update(tokens=token_units, utc=utc, short=short, kwh=kwh, kw=kw)
templates.env.globals.update(duration=duration)


def _render(request: HttpRequest, name: str, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context)


def _hour_label(timestamp: float) -> str:
    return datetime.fromtimestamp(int(timestamp), UTC).strftime("%m-%d %H:%M")


# ─── Charts of the pages ──────────────────────────────────────────────────────────────


def history_charts(overview: queries.Overview) -> list[Markup]:
    points = overview.history
    if not points:
        return []

    def running(name: str, values: list[float], style: str = "series-0") -> Series:
        return Series(
            name, list(zip([p.timestamp for p in points], values, strict=True)), style, True
        )

    scale = 10**TOKEN_DECIMALS
    money = [
        running("payouts", [p.payouts / scale for p in points]),
        running("fees", [p.fees / scale for p in points], "series-1"),
    ]
    return [
        chart(
            "Requests (running total)",
            [running("requests", [p.requests for p in points])],
            x_label=_hour_label,
        ),
        chart(
            "Energy delivered (MWh, running total)",
            [running("MWh", [p.delivered_wh / 1e6 for p in points], "series-1")],
            x_label=_hour_label,
            y_unit="MWh",
        ),
        chart("Paid to providers and fees (settlement tokens, running total)", money,
              x_label=_hour_label),
        chart("Stake slashed (FLEX, running total)",
              [running("slashed", [p.slashed / scale for p in points], "series-2")],
              x_label=_hour_label),
    ]  # fmt: skip


def merit_order_chart(detail: queries.RequestDetail) -> Markup:
    """Offers sorted by price (then placement, as clearing does) against cumulative kW; the
    awarded part, the requested quantity and the clearing price."""
    offers = sorted(detail.bids, key=lambda b: (b.price_per_kwh, b.sequence))
    scale = 10**TOKEN_DECIMALS
    offered, awarded = [(0.0, 0.0)], [(0.0, 0.0)]
    cumulative = 0.0
    for bid in offers:
        price = bid.price_per_kwh / scale
        offered += [(cumulative, price), (cumulative + bid.power_w / 1000, price)]
        if bid.awarded_w:
            awarded += [(cumulative, price), (cumulative + bid.awarded_w / 1000, price)]
        cumulative += bid.power_w / 1000
    top = max([b.price_per_kwh / scale for b in offers] or [1.0])
    requested = detail.request.power_w / 1000
    markers = []
    if detail.request.clearing_price:
        markers.append(("clearing price", detail.request.clearing_price / scale, "marker"))
    return chart(
        "Merit order: offers by price (token/kWh) against cumulative kW",
        [
            Series("offered", offered, "series-0"),
            Series("awarded", awarded if len(awarded) > 1 else [], "series-1"),
            Series("requested kW", [(requested, 0.0), (requested, top)], "series-2"),
        ],
        markers=markers,
        x_label=lambda x: f"{x:.0f} kW",
    )


def event_chart(event: queries.DeviceEvent) -> Markup:
    """Baseline vs metered per interval, with the delivered energy shaded."""
    if not event.intervals:
        return Markup('<p class="empty">No per-interval data from the oracles yet.</p>')
    step = (
        event.intervals[1].interval_start - event.intervals[0].interval_start
        if len(event.intervals) > 1
        else 900
    )
    end = event.intervals[-1].interval_start + step

    def held(values: list[int]) -> list[tuple[float, float]]:
        points = [
            (float(i.interval_start), float(v))
            for i, v in zip(event.intervals, values, strict=True)
        ]
        return [*points, (float(end), points[-1][1])]

    bands = []
    for interval in event.intervals:
        if interval.delivered_wh > 0:
            low = min(interval.baseline_wh, interval.metered_wh)
            start = interval.interval_start
            label = f"{interval.delivered_wh} Wh delivered"
            bands.append(Band(start, start + step, low, low + interval.delivered_wh, label))
    return chart(
        f"Request {event.request_id}: baseline vs metered (Wh per interval)",
        [
            Series("baseline", held([i.baseline_wh for i in event.intervals]), "series-0", True),
            Series("metered", held([i.metered_wh for i in event.intervals]), "series-1", True),
        ],
        bands=bands,
        x_label=_hour_label,
        y_unit="Wh",
    )


def readings_chart(detail: queries.DeviceDetail) -> Markup:
    return chart(
        f"Signed readings (latest {len(detail.readings)} of {detail.readings_total}, "
        "Wh per interval)",
        [Series("energy", [(r.interval_start, r.energy_wh) for r in detail.readings], "series-1")],
        x_label=_hour_label,
        y_unit="Wh",
        y_floor_zero=False,
    )


# ─── Pages ────────────────────────────────────────────────────────────────────────────


@router.get("/", response_class=HTMLResponse)
def overview_page(request: HttpRequest, session: SessionDep) -> HTMLResponse:
    overview = queries.overview(session)
    return _render(request, "overview.html", overview=overview, charts=history_charts(overview))


@router.get("/requests", response_class=HTMLResponse)
def requests_page(
    request: HttpRequest, session: SessionDep, page: Annotated[int, Query(ge=1, le=10**7)] = 1
) -> HTMLResponse:
    listing = queries.request_list(session, (page - 1) * PAGE_SIZE, PAGE_SIZE)
    return _render(request, "requests.html", listing=listing, page=page)


@router.get("/requests/{request_id}", response_class=HTMLResponse)
def request_page(request: HttpRequest, session: SessionDep, request_id: Id) -> HTMLResponse:
    detail = found(queries.request_detail(session, request_id), f"no request {request_id} indexed")
    return _render(request, "request.html", d=detail, merit_chart=merit_order_chart(detail))


@router.get("/devices", response_class=HTMLResponse)
def devices_page(request: HttpRequest, session: SessionDep) -> HTMLResponse:
    return _render(request, "devices.html", devices=queries.device_list(session))


@router.get("/devices/{device_id}", response_class=HTMLResponse)
def device_page(request: HttpRequest, session: SessionDep, device_id: Id) -> HTMLResponse:
    detail = found(queries.device_detail(session, device_id), f"no device {device_id} registered")
    return _render(
        request, "device.html", d=detail, readings_chart=readings_chart(detail),
        event_charts={e.request_id: event_chart(e) for e in detail.events},
        member_payments=pools.member_payments(session, device_id=device_id),
    )  # fmt: skip


@router.get("/accounts/{address}", response_class=HTMLResponse)
def account_page(request: HttpRequest, session: SessionDep, address: Address) -> HTMLResponse:
    return _render(
        request, "account.html", d=queries.account_detail(session, address),
        member_payments=pools.member_payments(session, owner=address),
    )  # fmt: skip


@router.get("/pools", response_class=HTMLResponse)
def pools_page(request: HttpRequest, session: SessionDep) -> HTMLResponse:
    return _render(request, "pools.html", pools=pools.pool_list(session))


@router.get("/pools/{pool_id}", response_class=HTMLResponse)
def pool_page(request: HttpRequest, session: SessionDep, pool_id: Id) -> HTMLResponse:
    detail = found(pools.pool_detail(session, pool_id), f"no pool {pool_id} indexed")
    return _render(request, "pool.html", d=detail)


@router.get("/requests/{request_id}/devices/{device_id}/verify", response_class=HTMLResponse)
async def verify_page(
    request: HttpRequest, context: ContextDep, session: SessionDep, request_id: Id, device_id: Id
) -> HTMLResponse:
    require_device_record(session, request_id, device_id)
    try:
        result = await run_in_threadpool(
            verify_device, context.protocol, context.settings.oracle_urls, request_id,
            device_id, context.http, context.engine,
        )  # fmt: skip
        error = None
    except VerifyInputError as failure:
        result, error = None, str(failure)
    return _render(
        request, "verify.html", v=result, error=error, request_id=request_id, device_id=device_id
    )
