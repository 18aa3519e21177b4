"""What "now" means for the future-timestamp check: wall time, or the chain's time for
demos and tests that move anvil's clock (the chain is then the only consistent time)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

CHAIN_CLOCK_CACHE_SECONDS = 1.0


class Clock(Protocol):
    def now(self) -> int:
        """Unix seconds (may be cached briefly)."""
        ...

    def fresh_now(self) -> int:
        """Unix seconds, never cached: asked before refusing a unit as a future one."""
        ...


class WallClock:
    def now(self) -> int:
        return int(time.time())

    def fresh_now(self) -> int:
        return self.now()


class ChainClock:
    """Timestamp of the latest block, asked at most once a second (one RPC per second,
    not per batch)."""

    def __init__(self, latest_block_time: Callable[[], int]) -> None:
        """`latest_block_time`: e.g. `Protocol.latest_block_timestamp`."""
        self._latest_block_time = latest_block_time
        self._lock = threading.Lock()
        self._timestamp = 0
        self._fetched_at = float("-inf")

    def now(self) -> int:
        with self._lock:
            if time.monotonic() - self._fetched_at >= CHAIN_CLOCK_CACHE_SECONDS:
                self._fetch()
            return self._timestamp

    def fresh_now(self) -> int:
        with self._lock:
            self._fetch()
            return self._timestamp

    def _fetch(self) -> None:
        self._timestamp = self._latest_block_time()
        self._fetched_at = time.monotonic()
