"""Wall-clock helpers for history that must lie entirely in the past."""

from __future__ import annotations

import time

DAY = 86_400


def last_midnight() -> int:
    """The most recent UTC midnight: history ending there is entirely in the past."""
    now = int(time.time())
    return now - now % DAY
