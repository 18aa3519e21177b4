"""`gridflex grid ...`: the grid operator's side of the market. Post a flexibility request
(budget approved by permit where the token supports it, and escrowed in the same command),
list and inspect requests, clear, finalize and cancel them. Every revert is one readable
sentence (see `gridflex.errors_text`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from web3.logs import DISCARD

from gridflex.config import get_settings
from gridflex.errors import GridFlexError, TransactionReverted
from gridflex.errors_text import Units, explain, explain_revert, format_kw, format_time

grid_app = typer.Typer(help="Grid operator: post, clear, finalize and cancel flexibility requests.")

DEFAULT_LOCAL_RPC = "http://127.0.0.1:8545"
DEFAULT_KEY_ENV = "GRIDFLEX_OPERATOR_KEY"
PERMIT_DEADLINE_SECONDS = 3600

PERMIT_ABI: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": "nonces",
        "stateMutability": "view",
        "inputs": [{"name": "owner", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    },
    {
        "type": "function",
        "name": "eip712Domain",
        "stateMutability": "view",
        "inputs": [],
        "outputs": [
            {"name": "fields", "type": "bytes1"},
            {"name": "name", "type": "string"},
            {"name": "version", "type": "string"},
            {"name": "chainId", "type": "uint256"},
            {"name": "verifyingContract", "type": "address"},
            {"name": "salt", "type": "bytes32"},
            {"name": "extensions", "type": "uint256[]"},
        ],
    },
    {
        "type": "function",
        "name": "permit",
        "stateMutability": "nonpayable",
        "inputs": [
            {"name": "owner", "type": "address"},
            {"name": "spender", "type": "address"},
            {"name": "value", "type": "uint256"},
            {"name": "deadline", "type": "uint256"},
            {"name": "v", "type": "uint8"},
            {"name": "r", "type": "bytes32"},
            {"name": "s", "type": "bytes32"},
        ],
        "outputs": [],
    },
]


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


def _fail(message: str, code: int = 1) -> NoReturn:
    _console().print(f"[red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


@dataclass
class Session:
    """The operator's handle on the deployment: protocol, and helpers to render amounts."""

    protocol: Any  # gridflex.chain.protocol.Protocol (imported lazily: startup time)

    def units(self, token: str) -> Units:
        contract = self.protocol.erc20(token)
        try:
            symbol = str(contract.functions.symbol().call())
            decimals = int(contract.functions.decimals().call())
        except Exception:  # not a full ERC20 metadata token: raw base units
            return Units(symbol=f"units of {token}", decimals=0)
        return Units(symbol=symbol, decimals=decimals)


def _connect(rpc_url: str | None, key_env: str, *, need_key: bool) -> Session:
    from eth_account import Account
    from web3 import Web3

    from gridflex.chain.client import ChainClient
    from gridflex.chain.deployments import load_deployment
    from gridflex.chain.protocol import Protocol

    settings = get_settings()
    url = rpc_url or settings.rpc_url or DEFAULT_LOCAL_RPC
    key = os.environ.get(key_env)
    if key is None and need_key:
        _fail(f"set {key_env} to the grid operator's private key (hex), or pass --key-env VAR")
    try:
        account = Account.from_key(key) if key else Account.create()
    except (ValueError, TypeError) as error:
        _fail(f"{key_env} does not hold a valid private key: {error}")
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 30}))
    try:
        connected = w3.is_connected()
    except Exception:
        connected = False
    if not connected:
        _fail(f"no chain answers at {url} (check --rpc-url or GRIDFLEX_RPC_URL)")
    try:
        deployment = load_deployment(int(w3.eth.chain_id), settings.deployments_dir)
    except GridFlexError as error:
        _fail(str(error))
    client = ChainClient(w3, account)
    for contract in deployment.contracts.values():
        client.register_abi(contract.abi)
    return Session(Protocol(client, deployment))


@contextmanager
def _readable(units: Units | None = None) -> Iterator[None]:
    """Turn every revert or GridFlex failure inside into one readable error line."""
    try:
        yield
    except TransactionReverted as error:
        _fail(explain(error, units))
    except GridFlexError as error:
        _fail(str(error))


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


def _to_base_units(value: str, decimals: int, option: str) -> int:
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise typer.BadParameter(f"{value!r} is not a number", param_hint=option) from None
    if amount < 0:
        raise typer.BadParameter("must not be negative", param_hint=option)
    scaled = amount.scaleb(decimals)
    if scaled != scaled.to_integral_value():
        raise typer.BadParameter(
            f"{value} has more than the token's {decimals} decimals", param_hint=option
        )
    return int(scaled)


