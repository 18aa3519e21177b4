"""Readable sentences for GridFlex reverts: one table from custom-error name to a message
with units, shared by every CLI (grid operator, node, oracle). The table is data
(`revert_sentences.toml`, one template per error); the few sentences that pick their words
from the arguments are the functions in `EXPLAINERS`.

`explain(error, units)` turns a `TransactionReverted` into a sentence; amounts are rendered
in the settlement token (`Units`), power in kW, times in UTC."""

from __future__ import annotations

import string
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eth_utils import keccak

from gridflex.errors import TransactionReverted
from gridflex.rules.types import RequestStatus

if TYPE_CHECKING:
    from gridflex.chain.protocol import TokenMetadata

KNOWN_ROLES = (
    "GRID_OPERATOR_ROLE",
    "DISPUTE_ROLE",
    "LOCKER_ROLE",
    "SLASHER_ROLE",
)
ROLE_NAMES: dict[bytes, str] = {keccak(text=name): name for name in KNOWN_ROLES}
ROLE_NAMES[b"\x00" * 32] = "DEFAULT_ADMIN_ROLE"


def format_amount(amount: int, decimals: int, symbol: str = "") -> str:
    """`1200 * 10**18` -> '1,200.00 FLEX': two decimals, more only when they are needed."""
    value = Decimal(int(amount)).scaleb(-decimals)
    text = (
        f"{value:,.2f}" if value == value.quantize(Decimal("0.01")) else f"{value.normalize():,f}"
    )
    return f"{text} {symbol}".rstrip()


def format_time(timestamp: int) -> str:
    """Unix seconds -> '2026-11-25 10:45 UTC' (seconds shown only when not zero)."""
    moment = datetime.fromtimestamp(int(timestamp), UTC)
    pattern = "%Y-%m-%d %H:%M UTC" if moment.second == 0 else "%Y-%m-%d %H:%M:%S UTC"
    return moment.strftime(pattern)


def format_kw(power_w: int) -> str:
    return f"{Decimal(int(power_w)).scaleb(-3).normalize():,f} kW"


def status_name(value: Any) -> str:
    """A request status as the CLI shows it ('open', 'settled'...); the number if unknown."""
    try:
        return RequestStatus(int(value)).name.lower()
    except ValueError:
        return str(int(value))


def _bytes32_text(value: Any) -> str:
    raw = bytes(value)
    return raw.rstrip(b"\x00").decode("ascii", errors="replace") or "0x" + raw.hex()


@dataclass(frozen=True)
class Units:
    """How to render token amounts in messages (the request's settlement token)."""

    symbol: str = "FLEX"
    decimals: int = 18

    def money(self, amount: int) -> str:
        return format_amount(amount, self.decimals, self.symbol)

    def bare(self, amount: int) -> str:
        return format_amount(amount, self.decimals)

    @classmethod
    def of_token(cls, token: str, metadata: TokenMetadata | None) -> Units:
        """Units of `token` (`Protocol.token_metadata`): raw base units without metadata."""
        if metadata is None:
            return cls(f"units of {token}", 0)
        return cls(metadata.symbol, metadata.decimals)


Explainer = Callable[[dict[str, Any], Units], str]


def _role(args: dict[str, Any], units: Units) -> str:
    role = ROLE_NAMES.get(
        bytes(args.get("neededRole", b"")), "0x" + bytes(args["neededRole"]).hex()
    )
    account = args.get("account", "this account")
    if role == "GRID_OPERATOR_ROLE":
        return f"not a grid operator: {account} lacks GRID_OPERATOR_ROLE (ask governance for it)"
    return f"not allowed: {account} lacks {role}"


def _gate_closure(args: dict[str, Any], units: Units) -> str:
    gate, now, start = int(args["gateClosure"]), int(args["now_"]), int(args["windowStart"])
    if gate <= now:
        return (
            f"gate closure has passed: {format_time(gate)} is not after "
            f"chain time {format_time(now)}"
        )
    return f"gate closure {format_time(gate)} is after the window start {format_time(start)}"


def _not_expirable(args: dict[str, Any], units: Units) -> str:
    expires = int(args["expiresAt"])
    when = f"before {format_time(expires)}" if expires else "in its state"
    return f"request {args['requestId']} ({status_name(args['status'])}) cannot expire {when}"


EXPLAINERS: dict[str, Explainer] = {
    # Sentences that choose their words from the arguments; every other error's sentence
    # is a template in revert_sentences.toml.
    "InvalidGateClosure": _gate_closure,
    "NotExpirable": _not_expirable,
    "NothingToWithdraw": lambda a, u: f"nothing to withdraw for {a.get('account', 'this account')}",
    "DeviceActiveStateUnchanged": lambda a, u: (
        f"device {a['deviceId']} is already {'active' if a['active'] else 'inactive'}"
    ),
    "NotPendingOwner": lambda a, u: (
        f"device {a['deviceId']} is not offered to {a['caller']}"
        + (f" (it is offered to {a['pendingOwner']})" if int(a["pendingOwner"], 16) else "")
    ),
    "MissingPrecompile": lambda a, u: (
        f"the chain lacks precompile {a.get('arg0', '')} (needs an Osaka-compatible chain)"
    ),
    "AccessControlUnauthorizedAccount": _role,
}

TEMPLATES: dict[str, str] = tomllib.loads(
    Path(__file__).with_name("revert_sentences.toml").read_text(encoding="utf-8")
)
"""Custom-error name -> sentence, `str.format` style over the error's arguments by ABI name;
a field's spec says how to render it (see `SentenceFormatter`)."""


class SentenceFormatter(string.Formatter):
    """Renders `{field:spec}` for the specs of revert_sentences.toml: `time` (UTC), `kw`,
    `money` and `bare` (amounts in the settlement token), `status` (a request status),
    `text` (a bytes32 name), `minutes` (from seconds). No spec: the value as is."""

    def __init__(self, units: Units) -> None:
        super().__init__()
        self.renderers: dict[str, Callable[[Any], str]] = {
            "time": format_time,
            "kw": format_kw,
            "money": units.money,
            "bare": units.bare,
            "status": status_name,
            "text": _bytes32_text,
            "minutes": lambda seconds: str(int(seconds) // 60),
        }

    def format_field(self, value: Any, format_spec: str) -> str:
        render = self.renderers.get(format_spec)
        return render(value) if render is not None else super().format_field(value, format_spec)


def explain_revert(name: str | None, args: dict[str, Any], units: Units | None = None) -> str:
    """The sentence for custom error `name` with decoded `args`; a generic one if unknown."""
    units = units or Units()
    if name is None:
        return "the transaction reverted for a reason that could not be decoded"
    try:
        if name in EXPLAINERS:
            return EXPLAINERS[name](args, units)
        if name in TEMPLATES:
            return SentenceFormatter(units).vformat(TEMPLATES[name], (), args)
    except (KeyError, IndexError, TypeError, ValueError):
        pass  # arguments not as expected: fall back to the raw rendering
    rendered = ", ".join(f"{key}={value!r}" for key, value in args.items())
    return f"reverted with {name}({rendered})"


def explain(error: TransactionReverted, units: Units | None = None) -> str:
    """Readable sentence for a revert, plus the transaction hash when it was mined."""
    if error.revert is None:
        return str(error)
    sentence = explain_revert(error.error_name, error.error_args, units)
    return f"{sentence} (tx {error.tx_hash})" if error.tx_hash else sentence
