"""`gridflex grid ...`: the grid operator's side of the market. Post a flexibility request
(budget approved by permit where the token supports it, and escrowed in the same command:
`gridflex.chain.operator`), list and inspect requests, clear, finalize and cancel them.
Every revert is one readable sentence (see `gridflex.errors_text`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer
from eth_utils import is_address, to_checksum_address
from rich.console import Console
from rich.table import Table

from cli.common import fail, readable, to_base_units
from gridflex.config import get_settings
from gridflex.errors import ChainUnavailableError, GridFlexError
from gridflex.errors_text import (
    Units,
    explain_revert,
    format_kw,
    format_time,
    status_name,
)
from gridflex.rules.settlement import PricingRule
from gridflex.rules.types import BaselineMethod, Direction, RequestStatus

if TYPE_CHECKING:
    from gridflex.chain.protocol import Protocol

grid_app = typer.Typer(help="Grid operator: post, clear, finalize and cancel flexibility requests.")

DEFAULT_KEY_ENV = "GRIDFLEX_OPERATOR_KEY"


class DirectionChoice(StrEnum):
    reduce = "reduce"
    increase = "increase"


class BaselineChoice(StrEnum):
    mbma = "mbma"
    caiso = "caiso"
    pjm = "pjm"


class PricingChoice(StrEnum):
    pay_as_bid = "pay-as-bid"
    uniform = "uniform"


# The CLI's words for the protocol's enums (gridflex.rules), both ways.
DIRECTIONS = {
    DirectionChoice.reduce: Direction.REDUCE_CONSUMPTION,
    DirectionChoice.increase: Direction.INCREASE_CONSUMPTION,
}
BASELINES = {
    BaselineChoice.mbma: BaselineMethod.MBMA,
    BaselineChoice.caiso: BaselineMethod.CAISO_10_OF_10,
    BaselineChoice.pjm: BaselineMethod.PJM_HIGH_4_OF_5,
}
PRICING_RULES = {
    PricingChoice.pay_as_bid: PricingRule.PAY_AS_BID,
    PricingChoice.uniform: PricingRule.UNIFORM,
}


def _choice_name(choices: Mapping[Any, int], value: int) -> str:
    """The CLI word for an enum value read from the chain (the number if it has none)."""
    names = {int(enum): choice.value for choice, enum in choices.items()}
    return names.get(int(value), str(value))


RpcOption = Annotated[
    str | None,
    typer.Option("--rpc-url", help="JSON-RPC URL (default GRIDFLEX_RPC_URL or local anvil)."),
]
KeyEnvOption = Annotated[
    str,
    typer.Option("--key-env", help="Environment variable holding the operator's private key."),
]
RequestIdArg = Annotated[int, typer.Argument(help="Request id.", min=1)]


def _console() -> Console:
    return Console(soft_wrap=True)


def _units(protocol: Protocol, token: str) -> Units:
    return Units.of_token(token, protocol.token_metadata(token))


def _connect(rpc_url: str | None, key_env: str, *, need_key: bool) -> Protocol:
    """The operator's handle on the deployment (a throwaway account when reading only)."""
    from eth_account import Account

    from gridflex.chain.session import LOCAL_RPC_URL, open_protocol

    settings = get_settings()
    key = os.environ.get(key_env)
    if key is None and need_key:
        fail(f"set {key_env} to the grid operator's private key (hex), or pass --key-env VAR")
    try:
        account = Account.from_key(key) if key else None
    except (ValueError, TypeError) as error:
        fail(f"{key_env} does not hold a valid private key: {error}")
    url = rpc_url or settings.rpc_url or LOCAL_RPC_URL
    try:
        return open_protocol(url, settings.deployments_dir, account)
    except ChainUnavailableError as error:
        fail(f"{error} (check --rpc-url or GRIDFLEX_RPC_URL)")
    except GridFlexError as error:
        fail(str(error))


def _parse_time(value: str) -> int:
    """Unix seconds or ISO 8601 (a naive time is taken as UTC)."""
    text = value.strip()
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is neither unix seconds nor an ISO time (2026-11-25T17:00:00Z)",
            param_hint="--start",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def _duration_seconds(hours: float | None, intervals: int | None, interval_seconds: int) -> int:
    if (hours is None) == (intervals is None):
        raise typer.BadParameter("give exactly one of --hours and --intervals")
    if intervals is not None:
        return intervals * interval_seconds
    length = Decimal(str(hours)) * 3600
    if length <= 0 or length % interval_seconds:
        raise typer.BadParameter(
            f"{hours} h is not a whole number of {interval_seconds // 60}-minute intervals",
            param_hint="--hours",
        )
    return int(length)


