"""The chain clock caches block time for a second; a unit that looks future-dated on the
cached value is judged again on a fresh reading before it is refused (a regression: units
posted right after anvil time moved were refused, and a node dead-letters refused units)."""

from __future__ import annotations

import pytest
from web3 import Web3

from gridflex.chain.anvil import increase_time
from oracle.clock import ChainClock

pytestmark = pytest.mark.integration


def test_fresh_now_sees_time_moved_within_the_cache_second(w3: Web3) -> None:
    clock = ChainClock(lambda: int(w3.eth.get_block("latest")["timestamp"]))
    cached = clock.now()
    moved_to = increase_time(w3, 3_600)
    assert clock.now() == cached  # still inside the cache second
    assert clock.fresh_now() == moved_to >= cached + 3_600
    assert clock.now() == moved_to  # the fresh reading refreshed the cache
