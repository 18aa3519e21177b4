"""GridFlex exceptions: one root class so callers can catch everything we raise on purpose,
with precise subclasses that carry the data needed to explain the failure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class GridFlexError(Exception):
    """Root of every error GridFlex raises deliberately."""


class ConfigurationError(GridFlexError):
    """A setting, binary or file GridFlex needs is missing or unusable."""


class CompilationError(GridFlexError):
    """solc rejected the contracts; `messages` holds solc's formatted error messages."""

    def __init__(self, messages: list[str]) -> None:
        self.messages = messages
        joined = "\n".join(messages) if messages else "(solc gave no message)"
        super().__init__(f"Solidity compilation failed with {len(messages)} error(s):\n{joined}")


class DeploymentNotFoundError(GridFlexError):
    """No deployment record exists for the requested chain id."""


class AnvilError(GridFlexError):
    """The local anvil chain could not be started or did not answer."""


@dataclass
class DecodedRevert:
    """A revert reason decoded from return data: a custom error, Error(string) or Panic."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)
    selector: str = ""
    raw_data: str = ""

    def __str__(self) -> str:
        rendered_args = ", ".join(f"{key}={value!r}" for key, value in self.args.items())
        return f"{self.name}({rendered_args})"


class TransactionReverted(GridFlexError):
    """A transaction (or its simulation) reverted; `revert` is the decoded reason if known."""

    def __init__(
        self,
        revert: DecodedRevert | None,
        *,
        tx_hash: str | None = None,
        detail: str | None = None,
    ) -> None:
        self.revert = revert
        self.tx_hash = tx_hash
        reason = str(revert) if revert is not None else (detail or "unknown reason")
        where = f" (tx {tx_hash})" if tx_hash else ""
        super().__init__(f"transaction reverted{where}: {reason}")

    @property
    def error_name(self) -> str | None:
        """Name of the custom error (or `Error`/`Panic`), None if not decodable."""
        return self.revert.name if self.revert else None

    @property
    def error_args(self) -> dict[str, Any]:
        """Decoded arguments of the revert, keyed by ABI input name (or position)."""
        return self.revert.args if self.revert else {}


class ChainUnavailableError(GridFlexError):
    """No chain answers at the configured RPC URL (`gridflex.chain.connect`)."""
