"""The X-of-Y baselines (CAISO 10-in-10, PJM) skip a device's earlier event days. A device
that served an earlier event through its pool has such a day too: the oracles find it from
the pool's members backing that earlier bid, exactly as they measure a pool bid, so a pool
member's baseline is not averaged over the day it was curtailed (which would lower it and
understate what it delivers now)."""

from __future__ import annotations

import pytest
from support.chain import fresh_protocol, funded_account
from support.pools import enroll_with_consent, grid_operator_with_token, registered_device
from web3 import Web3

from gridflex.chain.anvil import increase_time
from gridflex.chain.facts import read_request_facts
from gridflex.rules.measurement import utc_day
from gridflex.rules.types import BaselineMethod, RequestSpec, zone_id

pytestmark = pytest.mark.integration

FLEX = 10**18
ZONE = zone_id("NL-POOLDAYS-01")
DAY = 86_400


def test_an_earlier_pool_award_is_an_event_day_of_the_members_backing_it(w3: Web3) -> None:
    governance = fresh_protocol(w3)
    operator = governance.as_account(funded_account(w3))
    solo = governance.as_account(funded_account(w3))
    for account in (operator, solo):
        governance.send(governance.token.functions.transfer(account.address, 1_000 * FLEX))
        account.stake(1_000 * FLEX)
    pool_id = operator.create_pool(1_000, "street battery pool")
    members = [governance.as_account(funded_account(w3)) for _ in range(2)]
    pooled = []
    for member in members:
        device_id = registered_device(member, ZONE, 5_000)
        enroll_with_consent(operator, pool_id, member, [device_id])
        pooled.append(device_id)
    solo_device = registered_device(solo, ZONE, 5_000)
    increase_time(w3, 2)

    dso, token = grid_operator_with_token(governance)
    now = governance.latest_block_timestamp()
    first_start = now - now % 900 + 2 * 3600
    later_start = first_start + 2 * DAY

    def request(start: int, method: BaselineMethod) -> tuple[int, RequestSpec]:
        spec = RequestSpec(
            zone=ZONE, power_w=10_000, window_start=start, window_end=start + 3600,
            price_cap_per_kwh=FLEX // 4, gate_closure=start - 900,
            settlement_token=token, baseline_method=method,
        )  # fmt: skip
        return dso.create_request(spec)[0], spec

    earlier, earlier_spec = request(first_start, BaselineMethod.MBMA)
    later, later_spec = request(later_start, BaselineMethod.CAISO_10_OF_10)
    operator.bid_as_pool(earlier, pool_id, 10_000, FLEX // 5)
    increase_time(w3, earlier_spec.gate_closure - governance.latest_block_timestamp())
    governance.clear(earlier)
    assert governance.bid_of(earlier, 0).awarded_w == 10_000

    operator.bid_as_pool(later, pool_id, 5_000, FLEX // 5)
    solo.bid(later, 5_000, FLEX // 5, [solo_device])
    increase_time(w3, later_spec.gate_closure - governance.latest_block_timestamp())
    governance.clear(later)

    facts = read_request_facts(governance, later)
    measured = {d for bid in facts.bids for d in bid.device_capacity_w}
    assert measured == {*pooled, solo_device}
    event_day = utc_day(first_start)
    assert {d: facts.excluded_days.get(d, frozenset()) for d in measured} == {
        pooled[0]: frozenset({event_day}),
        pooled[1]: frozenset({event_day}),
        solo_device: frozenset(),
    }, "the pool members curtailed on the earlier day skip it; the solo device did not serve"
