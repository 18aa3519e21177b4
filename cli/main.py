"""The `gridflex` command: one typer app whose sub-apps wire the components together."""

from __future__ import annotations

import signal
from typing import Annotated

import typer
from rich.console import Console

from cli.demo import demo
from cli.deploy_cmd import deploy
from cli.explorer_cmd import explorer
from cli.grid_cmd import grid_app
from cli.node_cmd import node_app
from cli.oracle_cmd import oracle_app
from cli.pool_cmd import pool_app
from cli.verify_cmd import verify, watch
from gridflex.config import get_settings
from gridflex.errors import ConfigurationError
from gridflex.logging import configure_logging

console = Console()

app = typer.Typer(
    name="gridflex",
    help="GridFlex: a decentralized energy-flexibility network.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
chain_app = typer.Typer(help="Local chain (anvil) for development, tests and demos.")
app.add_typer(chain_app, name="chain")
app.add_typer(grid_app, name="grid")
app.add_typer(node_app, name="node")
app.add_typer(oracle_app, name="oracle")
app.add_typer(pool_app, name="pool")
app.command("deploy")(deploy)
app.command("demo")(demo)
app.command("verify")(verify)
app.command("watch")(watch)
app.command("explorer")(explorer)


@app.callback()
def main(
    log_level: Annotated[
        str | None,
        typer.Option("--log-level", help="DEBUG, INFO, WARNING... (default GRIDFLEX_LOG_LEVEL)"),
    ] = None,
    log_format: Annotated[
        str | None,
        typer.Option(
            "--log-format",
            help="console or json: one JSON object a line (default GRIDFLEX_LOG_FORMAT).",
        ),
    ] = None,
) -> None:
    """Configure structured logging (stderr) before any command runs."""
    try:
        settings = get_settings()
    except ConfigurationError as error:
        typer.secho(f"gridflex: configuration: {error}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from error
    chosen_format = log_format or settings.log_format
    if chosen_format not in ("console", "json"):
        typer.secho(f"gridflex: --log-format {chosen_format!r}: use console or json", err=True)
        raise typer.Exit(2)
    configure_logging(log_level or settings.log_level, json_lines=chosen_format == "json")


def _interrupt_on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM (e.g. from a supervisor) takes the same clean path as Ctrl-C."""
    raise KeyboardInterrupt


@chain_app.command("up")
def chain_up(
    port: Annotated[int, typer.Option(help="JSON-RPC port.")] = 8545,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    block_time: Annotated[
        float | None, typer.Option(help="Seconds per block; default mines on each tx.")
    ] = None,
    with_deploy: Annotated[
        bool,
        typer.Option("--deploy/--no-deploy", help="Deploy GridFlex and write deployments/."),
    ] = True,
) -> None:
    """Run a local Osaka anvil in the foreground until Ctrl-C, with GridFlex deployed."""
    from cli.deploy_cmd import deploy
    from gridflex.chain.anvil import AnvilProcess, anvil_dev_account

    anvil = AnvilProcess(port=port, host=host, block_time=block_time)
    signal.signal(signal.SIGTERM, _interrupt_on_sigterm)
    with anvil:
        console.print(f"[bold green]anvil (osaka) running[/] at [cyan]{anvil.url}[/]")
        console.print(
            f"chain id {anvil.chain_id}; governance account {anvil_dev_account(0).address}"
        )
        if with_deploy:
            deploy(rpc_url=anvil.url, private_key=None)
        console.print("Ctrl-C to stop.")
        try:
            exit_code = anvil.wait()
        except KeyboardInterrupt:
            console.print("\nstopping anvil...")
            return
    if exit_code != 0:
        console.print(f"[red]anvil exited with code {exit_code}[/]")
        raise typer.Exit(exit_code)


if __name__ == "__main__":
    app()
