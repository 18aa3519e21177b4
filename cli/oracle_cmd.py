"""`gridflex oracle ...`: runs the oracle service (the CLI is where components are wired)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

oracle_app = typer.Typer(
    help="Oracle service: signed meter reading ingest, measurement, committee reports."
)


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
    signer_key_file: Annotated[
        Path | None,
        typer.Option(
            help="File holding this oracle's committee key (hex); or set "
            "GRIDFLEX_ORACLE_SIGNER_KEY. With a key the oracle signs reports and runs the "
            "committee loop (collect signatures, post, finalize).",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    peers: Annotated[
        str | None, typer.Option(help="Comma-separated base URLs of the other oracles.")
    ] = None,
    poll_seconds: Annotated[
        float | None, typer.Option(help="Committee loop period in seconds.")
    ] = None,
    report_delay: Annotated[
        int | None, typer.Option(help="Seconds after a window ends before measuring it.")
    ] = None,
    clock: Annotated[
        str | None, typer.Option(help="`wall` or `chain` (latest block time, for demos).")
    ] = None,
) -> None:
    """Serve the oracle API with uvicorn (one worker: SQLite has one writer anyway)."""
    import uvicorn

    from gridflex.config import load_settings
    from gridflex.errors import GridFlexError
    from oracle.api import create_app
    from oracle.config import OracleSettings

    overrides: dict[str, Any] = {
        name: value
        for name, value in (
            ("database_url", database_url),
            ("rpc_url", rpc_url),
            ("deployments_dir", deployments_dir),
            ("peers", peers),
            ("committee_poll_seconds", poll_seconds),
            ("report_delay_seconds", report_delay),
            ("clock", clock),
        )
        if value is not None
    }
    if signer_key_file is not None:
        overrides["signer_key"] = signer_key_file.read_text().strip()
    try:
        settings = load_settings(OracleSettings, **overrides)
        app = create_app(settings)
    except (GridFlexError, ValueError) as error:
        typer.secho(f"oracle: {error}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from error
    uvicorn.run(app, host=host, port=port, workers=1, log_config=None, access_log=False)
