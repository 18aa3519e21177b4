"""`gridflex oracle ...`: runs the oracle service (the CLI is where components are wired)."""

from __future__ import annotations

from typing import Annotated

import typer

oracle_app = typer.Typer(help="Oracle service: signed meter reading ingest and public reads.")


@oracle_app.command("serve")
def serve(
    port: Annotated[int, typer.Option(help="HTTP port.")] = 8600,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    database_url: Annotated[
        str | None, typer.Option(help="SQLAlchemy URL (default: DATABASE_URL or SQLite file).")
    ] = None,
    rpc_url: Annotated[str | None, typer.Option(help="Chain JSON-RPC URL.")] = None,
    deployments_dir: Annotated[
        str | None, typer.Option(help="Where <chainId>.json deployment records live.")
    ] = None,
) -> None:
    """Serve the ingest API with uvicorn (one worker: SQLite has one writer anyway)."""
    import uvicorn

    from gridflex.errors import GridFlexError
    from oracle.api import create_app
    from oracle.config import OracleSettings

    overrides = {
        name: value
        for name, value in (
            ("database_url", database_url),
            ("rpc_url", rpc_url),
            ("deployments_dir", deployments_dir),
        )
        if value is not None
    }
    try:
        settings = OracleSettings(**overrides)
        app = create_app(settings)
    except (GridFlexError, ValueError) as error:
        typer.secho(f"oracle: {error}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from error
    uvicorn.run(app, host=host, port=port, workers=1, log_config=None, access_log=False)
