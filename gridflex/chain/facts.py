"""The chain facts a measurement needs for one request and round (`RequestFacts`): the
request, its awarded bids with each device's capacity when the bid was placed, and for the
X-of-Y methods each device's earlier event days. Read once per request by the oracle,
`gridflex verify` and the watcher, so every party measures from the same facts."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import structlog

from gridflex.chain.protocol import Protocol
from gridflex.errors import TransactionReverted
from gridflex.rules.baselines import EventWindow, block_days
from gridflex.rules.measurement import (
    SETTLED_STATUSES,
    AwardedBid,
    ReportUnavailableError,
    RequestFacts,
    utc_day,
)
from gridflex.rules.pools import Membership, backing_devices
from gridflex.rules.types import BaselineMethod, RequestState

log = structlog.get_logger(__name__)


def read_request_facts(protocol: Protocol, request_id: int) -> RequestFacts:
    """The request's facts from the chain; ReportUnavailableError(404) for an unknown or
    never-cleared request."""
    state = read_request(protocol, request_id)
    if state.status not in SETTLED_STATUSES:
        raise ReportUnavailableError(
            404, f"request {request_id} is {state.status.name.lower()}, nothing to measure"
        )
    placements = protocol.bid_placements(request_id)
    bids = []
    memberships: list[Membership] | None = None
    for bid_index in range(state.bid_count):
        bid = protocol.bid_of(request_id, bid_index)
        if bid.awarded_w == 0:
            continue
        pool_bid = protocol.pool_bid_of(request_id, bid_index)
        if pool_bid.pool_id:
            # A pool bid: its members in the zone when it was placed (one event read for
            # every pool bid of the request, however many devices stand behind them).
            if memberships is None:
                memberships = protocol.memberships()
            capacities = backing_devices(memberships, pool_bid.pool_id, state.zone, bid.placed_at)
            if sum(capacities.values()) != pool_bid.capacity_w:
                log.error(
                    "pool members do not add up to the bid's capacity",
                    request_id=request_id, bid_index=bid_index,
                    members_w=sum(capacities.values()), bid_capacity_w=pool_bid.capacity_w,
                )  # fmt: skip
            bids.append(AwardedBid(bid_index, bid.awarded_w, capacities, pool_bid.capacity_w))
            continue
        capacities = {
            device_id: _capacity_at(protocol, device_id, bid.placed_at)
            for device_id in placements[bid_index]
        }
        bids.append(AwardedBid(bid_index, bid.awarded_w, capacities))
    window = EventWindow(state.window_start, state.window_end, state.interval_seconds)
    excluded: dict[int, frozenset[int]] = {}
    if block_days(BaselineMethod(state.baseline_method)) > 1:  # a method with history days
        measured = {d for bid in bids for d in bid.device_capacity_w}
        excluded = _earlier_event_days(protocol, request_id, state, measured)
    return RequestFacts(
        request_id=request_id,
        round=state.report_round,
        market=protocol.market.address,
        chain_id=protocol.client.chain_id,
        committee=protocol.committee.address,
        direction=int(state.direction),
        baseline_method=state.baseline_method,
        window=window,
        bid_count=state.bid_count,
        bids=tuple(bids),
        excluded_days=excluded,
    )


def read_request(protocol: Protocol, request_id: int) -> RequestState:
    try:
        return protocol.request(request_id)
    except TransactionReverted as error:
        if error.error_name == "UnknownRequest":
            raise ReportUnavailableError(404, f"unknown request {request_id}") from error
        raise


def _capacity_at(protocol: Protocol, device_id: int, placed_at: int) -> int:
    """The device's capacity when the bid was placed, from the registry's device history
    (`deviceAt(deviceId, bid.placedAt)`): exactly what `DeliveryDispute` reads to cap the
    device, on any node (no archive state needed)."""
    return protocol.device_at(device_id, placed_at).capacity_w


def _earlier_event_days(
    protocol: Protocol, request_id: int, state: RequestState, device_ids: set[int]
) -> dict[int, frozenset[int]]:
    """UTC days of earlier events each device was awarded in, through its own bid or a
    pool bid it backed (the pool's members in the request's zone when the bid was placed,
    as for measurement). Best effort: a request we cannot read is skipped, and logged."""
    awarded = protocol.events(protocol.market, "Awarded")
    days: dict[int, set[int]] = defaultdict(set)
    windows: dict[int, RequestState | None] = {}
    placed_cache: dict[int, dict[int, tuple[int, ...]]] = {}
    memberships: list[Membership] | None = None
    for event in awarded:
        other_id = int(event.args["requestId"])
        if other_id == request_id or int(event.args["awardedW"]) == 0:
            continue
        if other_id not in windows:
            try:
                windows[other_id] = protocol.request(other_id)
            except TransactionReverted:
                log.warning("earlier request unreadable", request_id=other_id)
                windows[other_id] = None
        other = windows[other_id]
        if other is None or other.window_start >= state.window_start:
            continue
        if other_id not in placed_cache:
            placed_cache[other_id] = protocol.bid_placements(other_id)
        event_days = range(utc_day(other.window_start), utc_day(other.window_end - 1) + 1)
        bid_index = int(event.args["bidIndex"])
        backers: Iterable[int] = placed_cache[other_id].get(bid_index, ())
        if not backers:
            pool_id = protocol.pool_bid_of(other_id, bid_index).pool_id
            if pool_id:
                if memberships is None:
                    memberships = protocol.memberships()
                placed_at = protocol.bid_of(other_id, bid_index).placed_at
                backers = backing_devices(memberships, pool_id, other.zone, placed_at)
        for device_id in backers:
            if device_id in device_ids:
                days[device_id].update(event_days)
    return {device_id: frozenset(d) for device_id, d in days.items()}