def _supports_permit(session: Session, token: str) -> bool:
    contract = session.protocol.client.contract(token, PERMIT_ABI)
    try:
        contract.functions.nonces(session.protocol.address).call()
        contract.functions.eip712Domain().call()
    except Exception:
        return False
    return True


def _permit(session: Session, token: str, spender: str, amount: int) -> None:
    """Sign an EIP-2612 permit for `amount` and submit it."""
    from eth_account.messages import encode_typed_data

    protocol = session.protocol
    contract = protocol.client.contract(token, PERMIT_ABI)
    _fields, name, version, chain_id, verifying, _salt, _ext = (
        contract.functions.eip712Domain().call()
    )
    owner = protocol.address
    nonce = int(contract.functions.nonces(owner).call())
    now = int(protocol.client.w3.eth.get_block("latest")["timestamp"])
    deadline = now + PERMIT_DEADLINE_SECONDS
    signable = encode_typed_data(
        {"name": name, "version": version, "chainId": chain_id, "verifyingContract": verifying},
        {
            "Permit": [
                {"name": "owner", "type": "address"},
                {"name": "spender", "type": "address"},
                {"name": "value", "type": "uint256"},
                {"name": "nonce", "type": "uint256"},
                {"name": "deadline", "type": "uint256"},
            ]
        },
        {"owner": owner, "spender": spender, "value": amount, "nonce": nonce, "deadline": deadline},
    )
    signed = protocol.client.account.sign_message(signable)
    protocol.send(
        contract.functions.permit(
            owner,
            spender,
            amount,
            deadline,
            signed.v,
            signed.r.to_bytes(32, "big"),
            signed.s.to_bytes(32, "big"),
        )
    )


