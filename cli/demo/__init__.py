"""`gridflex demo`: a whole flexibility network on one machine, in one command.

An embedded Osaka anvil with GridFlex deployed, an oracle committee (each oracle its own
process and SQLite file), device owners' nodes in their own processes, then a story told on
them (see `story.py`), a summary read back from the chain, and the explorer left serving.
Progress goes to stderr; `--json` prints the summary on stdout and exits.
"""

from __future__ import annotations

import json
import shutil
import signal
import tempfile
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console(stderr=True)


class Scenario(StrEnum):
    MARKET = "market"
    FRAUD = "fraud"
    COMMUNITY = "community"


def demo(
    devices: Annotated[int, typer.Option(min=2, max=500, help="Devices across the nodes.")] = 50,
    oracles: Annotated[int, typer.Option(min=1, max=16, help="Seated oracles.")] = 3,
    threshold: Annotated[int, typer.Option(min=1, help="Signatures a report needs (k).")] = 2,
    seed: Annotated[int, typer.Option(help="Seed of the simulated devices' physics.")] = 0,
    scenario: Annotated[
        Scenario,
        typer.Option(
            help="market: two requests settle; fraud: a tampered report; community: an "
            "energy community (200 households) and an aggregator's pool beside owners' nodes."
        ),
    ] = Scenario.MARKET,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary as JSON on stdout, then stop.")
    ] = False,
    explorer_port: Annotated[int, typer.Option(help="Port of the explorer at the end.")] = 8700,
    workdir: Annotated[
        Path | None,
        typer.Option(help="Keep databases and logs here (default: a temp dir, removed)."),
    ] = None,
) -> None:
    """Run a whole GridFlex network locally and tell a flexibility event end to end."""
    from cli.demo.network import DemoNetwork
    from cli.demo.story import Phases, run_community, run_fraud, run_market
    from cli.demo.summary import print_request
    from gridflex.errors import GridFlexError
    from gridflex.logging import configure_logging

    configure_logging("WARNING")  # the phases tell the story; the children log to files

    if not oracles // 2 < threshold <= oracles:
        raise _fail(f"--threshold {threshold} must be a majority of --oracles {oracles}")
    if scenario == Scenario.FRAUD and (oracles, threshold) != (3, 2):
        raise _fail("--scenario fraud runs its own 2-of-3 committee: leave --oracles/--threshold")
    directory = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="gridflex-demo-"))
    directory.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _interrupt)
    started = time.monotonic()
    fraud = None
    pools: list = []
    summaries: list = []
    failed = False
    try:
        with DemoNetwork(directory, seed=seed) as network:
            with Phases(console) as phases:
                if scenario == Scenario.FRAUD:
                    summaries, fraud = run_fraud(network, phases, devices=devices)
                elif scenario == Scenario.COMMUNITY:
                    summaries, pools = run_community(
                        network, phases, devices=devices, oracles=oracles, threshold=threshold
                    )
                else:
                    summaries = run_market(
                        network, phases, devices=devices, oracles=oracles, threshold=threshold
                    )
            seconds = round(time.monotonic() - started, 1)
            if as_json:
                report = {
                    "scenario": str(scenario),
                    "seconds": seconds,
                    "devices": devices,
                    "oracles": len(network.oracles),
                    "threshold": threshold,
                    "processes": [network.anvil.pid, *(c.pid for c in network.children())],
                    "phases": [{"phase": p, "seconds": t} for p, t in phases.timings],
                    "requests": [s.as_json() for s in summaries],
                    "withdrawn": network.withdrawn,
                }
                if fraud is not None:
                    report["fraud"] = fraud.__dict__
                if pools:
                    report["pools"] = [p.__dict__ | {"adds_up": p.adds_up} for p in pools]
                print(json.dumps(report, indent=2))
            else:
                for summary in summaries:
                    print_request(console, summary)
                if fraud is not None:
                    _print_fraud(fraud)
                for pool in pools:
                    _print_pool(pool)
                console.print(
                    f"withdrawn after settlement by nodes, operators and treasury: "
                    f"{network.withdrawn / 10**18:,.4f} FLEX; story told in {seconds:.1f} s"
                )
                _serve_explorer(network, explorer_port)
    except KeyboardInterrupt:
        console.print("stopped: every process the demo started is gone")
        return
    except (RuntimeError, TimeoutError, GridFlexError) as error:
        failed = True  # keep the directory: its logs say why
        console.print(f"[red]demo failed:[/] {error}")
        console.print(f"every process stopped; databases and logs kept in {directory}")
        raise typer.Exit(1) from error
    finally:
        if workdir is None and not failed:
            shutil.rmtree(directory, ignore_errors=True)
    if not all(s.conserved for s in summaries) or not all(p.adds_up for p in pools):
        raise typer.Exit(1)


def _serve_explorer(network: object, port: int) -> None:
    from cli.demo.network import DemoNetwork

    assert isinstance(network, DemoNetwork)
    with console.status("starting the explorer and indexing the chain..."):
        url = network.start_explorer(port)
    console.print(
        f"[bold]explorer: {url}[/]  (every request, bid, delivery and payout; "
        "verify any device record).  Ctrl-C stops everything."
    )
    while True:
        network.check_alive()
        time.sleep(1)


def _print_fraud(fraud: object) -> None:
    from cli.demo.story import FraudSummary

    assert isinstance(fraud, FraudSummary)
    console.print(
        f"fraud: report round {fraud.voided_round} of request {fraud.request_id} used "
        f"{fraud.forged_energy_wh} Wh for device {fraud.device_id} at {fraud.interval_start}; "
        f"the device signed {fraud.signed_energy_wh} Wh. Challenge {fraud.challenge_id} by "
        f"{fraud.challenger}: voided, {len(fraud.slashed_oracles)} signers slashed "
        f"{fraud.slashed_total / 10**18:,.2f} FLEX, challenger paid "
        f"{fraud.challenger_reward / 10**18:,.2f} FLEX."
    )


def _print_pool(pool: object) -> None:
    from cli.demo.story import PoolSummary

    assert isinstance(pool, PoolSummary)
    flex = 10**18
    console.print(
        f"pool {pool.pool_id} {pool.name}: {pool.households} households, {pool.devices} "
        f"devices; bid {pool.bid_index} paid {pool.payout / flex:,.4f} FLEX: commission "
        f"{pool.commission_bps / 100:g}% = {pool.commission / flex:,.4f}, {pool.claims} "
        f"members claimed {pool.claimed / flex:,.4f}, dust {pool.dust} base units "
        f"({'adds up' if pool.adds_up else 'DOES NOT ADD UP'})"
    )


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/] {message}")
    return typer.Exit(2)
