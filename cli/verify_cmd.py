"""`gridflex verify` and `gridflex watch`: anyone re-checks a posted report from the chain
and the oracles' public data (`gridflex.verify`), and challenges a provably wrong one.

Exit codes of `verify`: 0 the report checks out, 1 it does not (differences printed),
2 the check could not run (unknown request, no report posted, oracle or chain unreachable,
bad arguments)."""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from gridflex.chain.protocol import Protocol

console = Console()
err_console = Console(stderr=True)

OracleOption = Annotated[
    list[str] | None,
    typer.Option("--oracle", help="Base URL of an oracle API (repeat for several)."),
]
RpcOption = Annotated[
    str | None, typer.Option(help="Chain JSON-RPC URL (default GRIDFLEX_RPC_URL or local).")
]


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[red]error:[/] {message}")
    return typer.Exit(2)


def _protocol(rpc_url: str | None, private_key: str | None = None) -> Protocol:
    """A handle on the deployment of the chain at `rpc_url` (a throwaway account for
    reads when no key is given). Raises typer.Exit(2) with a readable message."""
    from eth_account import Account

    from gridflex.chain.session import LOCAL_RPC_URL, open_protocol
    from gridflex.config import get_settings
    from gridflex.errors import GridFlexError

    settings = get_settings()
    try:
        account = Account.from_key(private_key) if private_key else None
    except ValueError as error:
        raise _fail(f"bad private key: {error}") from error
    try:
        return open_protocol(
            rpc_url or settings.rpc_url or LOCAL_RPC_URL, settings.deployments_dir, account,
            timeout_seconds=10,
        )  # fmt: skip
    except GridFlexError as error:
        raise _fail(str(error)) from error


def verify(
    request_id: Annotated[int, typer.Argument(min=0, help="FlexMarket request id.")],
    oracle: OracleOption = None,
    rpc_url: RpcOption = None,
    round_: Annotated[
        int | None,
        typer.Option("--round", min=0, help="Report round (default: the latest posted)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the verdict as JSON.")] = False,
) -> None:
    """Recompute a posted report from the device-signed readings and the chain: signed
    readings, records, Merkle roots, per-bid totals. Exit 0 ok, 1 differences, 2 error."""
    from gridflex.errors import GridFlexError
    from gridflex.verify import VerifyInputError, verify_request

    if not oracle:
        raise _fail("give at least one oracle URL with --oracle URL")
    protocol = _protocol(rpc_url)
    try:
        verdict = verify_request(protocol, request_id, oracle, round_)
    except VerifyInputError as error:
        raise _fail(str(error)) from error
    except GridFlexError as error:
        raise _fail(f"chain read failed: {error}") from error
    if as_json:
        typer.echo(json.dumps(verdict.to_json(), indent=2))
    else:
        headline = (
            "[bold green]report checks out[/]"
            if verdict.ok
            else f"[bold red]report does not check out: {len(verdict.differences)} difference(s)[/]"
        )
        console.print(
            f"request {verdict.request_id} round {verdict.round}: {headline} "
            f"({verdict.devices_checked} devices, {verdict.readings_checked} signed "
            f"readings; data from {verdict.source})"
        )
        if verdict.differences:
            table = Table()
            for column in ("kind", "device", "bid", "interval", "expected", "reported"):
                table.add_column(column, overflow="fold")
            for d in verdict.differences:
                table.add_row(
                    d.kind,
                    "" if d.device_id is None else str(d.device_id),
                    "" if d.bid_index is None else str(d.bid_index),
                    "" if d.interval_start is None else str(d.interval_start),
                    "" if d.expected is None else str(d.expected),
                    "" if d.reported is None else str(d.reported),
                )
            console.print(table)
            for d in verdict.differences:
                proof = " (challengeable: device-signed proof available)" if d.challenge else ""
                if d.proof is not None:
                    proof = " (provable on-chain in one transaction: DeliveryDispute)"
                console.print(f"- {d.message}{proof}", soft_wrap=True, highlight=False)
    raise typer.Exit(0 if verdict.ok else 1)


def watch(
    oracle: OracleOption = None,
    rpc_url: RpcOption = None,
    key_env: Annotated[
        str,
        typer.Option(help="Environment variable holding the challenger's hex private key."),
    ] = "GRIDFLEX_WATCH_KEY",
    poll_seconds: Annotated[float, typer.Option(min=0.1, help="Seconds between passes.")] = 5.0,
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit.")] = False,
) -> None:
    """Check every posted report while its dispute window is open and challenge one that
    uses a reading its device signed differently; resolve the challenge once its response
    window passed unrebutted (the challenger earns a share)."""
    import httpx

    from gridflex.watch import ReportWatcher, chain_now, public_finder

    if not oracle:
        raise _fail("give at least one oracle URL with --oracle URL")
    key = os.environ.get(key_env, "").strip()
    if not key:
        raise _fail(f"set ${key_env} to the challenger's private key (hex)")
    protocol = _protocol(rpc_url, key)
    with httpx.Client(timeout=10.0) as http:
        watcher = ReportWatcher(
            protocol, public_finder(protocol, oracle, http), chain_now(protocol), poll_seconds
        )
        console.print(f"watching reports as {protocol.address}; oracles {', '.join(oracle)}")
        if once:
            watcher.tick()
        else:
            try:
                watcher.run()
            except KeyboardInterrupt:
                console.print("stopped")
    for result in watcher.challenged:
        console.print(
            f"challenged request {result.request_id} round {result.round}: device "
            f"{result.device_id} interval {result.interval_start}, used "
            f"{result.used_energy_wh} Wh vs signed {result.signed_energy_wh} Wh; "
            f"challenge {result.challenge_id}, rebuttable until {result.response_deadline}"
        )
    for resolved in watcher.resolved:
        console.print(
            f"resolved challenge {resolved.challenge_id}: request {resolved.request_id} round "
            f"{resolved.round} voided, slashed {resolved.slashed_total}"
        )
