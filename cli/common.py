"""What every command shares: one readable error line instead of a traceback, amounts
typed in token units, and the node's settings and keystore password."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer
from rich.console import Console

from gridflex.config import load_settings
from gridflex.errors import ChainUnavailableError, GridFlexError, TransactionReverted
from gridflex.errors_text import explain

if TYPE_CHECKING:
    from gridflex.errors_text import Units
    from node.config import NodeSettings


def fail(message: str, code: int = 1) -> NoReturn:
    """Print `error: message` on one line and exit with `code`."""
    Console(soft_wrap=True).print(f"[red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


@contextmanager
def readable(units: Units | None = None) -> Iterator[None]:
    """Every revert or GridFlex failure inside becomes one readable error line (amounts
    in `units` when given)."""
    try:
        yield
    except TransactionReverted as error:
        fail(explain(error, units))
    except ChainUnavailableError as error:
        fail(f"{error} (check --rpc-url or GRIDFLEX_RPC_URL)")
    except GridFlexError as error:
        fail(str(error))


def to_base_units(value: str, decimals: int, option: str) -> int:
    """`value` typed in token units (`12.5`) as base units, exactly, or a usage error."""
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


def node_settings(data_dir: Path | None) -> NodeSettings:
    """The node's settings, or a one-line error naming each bad setting (exit 1)."""
    from node.config import NodeSettings

    try:
        settings = load_settings(NodeSettings)
    except GridFlexError as error:
        fail(f"configuration: {error}")
    if data_dir is not None:
        settings.data_dir = data_dir
    return settings


def keystore_password(password_env: str | None, configured: str | None, *, confirm: bool) -> str:
    """From the named environment variable, else the configured one, else a prompt."""
    if password_env:
        value = os.environ.get(password_env)
        if value is None:
            fail(f"--password-env {password_env}: that environment variable is not set")
        return value
    if configured:
        return configured
    return str(typer.prompt("keystore password", hide_input=True, confirmation_prompt=confirm))