@grid_app.command("request")
def request(
    zone: Annotated[str, typer.Option(help="Grid zone name, e.g. NL-AMS-01.")],
    power_kw: Annotated[float, typer.Option("--power-kw", help="Flexibility asked for, in kW.")],
    start: Annotated[str, typer.Option(help="Window start: ISO 8601 (UTC if naive) or unix.")],
    price_cap: Annotated[
        str, typer.Option("--price-cap", help="Maximum price per kWh, in token units (e.g. 0.25).")
    ],
    direction: Annotated[
        DirectionChoice, typer.Option(help="reduce or increase consumption.")
    ] = DirectionChoice.reduce,
    hours: Annotated[
        float | None, typer.Option(help="Window length in hours (or use --intervals).")
    ] = None,
    intervals: Annotated[
        int | None, typer.Option(help="Window length in settlement intervals.", min=1)
    ] = None,
    interval_minutes: Annotated[
        int, typer.Option("--interval-minutes", help="Settlement interval (minutes): 15 or 30.")
    ] = 15,
    availability_price: Annotated[
        str,
        typer.Option(
            "--availability-price", help="Availability price per kW per hour, in token units."
        ),
    ] = "0",
    gate_closure_minutes_before: Annotated[
        int,
        typer.Option(
            "--gate-closure-minutes-before", help="Bidding closes this long before the start."
        ),
    ] = 60,
    baseline: Annotated[
        BaselineChoice, typer.Option(help="Baseline method: mbma, caiso (10 of 10), pjm.")
    ] = BaselineChoice.mbma,
    pricing: Annotated[
        PricingChoice, typer.Option(help="pay-as-bid or uniform (marginal price).")
    ] = PricingChoice.pay_as_bid,
    token: Annotated[
        str | None, typer.Option(help="Settlement token address (default FLEX).")
    ] = None,
    no_approve: Annotated[
        bool,
        typer.Option("--no-approve", help="Use the existing allowance: no permit, no approve."),
    ] = False,
    rpc_url: RpcOption = None,
    key_env: KeyEnvOption = DEFAULT_KEY_ENV,
) -> None:
    """Post a flexibility request: approve (permit) and escrow its budget in one step."""
    from gridflex.chain.operator import InsufficientFundsError, post_request
    from gridflex.rules.types import SETTLED_INTERVAL_SECONDS, RequestSpec, zone_id

    interval_seconds = interval_minutes * 60
    if interval_seconds not in SETTLED_INTERVAL_SECONDS:
        lengths = " or ".join(str(s // 60) for s in sorted(SETTLED_INTERVAL_SECONDS))
        raise typer.BadParameter(f"must be {lengths}", param_hint="--interval-minutes")
    duration = _duration_seconds(hours, intervals, interval_seconds)
    window_start = _parse_time(start)
    power_w = int((Decimal(str(power_kw)) * 1000).to_integral_value())

    protocol = _connect(rpc_url, key_env, need_key=True)
    token_address = token or protocol.token.address
    if not is_address(token_address):
        raise typer.BadParameter(f"{token_address!r} is not an address", param_hint="--token")
    token_address = to_checksum_address(token_address)
    units = _units(protocol, token_address)
    spec = RequestSpec(
        zone=zone_id(zone),
        power_w=power_w,
        window_start=window_start,
        window_end=window_start + duration,
        price_cap_per_kwh=to_base_units(price_cap, units.decimals, "--price-cap"),
        gate_closure=window_start - gate_closure_minutes_before * 60,
        settlement_token=token_address,
        direction=DIRECTIONS[direction],
        interval_seconds=interval_seconds,
        availability_price_per_kwh=to_base_units(
            availability_price, units.decimals, "--availability-price"
        ),
        baseline_method=BASELINES[baseline],
        pricing_rule=int(PRICING_RULES[pricing]),
    )
    with readable(units):
        try:
            posted = post_request(protocol, spec, may_approve=not no_approve)
        except InsufficientFundsError as error:
            fail(
                f"insufficient {error.funds}: need {units.money(error.needed)}, "
                f"have {units.bare(error.available)}"
            )
    console = _console()
    console.print(f"request [bold]{posted.request_id}[/] created", highlight=False)
    console.print(
        f"  {direction.value} {format_kw(power_w)} in {zone}, "
        f"{format_time(spec.window_start)} to {format_time(spec.window_end)}; "
        f"gate closure {format_time(spec.gate_closure)}",
        highlight=False,
    )
    console.print(
        f"  budget {units.money(posted.escrow)} escrowed (via {posted.approval.value}); "
        f"price cap {units.money(spec.price_cap_per_kwh)}/kWh",
        highlight=False,
    )


@grid_app.command("requests")
def requests(
    mine: Annotated[bool, typer.Option("--mine", help="Only requests posted by this key.")] = False,
    rpc_url: RpcOption = None,
    key_env: KeyEnvOption = DEFAULT_KEY_ENV,
) -> None:
    """List the market's requests."""
    protocol = _connect(rpc_url, key_env, need_key=mine)
    units_cache: dict[str, Units] = {}
    with readable():
        count = protocol.request_count()
        table = Table(title=f"requests ({count} in the market)")
        for column in ("id", "status", "operator", "zone", "direction", "power", "window (UTC)",
                       "gate closure", "cap/kWh", "escrow", "bids", "awarded"):  # fmt: skip
            table.add_column(column)
        for request_id in range(1, count + 1):
            state = protocol.request(request_id)
            if mine and state.operator != protocol.address:
                continue
            token = state.settlement_token
            units = units_cache.setdefault(token, _units(protocol, token))
            table.add_row(
                str(request_id),
                status_name(state.status),
                state.operator,
                "0x" + state.zone.hex()[:8] + "…",
                _choice_name(DIRECTIONS, state.direction),
                format_kw(state.power_w),
                f"{format_time(state.window_start)[:16]} +{state.duration_seconds // 60} min",
                format_time(state.gate_closure)[:16],
                units.money(state.price_cap_per_kwh),
                units.money(state.escrow),
                str(state.bid_count),
                format_kw(state.awarded_w),
            )
    _console().print(table)


@grid_app.command("show")
def show(
    request_id: RequestIdArg,
    rpc_url: RpcOption = None,
    key_env: KeyEnvOption = DEFAULT_KEY_ENV,
) -> None:
    """A request's parameters, bids, awards, report and settlement."""
    protocol = _connect(rpc_url, key_env, need_key=False)
    with readable():
        state = protocol.request(request_id)
        if state.status == RequestStatus.NONE:
            fail(
                explain_revert("UnknownRequest", {"requestId": request_id})
                + f" (there are {protocol.request_count()} requests)"
            )
        units = _units(protocol, state.settlement_token)
        flex = _units(protocol, protocol.token.address)  # bid bonds are staked FLEX
        console = _console()
        params = Table(
            title=f"request {request_id}: {status_name(state.status)}", show_header=False
        )
        params.add_column("field")
        params.add_column("value")
        rows = [
            ("operator", state.operator),
            ("zone", "0x" + state.zone.hex()),
            ("direction", _choice_name(DIRECTIONS, state.direction)),
            ("power", format_kw(state.power_w)),
            ("window", f"{format_time(state.window_start)} to {format_time(state.window_end)}"),
            ("interval", f"{state.interval_seconds // 60} min"),
            ("gate closure", format_time(state.gate_closure)),
            ("baseline", _choice_name(BASELINES, state.baseline_method)),
            ("pricing", _choice_name(PRICING_RULES, state.pricing_rule)),
            ("token", f"{units.symbol} ({state.settlement_token})"),
            ("price cap", f"{units.money(state.price_cap_per_kwh)}/kWh"),
            ("availability price", f"{units.money(state.availability_price_per_kwh)}/kW/h"),
            ("escrow", units.money(state.escrow)),
            ("awarded", format_kw(state.awarded_w)),
            ("clearing price", f"{units.money(state.clearing_price)}/kWh"),
        ]
        for field, value in rows:
            params.add_row(field, value)
        console.print(params)

        bids = protocol.bids(request_id)
        awarded = protocol.awarded_w(request_id)
        if bids:
            table = Table(title="bids")
            for column in ("#", "bidder", "power", "price/kWh", "bond", "awarded"):
                table.add_column(column)
            for offer, award in zip(bids, awarded, strict=True):
                table.add_row(
                    str(offer.index), offer.bidder, format_kw(offer.power_w),
                    units.money(offer.price_per_kwh), flex.money(offer.bond), format_kw(award),
                )  # fmt: skip
            console.print(table)
        else:
            console.print("no bids", highlight=False)

        if state.status in (RequestStatus.REPORTED, RequestStatus.SETTLED) and bids:
            try:
                delivered = protocol.reported_delivery(request_id)
            except LookupError:
                delivered = []
            if delivered:
                figures = ", ".join(f"#{i}: {wh:,} Wh" for i, wh in enumerate(delivered))
                console.print(
                    f"report (round {state.report_round}): {figures}; dispute window "
                    f"ends {format_time(state.dispute_ends_at)}",
                    highlight=False,
                )
        for line in _settlement_lines(protocol, request_id, units, flex):
            console.print(line, highlight=False)


def _settlement_lines(protocol: Protocol, request_id: int, units: Units, flex: Units) -> list[str]:
    lines = []
    settlement = protocol.settlement(request_id)
    if settlement is not None:
        lines.append(
            f"settlement: payouts {units.money(settlement.payouts)}, "
            f"fees {units.money(settlement.fees)}, refund {units.money(settlement.refund)}, "
            f"slashed bonds {flex.money(settlement.slashed)}"
        )
    lines.extend(
        f"  bid #{bid.bid_index}: delivered {bid.delivered_wh:,} Wh, "
        f"utilization {units.money(bid.utilization)}, "
        f"availability {units.money(bid.availability)}, fee {units.money(bid.fee)}"
        for bid in protocol.bid_settlements(request_id=request_id)
    )
    refund = protocol.cancellation_refund(request_id)
    if refund is not None:
        lines.append(f"cancelled: refund {units.money(refund)}")
    return lines


def _operator_units(rpc_url: str | None, key_env: str, request_id: int) -> tuple[Protocol, Units]:
    """The operator's handle, and the units of the request's token (a readable error if the
    request does not exist)."""
    protocol = _connect(rpc_url, key_env, need_key=True)
    with readable():
        state = protocol.request(request_id)
        if state.status == RequestStatus.NONE:
            fail(explain_revert("UnknownRequest", {"requestId": request_id}))
        return protocol, _units(protocol, state.settlement_token)


@grid_app.command("clear")
def clear(
    request_id: RequestIdArg,
    rpc_url: RpcOption = None,
    key_env: KeyEnvOption = DEFAULT_KEY_ENV,
) -> None:
    """Award the bids in merit order (between gate closure and window start)."""
    protocol, units = _operator_units(rpc_url, key_env, request_id)
    with readable(units):
        protocol.clear(request_id)
        cleared = protocol.clearing(request_id)
    assert cleared is not None  # the transaction above emitted it
    console = _console()
    console.print(
        f"request {request_id} cleared: {format_kw(cleared.awarded_w)} awarded to "
        f"{cleared.accepted_bids} bid(s), clearing price {units.money(cleared.clearing_price)}/kWh",
        highlight=False,
    )
    for award in cleared.awards:
        console.print(
            f"  bid #{award.bid_index} {award.bidder}: {format_kw(award.awarded_w)} at "
            f"{units.money(award.price_per_kwh)}/kWh",
            highlight=False,
        )
    if cleared.awarded_w == 0:
        console.print("  nothing awarded: the whole escrow is refunded (claimable by the operator)")


@grid_app.command("finalize")
def finalize(
    request_id: RequestIdArg,
    rpc_url: RpcOption = None,
    key_env: KeyEnvOption = DEFAULT_KEY_ENV,
) -> None:
    """Settle a reported request once its dispute window has passed."""
    protocol, units = _operator_units(rpc_url, key_env, request_id)
    with readable(units):
        state = protocol.request(request_id)
        if state.status != RequestStatus.REPORTED:
            fail(
                explain_revert(
                    "WrongStatus",
                    {
                        "requestId": request_id,
                        "status": state.status,
                        "expected": RequestStatus.REPORTED,
                    },
                )
            )
        protocol.finalize(request_id)
        settled = protocol.settlement(request_id)
    assert settled is not None  # the transaction above emitted it
    _console().print(
        f"request {request_id} settled: payouts {units.money(settled.payouts)}, fees "
        f"{units.money(settled.fees)}, refund {units.money(settled.refund)} "
        f"(claimable by the operator)",
        highlight=False,
    )


@grid_app.command("cancel")
def cancel(
    request_id: RequestIdArg,
    rpc_url: RpcOption = None,
    key_env: KeyEnvOption = DEFAULT_KEY_ENV,
) -> None:
    """Withdraw an open request before gate closure; its escrow becomes claimable."""
    protocol, units = _operator_units(rpc_url, key_env, request_id)
    with readable(units):
        protocol.cancel_request(request_id)
        refund = protocol.cancellation_refund(request_id)
    _console().print(
        f"request {request_id} cancelled: refund {units.money(refund or 0)} "
        "is claimable by the operator",
        highlight=False,
    )
