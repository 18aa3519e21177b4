"""Bidding strategy: no device committed beyond its capacity in any interval (property),
the more valuable request wins the contested capacity, prices, availability models and
durable commitments."""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from gridflex.rules.types import DeviceKind, Direction, zone_id
from node.devices.simulated import EVCharger, HeatPump, HomeBattery, IndustrialLoad, PVInverter
from node.strategy import (
    Commitment,
    CommitmentStore,
    DeviceStrategy,
    OpenRequest,
    availability_for,
    deliverable_split,
    peak_committed_w,
    plan_bids,
)

ZONE = zone_id("NL-AMS-01")
OTHER_ZONE = zone_id("DE-BER-01")
EUR = 10**18
NOW = 1_000_000


def _request(rid: int, start: int, hours: int, power_w: int, cap: int, avail: int = 0,
             zone: bytes = ZONE) -> OpenRequest:  # fmt: skip
    return OpenRequest(
        rid, zone, Direction.REDUCE_CONSUMPTION, power_w, start, start + hours * 3600,
        cap, avail, gate_closure=start - 600,
    )  # fmt: skip


requests_st = st.lists(
    st.builds(
        lambda rid, slot, hours, power, cap, avail, zone: _request(
            rid, NOW + 3600 + slot * 900, hours, power, cap, avail, zone
        ),
        st.integers(0, 10**6),
        st.integers(0, 20),
        st.integers(1, 4),
        st.integers(1, 60_000),
        st.integers(0, 10**18),
        st.integers(0, 10**16),
        st.sampled_from([ZONE, ZONE, OTHER_ZONE]),
    ),
    max_size=12,
    unique_by=lambda r: r.request_id,
)
devices_st = st.lists(
    st.builds(
        DeviceStrategy,
        device_id=st.integers(1, 10**9),
        kind=st.sampled_from(list(DeviceKind)),
        capacity_w=st.integers(1, 40_000),
        min_price_per_kwh=st.integers(0, 10**18),
        max_share_bps=st.integers(0, 10_000),
    ),
    min_size=1,
    max_size=5,
    unique_by=lambda d: d.device_id,
)


@settings(max_examples=300, deadline=None)
@given(requests=requests_st, devices=devices_st, data=st.data())
def test_no_device_is_ever_committed_beyond_its_offer_limit(
    requests: list[OpenRequest], devices: list[DeviceStrategy], data: st.DataObject
) -> None:
    # Some existing commitments (within the limits) from earlier bids.
    existing: list[Commitment] = []
    for device in devices:
        for rid in data.draw(st.lists(st.integers(-50, -1), max_size=2, unique=True)):
            start = NOW + 3600 + data.draw(st.integers(0, 20)) * 900
            free = device.offer_limit_w - peak_committed_w(
                existing, device.device_id, start, start + 3600
            )
            if free > 0:
                power = data.draw(st.integers(1, free))
                existing.append(Commitment(rid, device.device_id, power, start, start + 3600))

    plans = plan_bids(requests, devices, existing, zone=ZONE, now=NOW)

    all_commitments = existing + [c for p in plans for c in p.commitments]
    by_id = {r.request_id: r for r in requests}
    for device in devices:
        mine = [c for c in all_commitments if c.device_id == device.device_id]
        # Check every instant where the committed power can change.
        for point in {c.window_start for c in mine}:
            level = sum(c.power_w for c in mine if c.window_start <= point < c.window_end)
            assert level <= device.offer_limit_w <= device.capacity_w
    # One device, one bid among overlapping windows (the market's DeviceOvercommitted).
    for planned in (c for p in plans for c in p.commitments):
        assert not any(
            other is not planned
            and other.device_id == planned.device_id
            and other.window_start < planned.window_end
            and planned.window_start < other.window_end
            for other in all_commitments
        )
    for plan in plans:
        request = by_id[plan.request_id]
        assert request.zone == ZONE
        assert 0 < plan.power_w == sum(c.power_w for c in plan.commitments) <= request.power_w
        assert plan.price_per_kwh <= request.price_cap_per_kwh
        assert len(set(plan.device_ids)) == len(plan.device_ids)
        for c in plan.commitments:
            device = next(d for d in devices if d.device_id == c.device_id)
            assert device.min_price_per_kwh <= plan.price_per_kwh
            assert (c.window_start, c.window_end) == (request.window_start, request.window_end)
    assert len({p.request_id for p in plans}) == len(plans)


