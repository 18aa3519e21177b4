"""Decoding JSON that comes from outside (a node's batch, a peer's report, an oracle's
answer) without letting it crash or stall the process.

Why a wrapper around `json.loads`: the stdlib decoder recurses once per nesting level in
C. py_ecc (imported by eth-keys, so by every GridFlex process) raises Python's recursion
limit to 100,000 at import, so a 195 KiB body nested 100,000 levels deep no longer stops
at `RecursionError`: it overflows the C stack and the process dies with SIGSEGV. Hence:

- the size is bounded, then the nesting depth is measured by a linear byte scan of the
  brackets outside strings (no recursion, no backtracking), both BEFORE decoding;
- duplicate object keys are refused (the last one would silently win, so two readers of
  the same bytes could disagree about what was sent);
- `NaN` / `Infinity` are refused (not JSON, RFC 8259);
- `gridflex/__init__.py` puts Python's recursion limit back to CPython's default after
  importing py_ecc, so a decoder that does recurse raises instead of crashing.

Every error is an `UnsafeJsonError` (a ValueError, so `except ValueError` call sites keep
working) whose `reason` is one readable line for a 4xx body or a log.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

MAX_JSON_DEPTH = 32
"""Deepest nesting any GridFlex document needs is 4 (`{"units": [{"energyWh": [..]}]}`,
a report's records); 32 leaves room for additions and is far from any stack limit."""
MAX_JSON_BYTES = 64 * 1024 * 1024
"""Default size bound of a decoded document; callers with a tighter bound pass it."""

_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"?', re.DOTALL)
"""A JSON string, possessive (linear, no backtracking); an unterminated one runs to the
end (the decoder then reports it)."""
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_DEPTH_STEP = np.zeros(256, dtype=np.int8)
_DEPTH_STEP[list(b"[{")] = 1
_DEPTH_STEP[list(b"]}")] = -1


class UnsafeJsonError(ValueError):
    """JSON refused before or while decoding; `reason` says why in one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def nesting_depth(document: bytes) -> int:
    """Deepest bracket nesting of `document`, brackets inside strings ignored.

    Linear in the size (a regex without backtracking, a byte filter, a cumulative sum):
    about a millisecond per MiB, whatever the content."""
    brackets = _STRING.sub(b"", document).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    steps = _DEPTH_STEP[np.frombuffer(brackets, dtype=np.uint8)]
    return int(np.cumsum(steps, dtype=np.int64).max())


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _value in pairs:
            if key in seen:
                raise UnsafeJsonError(f"duplicate key {key[:64]!r} in a JSON object")
            seen.add(key)
    return obj


def _refuse_constant(name: str) -> Any:
    raise UnsafeJsonError(f"{name} is not a JSON number")


def loads(
    document: bytes | bytearray | str,
    *,
    max_bytes: int = MAX_JSON_BYTES,
    max_depth: int = MAX_JSON_DEPTH,
) -> Any:
    """Decode `document` after bounding its size and depth; refuse duplicate keys.

    Raises UnsafeJsonError (a ValueError) for anything refused, malformed JSON included."""
    raw = document.encode() if isinstance(document, str) else bytes(document)
    if len(raw) > max_bytes:
        raise UnsafeJsonError(f"JSON document of {len(raw)} bytes; at most {max_bytes}")
    depth = nesting_depth(raw)
    if depth > max_depth:
        raise UnsafeJsonError(f"JSON nested {depth} levels deep; at most {max_depth}")
    try:
        return json.loads(
            raw, object_pairs_hook=_refuse_duplicates, parse_constant=_refuse_constant
        )
    except UnsafeJsonError:
        raise
    except RecursionError as error:  # cannot happen below max_depth; never crash anyway
        raise UnsafeJsonError("JSON nested too deeply") from error
    except (ValueError, UnicodeDecodeError) as error:
        raise UnsafeJsonError(f"malformed JSON: {error}") from error
