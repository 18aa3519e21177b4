"""`gridflex explorer`: indexes the chain and the oracles' public records in a background
thread and serves the settlement explorer (pages, JSON API, `/health`)."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated, Any

import typer


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def explorer(
    rpc_url: Annotated[str | None, typer.Option(help="Chain JSON-RPC URL.")] = None,
    deployments_dir: Annotated[
        Path | None, typer.Option(help="Where <chainId>.json deployment records live.")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Directory of the default SQLite file explorer.db.")
    ] = None,
    database_url: Annotated[
        str | None, typer.Option(help="SQLAlchemy URL (default: DATABASE_URL or SQLite file).")
    ] = None,
    oracle: Annotated[
        list[str] | None,
        typer.Option("--oracle", help="Base URL of an oracle's public API (repeatable)."),
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP port.")] = 8000,
    poll_seconds: Annotated[
        float | None, typer.Option(help="Seconds between two indexing passes.")
    ] = None,
) -> None:
    """Serve the settlement explorer until Ctrl-C or SIGTERM."""
    import uvicorn

    from explorer.service import Follower, build_app, build_context
    from explorer.settings import ExplorerSettings
    from gridflex.errors import GridFlexError

    overrides: dict[str, Any] = {
        name: value
        for name, value in (
            ("rpc_url", rpc_url),
            ("deployments_dir", deployments_dir),
            ("data_dir", data_dir),
            ("database_url", database_url),
            ("poll_seconds", poll_seconds),
            ("oracles", ",".join(oracle) if oracle else None),
        )
        if value is not None
    }
    try:
        settings = ExplorerSettings(**overrides)
        context = build_context(settings)
    except (GridFlexError, ValueError) as error:
        typer.secho(f"explorer: {error}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from error
    follower = Follower(context)
    follower.start()
    typer.echo(f"explorer on http://{host}:{port} (indexing {settings.rpc_url})")
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal: with this
    # handler SIGTERM ends as Ctrl-C does, so the follower stops and the exit code is 0.
    signal.signal(signal.SIGTERM, _interrupt)
    app = build_app(context)
    try:
        uvicorn.run(app, host=host, port=port, log_config=None, access_log=False)
    except KeyboardInterrupt:
        pass
    finally:
        follower.stop()
        context.http.close()
        context.engine.dispose()
