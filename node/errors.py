"""Node errors: all subclass GridFlexError, so the CLI turns any of them into one readable
line and a non-zero exit instead of a traceback."""

from __future__ import annotations

from gridflex.errors import GridFlexError


class NodeError(GridFlexError):
    """Root of the errors the node raises on purpose."""


class KeystoreExistsError(NodeError):
    """`node init` found keys already; overwriting them would lose the device identities."""


class KeystoreNotFoundError(NodeError):
    """No keystore in the data dir: run `gridflex node init` first."""


class WrongPasswordError(NodeError):
    """The password does not decrypt the keystore (or the file is corrupt)."""


class NotRegisteredError(NodeError):
    """Readings need on-chain device ids: run `gridflex node register` first."""


class DrainTimeoutError(NodeError):
    """The outbox still held unacknowledged units when the deadline passed."""

    def __init__(self, pending: dict[str, int]) -> None:
        self.pending = pending
        summary = ", ".join(f"{url}: {count}" for url, count in pending.items())
        super().__init__(f"outbox not drained before the deadline (pending {summary})")
