"""`gridflex deploy`: compile, deploy the protocol contracts and write
`deployments/<chainId>.json` for every other component to read."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from gridflex.config import get_settings

console = Console()


def deploy(
    rpc_url: Annotated[
        str | None, typer.Option(help="JSON-RPC URL (default GRIDFLEX_RPC_URL or local anvil).")
    ] = None,
    private_key: Annotated[
        str | None,
        typer.Option(
            envvar="GRIDFLEX_DEPLOYER_KEY",
            help="Governance key (hex). Defaults to anvil's account 0 on chain 31337 only.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Deploy the GridFlex contracts and record their addresses and ABIs."""
    from eth_account import Account

    from gridflex.chain.anvil import LOCAL_CHAIN_ID, anvil_dev_account
    from gridflex.chain.client import ChainClient
    from gridflex.chain.compiler import load_artifacts
    from gridflex.chain.connect import chain_id_at, connect
    from gridflex.chain.deploy import ProtocolParams, deploy_protocol
    from gridflex.chain.deployments import save_deployment
    from gridflex.chain.session import LOCAL_RPC_URL
    from gridflex.errors import ChainUnavailableError, GridFlexError

    settings = get_settings()
    url = rpc_url or settings.rpc_url or LOCAL_RPC_URL
    w3 = connect(url)
    try:
        chain_id = chain_id_at(w3, url)
    except ChainUnavailableError as error:
        console.print(f"[red]{error}[/] (start one with `gridflex chain up`)")
        raise typer.Exit(1) from error
    if private_key is not None:
        governance = Account.from_key(private_key)
    elif chain_id == LOCAL_CHAIN_ID:
        governance = anvil_dev_account(0)
    else:
        console.print(f"[red]chain {chain_id} is not local: pass --private-key[/]")
        raise typer.Exit(2)
    try:
        with console.status("compiling contracts..."):
            artifacts = load_artifacts()
        client = ChainClient(w3, governance, artifacts)
        with console.status(f"deploying to chain {chain_id} at {url}..."):
            # Local chains get short windows: tests and demos move time with anvil.
            params = ProtocolParams.local() if chain_id == LOCAL_CHAIN_ID else ProtocolParams()
            deployment = deploy_protocol(client, params, artifacts)
        if deployment.rpc_url is None and chain_id == LOCAL_CHAIN_ID:
            deployment.rpc_url = url
        path = save_deployment(deployment, settings.deployments_dir)
    except GridFlexError as error:
        console.print(f"[red]deploy failed:[/] {error}")
        raise typer.Exit(1) from error

    table = Table(title=f"GridFlex on chain {deployment.chain_id}")
    table.add_column("contract")
    table.add_column("address", style="cyan")
    for name, contract in sorted(deployment.contracts.items()):
        table.add_row(name, contract.address)
    console.print(table)
    console.print(f"written to [bold]{path}[/]")
