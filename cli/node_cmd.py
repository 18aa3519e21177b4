"""`gridflex node ...`: the device owner's node. Wires the node package to the chain
(deployment record, RPC) and to the oracles; every failure is one readable line."""

from __future__ import annotations

import json
import signal
import time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import structlog
import typer
from rich.console import Console
from rich.table import Table

from cli.common import fail, keystore_password, node_settings
from gridflex.config import get_settings
from gridflex.errors import ChainUnavailableError, GridFlexError
from node.config import NodeSettings

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from gridflex.chain.protocol import BidSettlement, Protocol
    from gridflex.errors_text import Units
    from node.state import NodeState

console = Console()
log = structlog.get_logger("gridflex.node")
node_app = typer.Typer(help="Device-owner node: keys, registration, signed metering.")


DataDirOption = Annotated[
    Path | None, typer.Option("--data-dir", help="Node data dir (default GRIDFLEX_NODE_DATA_DIR).")
]
PasswordEnvOption = Annotated[
    str | None,
    typer.Option(
        "--password-env",
        help="Read the keystore password from this env var "
        "(else GRIDFLEX_NODE_PASSWORD, else prompt).",
    ),
]


@node_app.command("init")
def node_init(
    devices: Annotated[int, typer.Option(min=1, help="Number of device keys.")] = 5,
    p256: Annotated[int, typer.Option(min=0, help="How many of them use P-256 keys.")] = 0,
    zone: Annotated[str, typer.Option(help="Grid zone name of the devices.")] = "NL-AMS-01",
    data_dir: DataDirOption = None,
    password_env: PasswordEnvOption = None,
) -> None:
    """Create the owner wallet and device keys in encrypted keystores; print addresses."""
    from node.keystore import create_node_keys

    settings = node_settings(data_dir)
    password = keystore_password(password_env, settings.password, confirm=True)
    try:
        state = create_node_keys(
            settings.data_dir, password, devices=devices, p256=p256, zone=zone,
            scrypt_n=settings.scrypt_n,
        )  # fmt: skip
    except (GridFlexError, ValueError) as error:
        fail(str(error))
    # Plain lines, not a table: keys must never be truncated by a narrow terminal.
    console.print(f"node keys in [bold]{settings.data_dir}[/]")
    console.print(f"owner  secp256k1  {state.owner}", soft_wrap=True)
    for device in state.devices:
        console.print(
            f"{device.name}  {device.kind.name}  {device.capacity_w} W  "
            f"{device.key_type.name.lower()}  {device.public_key}",
            soft_wrap=True,
        )
    console.print(
        f"fund the owner [cyan]{state.owner}[/] with gas and FLEX, then `gridflex node register`"
    )


def _parse_flex(amount: str, decimals: int) -> int:
    try:
        value = Decimal(amount) * 10**decimals
    except InvalidOperation:
        fail(f"--stake {amount!r} is not a number")
    if value < 0 or value != value.to_integral_value():
        fail(f"--stake {amount!r} must be a non-negative amount of FLEX")
    return int(value)


@node_app.command("register")
def node_register(
    stake: Annotated[str, typer.Option(help="FLEX to stake as the owner's bond.")] = "0",
    rpc_url: Annotated[str | None, typer.Option(help="Chain JSON-RPC URL.")] = None,
    data_dir: DataDirOption = None,
    password_env: PasswordEnvOption = None,
) -> None:
    """Register every device on-chain with its proof of key possession, then stake."""
    from gridflex.chain.session import CHAIN_CALL_ERRORS
    from node.keystore import load_node
    from node.registration import register_devices

    settings = node_settings(data_dir)
    password = keystore_password(password_env, settings.password, confirm=False)
    try:
        state, owner, keys = load_node(settings.data_dir, password)
    except GridFlexError as error:
        fail(str(error))
    protocol = _protocol(
        settings, rpc_url, owner, expected_chain_id=settings.chain_id or state.chain_id
    )
    chain_id = protocol.deployment.chain_id
    try:
        registry = protocol.registry.address
        if state.registry not in (None, registry):
            fail(f"devices are registered at registry {state.registry}, not {registry}")
        register_devices(protocol, state, keys, settings.data_dir)
        stake_amount = _parse_flex(stake, _units(protocol, protocol.token.address).decimals)
        if stake_amount:
            protocol.stake(stake_amount)
    except GridFlexError as error:
        fail(str(error))
    except CHAIN_CALL_ERRORS as error:
        fail(f"chain call failed: {error}")
    table = Table(title=f"devices registered on chain {chain_id} (registry {registry})")
    for column in ("name", "device id", "kind", "capacity W", "key"):
        table.add_column(column)
    for device in state.devices:
        table.add_row(
            device.name, str(device.device_id), device.kind.name, str(device.capacity_w),
            device.key_type.name,
        )  # fmt: skip
    console.print(table)
    if stake_amount:
        console.print(f"staked {stake} FLEX from {owner.address}")