def _status_name(status: Any) -> str:
    return status.name.lower()


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
    from web3 import Web3

    from gridflex.chain.protocol import Protocol
    from gridflex.rules.settlement import PricingRule
    from gridflex.rules.types import (
        SETTLED_INTERVAL_SECONDS,
        BaselineMethod,
        Direction,
        RequestSpec,
        zone_id,
    )

    if (hours is None) == (intervals is None):
        raise typer.BadParameter("give exactly one of --hours and --intervals")
    interval_seconds = interval_minutes * 60
    if interval_seconds not in SETTLED_INTERVAL_SECONDS:
        lengths = " or ".join(str(s // 60) for s in sorted(SETTLED_INTERVAL_SECONDS))
        raise typer.BadParameter(f"must be {lengths}", param_hint="--interval-minutes")
    if intervals is None:
        assert hours is not None
        length = Decimal(str(hours)) * 3600
        if length <= 0 or length % interval_seconds:
            raise typer.BadParameter(
                f"{hours} h is not a whole number of {interval_minutes}-minute intervals",
                param_hint="--hours",
            )
        duration = int(length)
    else:
        duration = intervals * interval_seconds
    window_start = _parse_time(start)
    power_w = int((Decimal(str(power_kw)) * 1000).to_integral_value())

    session = _connect(rpc_url, key_env, need_key=True)
    protocol: Protocol = session.protocol
    token_address = token or protocol.token.address
    if not Web3.is_address(token_address):
        raise typer.BadParameter(f"{token_address!r} is not an address", param_hint="--token")
    token_address = Web3.to_checksum_address(token_address)
    units = session.units(token_address)
    spec = RequestSpec(
        zone=zone_id(zone),
        power_w=power_w,
        window_start=window_start,
        window_end=window_start + duration,
        price_cap_per_kwh=_to_base_units(price_cap, units.decimals, "--price-cap"),
        gate_closure=window_start - gate_closure_minutes_before * 60,
        settlement_token=token_address,
        direction=Direction.REDUCE_CONSUMPTION
        if direction is DirectionChoice.reduce
        else Direction.INCREASE_CONSUMPTION,
        interval_seconds=interval_seconds,
        availability_price_per_kwh=_to_base_units(
            availability_price, units.decimals, "--availability-price"
        ),
        baseline_method={
            BaselineChoice.mbma: BaselineMethod.MBMA,
            BaselineChoice.caiso: BaselineMethod.CAISO_10_OF_10,
            BaselineChoice.pjm: BaselineMethod.PJM_HIGH_4_OF_5,
        }[baseline],
        pricing_rule=int(
            PricingRule.UNIFORM if pricing is PricingChoice.uniform else PricingRule.PAY_AS_BID
        ),
    )
    budget = protocol.budget_of(spec)
    market = protocol.market
    with _readable(units):
        # Role and parameters first (the contract checks them before pulling the escrow), so
        # nothing is signed or approved for a request that cannot be posted.
        try:
            protocol.client.call(market.functions.createRequest(spec.as_tuple()))
        except TransactionReverted as error:
            if error.error_name not in ("ERC20InsufficientAllowance", "SafeERC20FailedOperation"):
                raise
        balance = protocol.balance_of(token_address)
        if balance < budget:
            _fail(f"insufficient balance: need {units.money(budget)}, have {units.bare(balance)}")
        erc20 = protocol.erc20(token_address)
        allowance = int(erc20.functions.allowance(protocol.address, market.address).call())
        if allowance < budget:
            if no_approve:
                _fail(
                    f"insufficient allowance: need {units.money(budget)}, have "
                    f"{units.bare(allowance)}"
                )
            if _supports_permit(session, token_address):
                _permit(session, token_address, market.address, budget)
                how = "permit"
            else:
                protocol.approve(token_address, market.address, budget)
                how = "approve"
        else:
            how = "existing allowance"
        receipt = protocol.send(market.functions.createRequest(spec.as_tuple()))
    (event,) = market.events.RequestCreated().process_receipt(receipt, errors=DISCARD)
    request_id, escrow = int(event["args"]["requestId"]), int(event["args"]["escrow"])
    console = _console()
    console.print(f"request [bold]{request_id}[/] created", highlight=False)
    console.print(
        f"  {direction.value} {format_kw(power_w)} in {zone}, "
        f"{format_time(spec.window_start)} to {format_time(spec.window_end)}; "
        f"gate closure {format_time(spec.gate_closure)}",
        highlight=False,
    )
    console.print(
        f"  budget {units.money(escrow)} escrowed (via {how}); "
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
    session = _connect(rpc_url, key_env, need_key=mine)
    protocol = session.protocol
    units_cache: dict[str, Units] = {}
    with _readable():
        count = int(protocol.market.functions.requestCount().call())
        table = Table(title=f"requests ({count} in the market)")
        for column in ("id", "status", "operator", "zone", "direction", "power", "window (UTC)",
                       "gate closure", "cap/kWh", "escrow", "bids", "awarded"):  # fmt: skip
            table.add_column(column)
        for request_id in range(1, count + 1):
            state = protocol.request(request_id)
            if mine and state.operator != protocol.address:
                continue
            token = state.settlement_token
            units = units_cache.setdefault(token, session.units(token))
            table.add_row(
                str(request_id),
                _status_name(state.status),
                state.operator,
                "0x" + state.zone.hex()[:8] + "…",
                "reduce" if state.direction == 0 else "increase",
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
    from gridflex.rules.types import RequestStatus

    session = _connect(rpc_url, key_env, need_key=False)
    protocol = session.protocol
    with _readable():
        state = protocol.request(request_id)
        if state.status == RequestStatus.NONE:
            count = int(protocol.market.functions.requestCount().call())
            _fail(
                explain_revert("UnknownRequest", {"requestId": request_id})
                + f" (there are {count} requests)"
            )
        units = session.units(state.settlement_token)
        console = _console()
        params = Table(
            title=f"request {request_id}: {_status_name(state.status)}", show_header=False
        )
        params.add_column("field")
        params.add_column("value")
        rows = [
            ("operator", state.operator),
            ("zone", "0x" + state.zone.hex()),
            ("direction", "reduce" if state.direction == 0 else "increase"),
            ("power", format_kw(state.power_w)),
            ("window", f"{format_time(state.window_start)} to {format_time(state.window_end)}"),
            ("interval", f"{state.interval_seconds // 60} min"),
            ("gate closure", format_time(state.gate_closure)),
            ("baseline", ("mbma", "caiso", "pjm")[state.baseline_method]
             if state.baseline_method < 3 else str(state.baseline_method)),
            ("pricing", "uniform" if state.pricing_rule == 1 else "pay-as-bid"),
            ("token", f"{units.symbol} ({state.settlement_token})"),
            ("price cap", f"{units.money(state.price_cap_per_kwh)}/kWh"),
            ("availability price", f"{units.money(state.availability_price_per_kwh)}/kW/h"),
            ("escrow", units.money(state.escrow)),
            ("awarded", format_kw(state.awarded_w)),
            ("clearing price", f"{units.money(state.clearing_price)}/kWh"),
        ]  # fmt: skip
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
                    units.money(offer.price_per_kwh), format_amount_flex(session, offer.bond),
                    format_kw(award),
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
        flex = session.units(protocol.token.address)
        for line in _settlement_lines(protocol, request_id, units, flex):
            console.print(line, highlight=False)


def format_amount_flex(session: Session, amount: int) -> str:
    """Bid bonds are staked FLEX whatever the settlement token."""
    return session.units(session.protocol.token.address).money(amount)


def _settlement_lines(protocol: Any, request_id: int, units: Units, flex: Units) -> list[str]:
    market = protocol.market
    start = protocol.deployment.deployed_at_block
    settled = market.events.RequestSettled().get_logs(
        from_block=start, argument_filters={"requestId": request_id}
    )
    lines = []
    for log in settled:
        args = log["args"]
        lines.append(
            f"settlement: payouts {units.money(args['payouts'])}, "
            f"fees {units.money(args['fees'])}, "
            f"refund {units.money(args['refund'])}, slashed bonds {flex.money(args['slashed'])}"
        )
    per_bid = market.events.BidSettled().get_logs(
        from_block=start, argument_filters={"requestId": request_id}
    )
    for log in per_bid:
        args = log["args"]
        lines.append(
            f"  bid #{args['bidIndex']}: delivered {args['deliveredWh']:,} Wh, "
            f"utilization {units.money(args['utilization'])}, "
            f"availability {units.money(args['availability'])}, fee {units.money(args['fee'])}"
        )
    cancelled = market.events.RequestCancelled().get_logs(
        from_block=start, argument_filters={"requestId": request_id}
    )
    lines.extend(f"cancelled: refund {units.money(log['args']['refund'])}" for log in cancelled)
    return lines


def _units_of(session: Session, request_id: int) -> Units:
    """Units of the request's token; a readable error if the request does not exist."""
    from gridflex.rules.types import RequestStatus

    state = session.protocol.request(request_id)
    if state.status == RequestStatus.NONE:
        _fail(explain_revert("UnknownRequest", {"requestId": request_id}))
    return session.units(state.settlement_token)


@grid_app.command("clear")
def clear(
    request_id: RequestIdArg,
    rpc_url: RpcOption = None,
    key_env: KeyEnvOption = DEFAULT_KEY_ENV,
) -> None:
    """Award the bids in merit order (between gate closure and window start)."""
    session = _connect(rpc_url, key_env, need_key=True)
    protocol = session.protocol
    with _readable():
        units = _units_of(session, request_id)
    with _readable(units):
        receipt = protocol.clear(request_id)
    events = protocol.market.events
    (cleared,) = events.RequestCleared().process_receipt(receipt, errors=DISCARD)
    args = cleared["args"]
    console = _console()
    console.print(
        f"request {request_id} cleared: {format_kw(args['awardedW'])} awarded to "
        f"{args['acceptedBids']} bid(s), clearing price {units.money(args['clearingPrice'])}/kWh",
        highlight=False,
    )
    for award in events.Awarded().process_receipt(receipt, errors=DISCARD):
        award_args = award["args"]
        console.print(
            f"  bid #{award_args['bidIndex']} {award_args['bidder']}: "
            f"{format_kw(award_args['awardedW'])} at {units.money(award_args['pricePerKWh'])}/kWh",
            highlight=False,
        )
    if args["awardedW"] == 0:
        console.print("  nothing awarded: the whole escrow is refunded (claimable by the operator)")


@grid_app.command("finalize")
def finalize(
    request_id: RequestIdArg,
    rpc_url: RpcOption = None,
    key_env: KeyEnvOption = DEFAULT_KEY_ENV,
) -> None:
    """Settle a reported request once its dispute window has passed."""
    from gridflex.rules.types import RequestStatus

    session = _connect(rpc_url, key_env, need_key=True)
    protocol = session.protocol
    with _readable():
        units = _units_of(session, request_id)
    with _readable(units):
        state = protocol.request(request_id)
        if state.status != RequestStatus.REPORTED:
            _fail(
                explain_revert(
                    "WrongStatus",
                    {
                        "requestId": request_id,
                        "status": state.status,
                        "expected": RequestStatus.REPORTED,
                    },
                )
            )
        receipt = protocol.finalize(request_id)
    (settled,) = protocol.market.events.RequestSettled().process_receipt(receipt, errors=DISCARD)
    args = settled["args"]
    _console().print(
        f"request {request_id} settled: payouts {units.money(args['payouts'])}, fees "
        f"{units.money(args['fees'])}, refund {units.money(args['refund'])} "
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
    session = _connect(rpc_url, key_env, need_key=True)
    protocol = session.protocol
    with _readable():
        units = _units_of(session, request_id)
    with _readable(units):
        receipt = protocol.send(protocol.market.functions.cancelRequest(request_id))
    (event,) = protocol.market.events.RequestCancelled().process_receipt(receipt, errors=DISCARD)
    _console().print(
        f"request {request_id} cancelled: refund {units.money(event['args']['refund'])} "
        "is claimable by the operator",
        highlight=False,
    )