def test_the_more_valuable_of_two_competing_requests_wins_the_capacity() -> None:
    battery = DeviceStrategy(7, DeviceKind.BATTERY, 10_000, min_price_per_kwh=EUR // 20)
    start = NOW + 7200
    cheap = _request(1, start, 1, 10_000, EUR // 5)  # 10 kWh x 0.20 = 2.00
    # Overlaps `cheap` by half an hour; 10 kWh x (0.15 + 0.10 availability) = 2.50.
    rich = _request(2, start + 1800, 1, 10_000, 3 * EUR // 20, avail=EUR // 10)
    later = _request(3, start + 3 * 3600, 1, 4_000, EUR // 10)  # no overlap: stacked

    plans = plan_bids([cheap, rich, later], [battery], [], zone=ZONE, now=NOW)

    assert [p.request_id for p in plans] == [2, 3]
    rich_plan, later_plan = plans
    assert rich_plan.power_w == 10_000 and rich_plan.device_ids == (7,)
    # 80 % of the cap, never under the device's minimum price.
    assert rich_plan.price_per_kwh == 3 * EUR // 20 * 8 // 10
    assert later_plan.power_w == 4_000
    assert later_plan.price_per_kwh == 8 * EUR // 100  # max(0.05 minimum, 80 % of 0.10)
    low_cap = _request(4, start + 6 * 3600, 1, 4_000, EUR // 16)  # 80 % = 0.05 - a bit
    (low,) = plan_bids([low_cap], [battery], [], zone=ZONE, now=NOW)
    assert low.price_per_kwh == EUR // 20  # the minimum price wins over the rule

    # With the rich request already committed, the cheap one gets only what is left: 0.
    again = plan_bids([cheap], [battery], list(rich_plan.commitments), zone=ZONE, now=NOW)
    assert again == []


def test_share_limit_min_price_and_gate_closure() -> None:
    ev = DeviceStrategy(1, DeviceKind.EV_CHARGER, 11_000, EUR // 10, max_share_bps=5_000)
    hp = DeviceStrategy(2, DeviceKind.HEAT_PUMP, 3_000, EUR // 2)
    start = NOW + 7200
    request = _request(9, start, 1, 20_000, EUR // 4)
    (plan,) = plan_bids([request], [ev, hp], [], zone=ZONE, now=NOW)
    assert plan.device_ids == (1,)  # the heat pump's minimum 0.50 exceeds the cap 0.25
    assert plan.power_w == 5_500  # half of the EV's capacity
    assert plan.price_per_kwh == EUR // 5  # 80 % of 0.25 > 0.10
    assert plan_bids([request], [ev], [], zone=ZONE, now=request.gate_closure) == []


def test_commitments_survive_a_restart_and_release_on_loss(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    battery = DeviceStrategy(7, DeviceKind.BATTERY, 10_000)
    request = _request(1, NOW + 7200, 2, 8_000, EUR // 5)
    (plan,) = plan_bids([request], [battery], [], zone=ZONE, now=NOW)
    with sqlite3.connect(path, isolation_level=None) as db:
        CommitmentStore(db).add(plan.commitments)
    db = sqlite3.connect(path, isolation_level=None)
    store = CommitmentStore(db)  # a new process
    assert store.all() == list(plan.commitments)
    # Already bid on: not again; and the device is taken for an overlapping one, even with
    # 2 kW of its capacity left (the market refuses one device in two overlapping bids).
    overlapping = _request(2, NOW + 9000, 1, 10_000, EUR // 5)
    assert plan_bids([request, overlapping], [battery], store.all(), zone=ZONE, now=NOW) == []
    store.release(1, keep_w=3_000)  # partly awarded
    assert [c.power_w for c in store.all()] == [3_000]
    store.release(1)
    assert store.all() == []
    db.close()


def test_availability_models_follow_the_simulated_devices() -> None:
    ev = EVCharger(11_000, seed=3)
    ev_available = availability_for(ev)
    assert ev_available is not None
    day = 20_000 + next(d for d in range(14) if ev.session(20_000 + d) is not None)
    session = ev.session(day)
    assert session is not None
    inside = session.plug_in + 900
    charging_w = ev.read_interval_energy_wh(inside, 1800) * 3600 // 1800
    assert charging_w > 0  # it charges: it can pause what it draws, no more
    assert ev_available(inside, inside + 1800, Direction.REDUCE_CONSUMPTION) == min(
        11_000, charging_w
    )
    assert ev_available(inside, inside + 1800, Direction.INCREASE_CONSUMPTION) == 0
    before = session.plug_in - 7200
    if not ev.is_plugged(before):
        assert ev_available(before, before + 3600, Direction.REDUCE_CONSUMPTION) == 0

    battery = HomeBattery(5_000, seed=1)
    battery_available = availability_for(battery)
    assert battery_available is not None
    day_start = 20_003 * 86_400
    # At 06:00 the battery is nearly full: it can discharge at rated power for an hour but
    # not charge much; at midnight it sits at its reserve: nothing to discharge. In the
    # evening it already discharges into the house: only the rest of its rating is offered.
    morning = day_start + 6 * 3600
    charging_w = battery.read_interval_energy_wh(morning, 3600)  # it would charge a little
    assert battery_available(morning, morning + 3600, Direction.REDUCE_CONSUMPTION) == (
        5_000 + charging_w  # stop charging, and discharge at rated power
    )
    assert battery_available(morning, morning + 3600, Direction.INCREASE_CONSUMPTION) < 5_000
    night = day_start + 30 * 60
    assert battery_available(night, night + 3600, Direction.REDUCE_CONSUMPTION) == 0
    evening = next(
        t for t in range(day_start + 17 * 3600, day_start + 22 * 3600, 900)
        if battery.read_interval_energy_wh(t, 3600) < -500
    )  # fmt: skip
    discharging_w = -battery.read_interval_energy_wh(evening, 3600)
    assert battery_available(evening, evening + 3600, Direction.REDUCE_CONSUMPTION) <= (
        5_000 - discharging_w
    )

    heat_pump = HeatPump(3_000, seed=2)
    hp_available = availability_for(heat_pump, comfort_min_c=17.0, comfort_max_c=23.0)
    assert hp_available is not None
    noon = day_start + 12 * 3600
    draw_w = heat_pump.read_interval_energy_wh(noon, 3600)
    assert 0 < draw_w < 3_000  # part load: shedding gives its draw, not its rating
    assert hp_available(noon, noon + 3600, Direction.REDUCE_CONSUMPTION) == draw_w
    strict = availability_for(heat_pump, comfort_min_c=heat_pump.indoor_temperature_c(noon))
    assert strict is not None
    assert strict(noon, noon + 3600, Direction.REDUCE_CONSUMPTION) == 0  # it would cool


def test_an_idle_device_is_left_out_of_the_bid_instead_of_dragging_it_down() -> None:
    battery = DeviceStrategy(1, DeviceKind.BATTERY, 5_000)
    idle_heat_pump = DeviceStrategy(2, DeviceKind.HEAT_PUMP, 3_000)
    split = deliverable_split([(battery, 5_000), (idle_heat_pump, 15)], 100_000)
    # With the heat pump the oracle would cap the battery at 5/8 of the award: 5,024 W
    # offered, 3,140 W deliverable. Alone, the battery delivers all 5,000 W.
    assert split == [(battery, 5_000)]


offers_strategy = st.lists(
    st.tuples(st.integers(1, 20_000), st.integers(0, 20_000)), min_size=1, max_size=6
)


@given(offers=offers_strategy, limit_w=st.integers(1, 100_000))
@settings(max_examples=200, deadline=None)
def test_deliverable_split_is_deliverable_and_best(
    offers: list[tuple[int, int]], limit_w: int
) -> None:
    """Every device can give its capacity share of the bid (what the oracle caps it at),
    the bid respects the limit, and no other device subset could bid more."""
    devices = [
        (DeviceStrategy(i, DeviceKind.BATTERY, capacity), min(power, capacity))
        for i, (capacity, power) in enumerate(offers)
    ]
    split = deliverable_split(devices, limit_w)
    offered = {d.device_id: power for d, power in devices}
    total = sum(power for _, power in split)
    assert total <= limit_w
    capacity = sum(d.capacity_w for d, _ in split)
    for device, power in split:
        assert power <= offered[device.device_id]
        # its capacity share of the award, up to the flooring of the other shares
        assert 0 <= power - total * device.capacity_w // capacity <= len(devices)
    best = 0
    for size in range(1, len(devices) + 1):
        for subset in itertools.combinations(devices, size):
            c = sum(d.capacity_w for d, _ in subset)
            best = max(best, min([limit_w] + [c * p // d.capacity_w for d, p in subset]))
    assert sum(p for _, p in split) >= best - len(devices)  # floors of the pro-rata split


def test_pv_curtails_what_it_would_produce_and_an_industrial_load_only_sheds() -> None:
    day_start = 20_003 * 86_400
    noon, midnight = day_start + 12 * 3600, day_start
    pv = PVInverter(6_000, seed=1)
    pv_available = availability_for(pv)
    assert pv_available is not None
    produced_w = -pv.read_interval_energy_wh(noon, 3600)
    assert produced_w > 0
    assert pv_available(noon, noon + 3600, Direction.INCREASE_CONSUMPTION) == produced_w
    assert pv_available(noon, noon + 3600, Direction.REDUCE_CONSUMPTION) == 0
    assert pv_available(midnight, midnight + 3600, Direction.INCREASE_CONSUMPTION) == 0

    plant = IndustrialLoad(250_000, seed=4)
    plant_available = availability_for(plant)
    assert plant_available is not None
    draw_w = plant.read_interval_energy_wh(noon, 3600)
    assert plant_available(noon, noon + 3600, Direction.REDUCE_CONSUMPTION) == min(250_000, draw_w)
    assert plant_available(noon, noon + 3600, Direction.INCREASE_CONSUMPTION) == 0


def test_a_device_backs_one_bid_among_overlapping_requests_and_stacks_in_time() -> None:
    """Issue 12 finding 4: the node never plans a device into two requests whose windows
    overlap (the chain would refuse the second bid), whatever capacity it has left; it
    does stack requests at different times, and a device freed by a loss bids again."""
    battery = DeviceStrategy(7, DeviceKind.BATTERY, 10_000)
    load = DeviceStrategy(8, DeviceKind.INDUSTRIAL_LOAD, 10_000)
    start = NOW + 7200
    first = _request(1, start, 1, 4_000, EUR // 5)
    overlapping = _request(2, start + 1800, 1, 4_000, EUR // 5)
    later = _request(3, start + 3600, 1, 4_000, EUR // 5)  # starts when the first ends
    plans = plan_bids([first, overlapping, later], [battery, load], [], zone=ZONE, now=NOW)
    devices_by_request = {p.request_id: set(p.device_ids) for p in plans}
    assert set(devices_by_request) == {1, 2, 3}
    assert not devices_by_request[1] & devices_by_request[2], "one device in two overlapping"
    assert not devices_by_request[2] & devices_by_request[3], "one device in two overlapping"
    # A device with a commitment at 0 W (kept for a partly awarded bid) is still taken.
    kept = [Commitment(1, 7, 0, start, start + 3600), Commitment(1, 8, 4_000, start, start + 3600)]
    assert plan_bids([overlapping], [battery, load], kept, zone=ZONE, now=NOW) == []
    (stacked,) = plan_bids([later], [battery, load], kept, zone=ZONE, now=NOW)
    assert stacked.request_id == 3