@node_app.command("stream")
def node_stream(
    oracle: Annotated[
        list[str] | None,
        typer.Option(
            "--oracle", help="Oracle base URL (repeat; default GRIDFLEX_NODE_ORACLE_URLS)."
        ),
    ] = None,
    backfill_hours: Annotated[
        float, typer.Option(min=0, help="Sign this many hours of history before `--end`.")
    ] = 24.0,
    end: Annotated[
        int | None, typer.Option(help="End of the history (unix s; default now).")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Give up draining after this many s.")] = 300.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    data_dir: DataDirOption = None,
    password_env: PasswordEnvOption = None,
) -> None:
    """Sign the simulated devices' readings for the backfill window and send them to every
    oracle until all acknowledged (time compressed: a day is produced instantly)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

    from node.builder import stream_history

    settings = node_settings(data_dir)
    oracle_urls = list(oracle or settings.oracle_urls)
    if not oracle_urls:
        fail("no oracle: pass --oracle URL or set GRIDFLEX_NODE_ORACLE_URLS")
    password = keystore_password(password_env, settings.password, confirm=False)
    history_end = end if end is not None else int(time.time())
    history_start = history_end - int(backfill_hours * 3600)
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        console=console, disable=as_json,
    )  # fmt: skip
    tasks: dict[str, TaskID] = {}

    def show(sent: dict[str, tuple[int, int]]) -> None:
        for url, (done, total) in sent.items():
            if url not in tasks:
                tasks[url] = progress.add_task(url, total=total)
            progress.update(tasks[url], completed=done)

    try:
        with progress:
            result = stream_history(
                settings, password, oracle_urls, history_start, history_end,
                timeout_s=timeout, on_progress=show,
            )  # fmt: skip
    except GridFlexError as error:
        fail(str(error))
    signed_units, stats, dead_letters = result.signed_units, result.stats, result.dead_letters
    summary = {
        "signedUnits": signed_units,
        "ackedUnits": stats.acked,
        "duplicates": stats.duplicates,
        "rejectedUnits": stats.rejected,
        "retries": stats.retries,
        "deadLetters": dead_letters,
        "oracles": oracle_urls,
    }
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        console.print(
            f"signed {signed_units} units; acked {stats.acked} across {len(oracle_urls)} "
            f"oracle(s); {stats.rejected} rejected; {stats.retries} retries"
        )
    if stats.rejected:
        fail(f"{stats.rejected} unit(s) rejected by an oracle (see the dead letters)", 3)


# ─── Run ─────────────────────────────────────────────────────────────────────────────


def _run_status(runner: object) -> Table:
    """Devices (power now, committed), current commitments and claimable earnings."""
    from gridflex.errors_text import format_time
    from node.runner import NodeRunner
    from node.strategy import peak_committed_w

    assert isinstance(runner, NodeRunner)
    now = runner.chain_time()
    commitments = runner.commitments()
    table = Table(title=f"node {runner.protocol.address} · chain time {format_time(now)}")
    for column in ("device id", "kind", "capacity W", "power W now", "committed W (peak)"):
        table.add_column(column)
    for device in runner.devices:
        did = device.device_id
        table.add_row(
            str(did), device.commanded.kind.name, str(device.commanded.capacity_w),
            f"{device.commanded.power_w(now):,.0f}",
            str(peak_committed_w(commitments, did, now, 2**62)),
        )  # fmt: skip
    for c in commitments:
        table.add_row(
            f"request {c.request_id}", f"device {c.device_id}", f"{c.power_w} W",
            format_time(c.window_start), format_time(c.window_end),
        )  # fmt: skip
    if not commitments:
        table.caption = "no current commitments"
    earnings = [f"{amount} claimable in {token}" for token, amount in runner.claimable().items()]
    table.caption = "; ".join(filter(None, [table.caption, *earnings])) or "no earnings yet"
    return table


@node_app.command("run")
def node_run(
    oracle: Annotated[
        list[str] | None,
        typer.Option(
            "--oracle", help="Oracle base URL (repeat; default GRIDFLEX_NODE_ORACLE_URLS)."
        ),
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="One tick, print the status, exit.")] = False,
    poll_seconds: Annotated[float, typer.Option(min=0.1, help="Seconds between ticks.")] = 5.0,
    history_hours: Annotated[
        float,
        typer.Option(
            min=0,
            help="On a new node, also sign this much history before now (baselines need "
            "past days; simulated devices compute it instantly), never before the devices' "
            "registration (oracles refuse such readings).",
        ),
    ] = 1.0,
    rpc_url: Annotated[str | None, typer.Option("--rpc-url", help="Chain JSON-RPC URL.")] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            min=1,
            max=65_535,
            help="Serve Prometheus metrics on 127.0.0.1:PORT/metrics while running.",
        ),
    ] = None,
    data_dir: DataDirOption = None,
    password_env: PasswordEnvOption = None,
) -> None:
    """Run the node: watch the market, bid, dispatch awards, attest and send readings.

    On a terminal a live status table; otherwise (a service, the demo) one log line per
    tick that did something. SIGTERM stops it like Ctrl-C: the node database is closed."""
    from rich.live import Live

    from node.builder import build_node
    from node.metrics import NodeMetrics

    settings = node_settings(data_dir)
    oracle_urls = list(oracle or settings.oracle_urls)
    if not oracle_urls:
        fail("no oracle: pass --oracle URL or set GRIDFLEX_NODE_ORACLE_URLS")
    password = keystore_password(password_env, settings.password, confirm=False)
    try:
        runner = build_node(
            settings, password, rpc_url=_rpc_url(settings, rpc_url), oracle_urls=oracle_urls,
            deployments_dir=get_settings().deployments_dir, history_hours=history_hours,
        )  # fmt: skip
    except GridFlexError as error:
        fail(_with_rpc_hint(error))
    metrics = NodeMetrics()
    if metrics_port is not None:
        try:
            metrics.serve(metrics_port)
        except OSError as error:
            runner.close()
            fail(f"--metrics-port {metrics_port}: {error.strerror or error}")
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        if once:
            metrics.observe_tick(runner, runner.tick())
            console.print(_run_status(runner))
            return
        if not console.is_terminal:
            while True:
                report = runner.tick()
                metrics.observe_tick(runner, report)
                if report.bids_placed or report.orders_scheduled or report.units_signed:
                    log.info("tick", **_tick_fields(report))
                time.sleep(poll_seconds)
        with Live(_run_status(runner), console=console, refresh_per_second=1) as live:
            while True:
                metrics.observe_tick(runner, runner.tick())
                live.update(_run_status(runner))
                time.sleep(poll_seconds)
    except KeyboardInterrupt:
        pass
    finally:
        runner.close()


def _stop_on_sigterm(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _tick_fields(report: object) -> dict[str, object]:
    from node.runner import TickReport

    assert isinstance(report, TickReport)
    return {
        "chain_time": report.now,
        "bids_placed": report.bids_placed,
        "orders_scheduled": report.orders_scheduled,
        "dispatch": [f"{e.action} device {e.device_id}" for e in report.dispatch],
        "units_signed": report.units_signed,
    }


# ─── Status, earnings, withdraw ──────────────────────────────────────────────────────────

RpcOption = Annotated[str | None, typer.Option("--rpc-url", help="Chain JSON-RPC URL.")]


def _load_state_or_fail(settings: NodeSettings) -> NodeState:
    from node.state import load_state

    try:
        return load_state(settings.data_dir)
    except GridFlexError as error:
        fail(str(error))


def _rpc_url(settings: NodeSettings, rpc_url: str | None) -> str:
    from gridflex.chain.session import LOCAL_RPC_URL

    return rpc_url or settings.rpc_url or get_settings().rpc_url or LOCAL_RPC_URL


def _with_rpc_hint(error: GridFlexError) -> str:
    if isinstance(error, ChainUnavailableError):
        return f"{error} (check --rpc-url or GRIDFLEX_NODE_RPC_URL)"
    return str(error)


def _protocol(
    settings: NodeSettings,
    rpc_url: str | None,
    account: LocalAccount | None = None,
    *,
    expected_chain_id: int | None = None,
) -> Protocol:
    """The deployment of the chain at the RPC, as `account` (read-only: a throwaway one)."""
    from gridflex.chain.session import open_protocol

    try:
        return open_protocol(
            _rpc_url(settings, rpc_url), get_settings().deployments_dir, account,
            expected_chain_id=expected_chain_id,
        )  # fmt: skip
    except GridFlexError as error:
        fail(_with_rpc_hint(error))


def _units(protocol: Protocol, token: str) -> Units:
    from gridflex.errors_text import Units

    return Units.of_token(token, protocol.token_metadata(token))


def _known_tokens(
    protocol: Protocol, settled: list[BidSettlement], extra: list[str]
) -> tuple[list[str], dict[int, str]]:
    """Every token the owner may hold payouts in (FLEX, `extra`, the settled requests'),
    and the settlement token of each settled request."""
    request_tokens = {
        request_id: protocol.request(request_id).settlement_token
        for request_id in dict.fromkeys(bid.request_id for bid in settled)
    }
    tokens = [protocol.token.address, *extra, *request_tokens.values()]
    return list(dict.fromkeys(tokens)), request_tokens


@node_app.command("strategy")
def node_strategy(
    device: Annotated[str, typer.Argument(help="Device name, as `gridflex node status` shows.")],
    min_price_per_kwh: Annotated[
        int | None,
        typer.Option(help="Bidding floor, settlement-token base units per kWh."),
    ] = None,
    max_share_pct: Annotated[
        float | None, typer.Option(help="Largest share of the device's capacity to offer, 0-100.")
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Set a device's bidding strategy (used by `gridflex node run`), or show it."""
    from node.state import save_state

    settings = node_settings(data_dir)
    state = _load_state_or_fail(settings)
    names = [record.name for record in state.devices]
    if device not in names:
        fail(f"no device named {device!r} in this node (have: {', '.join(names)})")
    if min_price_per_kwh is not None and min_price_per_kwh < 0:
        fail("--min-price-per-kwh must be zero or positive")
    if max_share_pct is not None and not 0 < max_share_pct <= 100:
        fail("--max-share-pct must be above 0 and at most 100")
    record = state.devices[names.index(device)]
    if min_price_per_kwh is not None:
        record.min_price_per_kwh = min_price_per_kwh
    if max_share_pct is not None:
        record.max_share_bps = round(max_share_pct * 100)
    if min_price_per_kwh is not None or max_share_pct is not None:
        save_state(state, settings.data_dir)
    console.print(
        f"{record.name}: bids from {record.min_price_per_kwh} base units/kWh, "
        f"offers at most {record.max_share_bps / 100:g}% of {record.capacity_w / 1000:g} kW"
    )


@node_app.command("status")
def node_status(data_dir: DataDirOption = None) -> None:
    """Print the node's devices, capacity and current commitments once."""
    import sqlite3

    from gridflex.errors_text import format_time
    from node.strategy import CommitmentStore

    settings = node_settings(data_dir)
    state = _load_state_or_fail(settings)
    commitments = []
    if settings.outbox_path.is_file():
        with sqlite3.connect(settings.outbox_path) as db:
            commitments = CommitmentStore(db).all()
    committed: dict[int, int] = {}
    for c in commitments:
        committed[c.device_id] = max(committed.get(c.device_id, 0), c.power_w)
    devices = Table(title=f"node {state.owner} · zone {state.zone} · chain {state.chain_id or '-'}")
    for column in ("name", "device id", "kind", "capacity W", "committed W (peak)"):
        devices.add_column(column)
    for device in state.devices:
        did = device.device_id
        devices.add_row(
            device.name, "-" if did is None else str(did), device.kind.name,
            str(device.capacity_w), str(committed.get(did, 0)) if did is not None else "-",
        )  # fmt: skip
    console.print(devices)
    console.print(f"capacity {sum(d.capacity_w for d in state.devices):,} W")
    if not commitments:
        console.print("no current commitments")
        return
    table = Table(title="current commitments")
    for column in ("request", "device id", "power W", "window start", "window end"):
        table.add_column(column)
    for c in commitments:
        table.add_row(
            str(c.request_id), str(c.device_id), str(c.power_w),
            format_time(c.window_start), format_time(c.window_end),
        )  # fmt: skip
    console.print(table)


@node_app.command("earnings")
def node_earnings(
    token: Annotated[
        list[str] | None, typer.Option("--token", help="Also show this token (repeat).")
    ] = None,
    rpc_url: RpcOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Print claimable payouts per token and the owner's settled bids once."""
    from gridflex.chain.session import CHAIN_CALL_ERRORS

    settings = node_settings(data_dir)
    state = _load_state_or_fail(settings)
    protocol = _protocol(settings, rpc_url)
    try:
        settled = protocol.bid_settlements(bidder=state.owner)
        tokens, request_tokens = _known_tokens(protocol, settled, list(token or []))
        claimable = {t: protocol.claimable(t, state.owner) for t in tokens}
        units = {t: _units(protocol, t) for t in tokens}
    except CHAIN_CALL_ERRORS as error:
        fail(f"chain call failed: {error}")
    table = Table(title=f"claimable by {state.owner}")
    for column in ("token", "claimable", "settled payouts"):
        table.add_column(column)
    for t in tokens:
        paid = sum(bid.payout for bid in settled if request_tokens[bid.request_id] == t)
        table.add_row(
            f"{units[t].symbol} ({t})", units[t].money(claimable[t]), units[t].money(paid)
        )
    console.print(table)
    if not settled:
        console.print("no settled bids yet")
        return
    bids = Table(title="settled bids")
    for column in ("request", "bid", "payout"):
        bids.add_column(column)
    for bid in settled:
        bids.add_row(
            str(bid.request_id), str(bid.bid_index),
            units[request_tokens[bid.request_id]].money(bid.payout),
        )  # fmt: skip
    console.print(bids)


@node_app.command("withdraw")
def node_withdraw(
    token: Annotated[
        str | None,
        typer.Option("--token", help="Token address (default: every token with a payout)."),
    ] = None,
    rpc_url: RpcOption = None,
    data_dir: DataDirOption = None,
    password_env: PasswordEnvOption = None,
) -> None:
    """Pull the owner's payouts from the market."""
    from eth_utils import is_address, to_checksum_address

    from gridflex.chain.session import CHAIN_CALL_ERRORS
    from gridflex.errors import TransactionReverted
    from gridflex.errors_text import explain
    from node.keystore import load_owner

    settings = node_settings(data_dir)
    state = _load_state_or_fail(settings)
    password = keystore_password(password_env, settings.password, confirm=False)
    try:
        owner = load_owner(settings.data_dir, password)
    except GridFlexError as error:
        fail(str(error))
    protocol = _protocol(settings, rpc_url, owner)
    try:
        if token is not None:
            if not is_address(token):
                fail(f"--token {token!r} is not an address")
            tokens = [to_checksum_address(token)]
        else:
            known, _ = _known_tokens(protocol, protocol.bid_settlements(bidder=state.owner), [])
            tokens = [t for t in known if protocol.claimable(t, state.owner) > 0]
            if not tokens:
                fail(f"nothing to withdraw for {state.owner}")
        for t in tokens:
            units = _units(protocol, t)
            try:
                amount = protocol.withdraw(t)
            except TransactionReverted as error:
                fail(explain(error, units))
            console.print(f"withdrew {units.money(amount)} to {state.owner}")
    except CHAIN_CALL_ERRORS as error:
        fail(f"chain call failed: {error}")
