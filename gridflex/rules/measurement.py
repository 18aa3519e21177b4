"""Measurement of one device for one request: the pure rules every oracle, the watcher and
`gridflex verify` apply, so a report has exactly one definition (moved here from
`oracle/measurement.py`, which adds only the store reads, the signing and the caching).

Inputs, and why each is deterministic (two honest parties holding the same readings build
byte-identical records):

- the chain (`RequestFacts`, `read_request_facts`): the request and its bids; each bid's
  device ids from its `BidPlaced` event; device capacities from the registry's history,
  `DeviceRegistry.deviceAt(deviceId, bid.placedAt)` (whatever changed later; the same read
  `DeliveryDispute` makes, so the device caps agree by construction); for the X-of-Y
  methods, each device's earlier event days from past `Awarded` events of requests whose
  window started earlier;
- the device's readings: only those the method can need (`reading_span`); the method
  itself (`gridflex.rules.baselines.compute_baseline`) says which it used. Recomputing from the
  used readings alone gives the same record (days outside them were not eligible or not
  needed), which is what lets anyone re-check a report from its public data, and the chain
  judge it (`recompute_from_used_readings`, `DeliveryDispute`; for X-of-Y methods when
  4 h + the window fit a day, so that no two history days share an interval);
- the (device, interval) pairs with conflicting signed values.

Per awarded device (records exist for devices of bids with `awardedW > 0` only):
baseline = `compute_baseline`, metered = the event intervals, delivered = the sum of
`delivered_wh(direction, baseline, metered, device_cap_wh(...))` over the event. Quality,
first match wins: CONFLICT (evidence for a needed interval), INSUFFICIENT_DATA (an event
interval is missing, or the method had no usable baseline), else the baseline's quality
(OK or FALLBACK). Anything but OK/FALLBACK delivers zero. The used readings of a device are
the (interval, Wh) pairs of its used baseline intervals and its event intervals that exist,
packed with `pack_used_readings`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from gridflex.errors import GridFlexError
from gridflex.rules.baselines import (
    ADJUSTMENT_GAP_SECONDS,
    ADJUSTMENT_WINDOW_SECONDS,
    LOOKBACK_DAYS,
    EventWindow,
    compute_baseline,
    delivered_wh,
    device_cap_wh,
    recomputable_on_chain,
)
from gridflex.rules.reports import DeviceRecord, Quality, unpack_used_readings
from gridflex.rules.reports import pack_used_readings as pack
from gridflex.rules.types import BaselineMethod, RequestStatus

SECONDS_PER_DAY = 86_400
X_OF_Y_HISTORY_DAYS = LOOKBACK_DAYS + 1
"""X-of-Y methods look back 45 days before the event day; the read starts a day earlier
because the adjustment window can begin on the day before the event day."""
X_OF_Y_LEAD_SECONDS = ADJUSTMENT_GAP_SECONDS + ADJUSTMENT_WINDOW_SECONDS
"""Per past day, readings from the day-of adjustment window's start (3 h ending 1 h before
the event start) to the event end, at the same time of day."""
SETTLED_STATUSES = (RequestStatus.CLEARED, RequestStatus.REPORTED, RequestStatus.SETTLED)


class ReportUnavailableError(GridFlexError):
    """No report can be served for this request (yet); `status` is the HTTP answer."""

    def __init__(self, status: int, reason: str, retry_at: int | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.retry_at = retry_at


def utc_day(timestamp: int) -> int:
    """The UTC day number of a unix time (`gridflex.rules.baselines` day numbers)."""
    return timestamp // SECONDS_PER_DAY


# ─── Chain facts ──────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class AwardedBid:
    bid_index: int
    awarded_w: int
    device_capacity_w: Mapping[int, int]
    """device id -> registered capacity (W) when the bid was placed."""

    @property
    def capacity_w(self) -> int:
        return sum(self.device_capacity_w.values())


@dataclass(frozen=True)
class RequestFacts:
    """Everything measurement needs from the chain for one request and round."""

    request_id: int
    round: int
    market: str
    chain_id: int
    committee: str
    direction: int
    baseline_method: int
    window: EventWindow
    bid_count: int
    bids: tuple[AwardedBid, ...]
    """Awarded bids only (awardedW > 0), by bid index."""
    excluded_days: Mapping[int, frozenset[int]] = field(default_factory=dict)
    """device id -> UTC days of its earlier events (X-of-Y methods only)."""


# ─── Store reads ──────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class ReadingSpan:
    """Readings `start <= t < end`, and when `daily_seconds` is set only those within
    `daily_seconds` after `start`'s time of day on each day."""

    start: int
    end: int
    daily_seconds: int | None = None

    def contains(self, interval_start: int) -> bool:
        if not self.start <= interval_start < self.end:
            return False
        offset = (interval_start - self.start) % SECONDS_PER_DAY
        return self.daily_seconds is None or offset < self.daily_seconds


def reading_span(method: int, window: EventWindow) -> ReadingSpan:
    """The readings `method` can need for `window` (see the constants above)."""
    if method == BaselineMethod.MBMA:
        return ReadingSpan(window.start - window.interval_seconds, window.end)
    today_from = window.start - X_OF_Y_LEAD_SECONDS
    start = today_from - X_OF_Y_HISTORY_DAYS * SECONDS_PER_DAY
    daily = window.end - today_from
    return ReadingSpan(start, window.end, daily if daily < SECONDS_PER_DAY else None)


# ─── Measurement ──────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class DeviceMeasurement:
    record: DeviceRecord
    used_readings: bytes


def measure_device(
    facts: RequestFacts,
    bid: AwardedBid,
    device_id: int,
    readings: Mapping[int, int],
    conflicts: set[tuple[int, int]],
) -> DeviceMeasurement:
    """One device's record and packed used readings (pure: no I/O)."""
    window = facts.window
    cap = device_cap_wh(
        bid.awarded_w, bid.device_capacity_w[device_id], bid.capacity_w, window.interval_seconds
    )
    figures, needed = device_figures(
        BaselineMethod(facts.baseline_method),
        facts.direction,
        window,
        readings,
        facts.excluded_days.get(device_id, frozenset()),
        cap,
        lambda intervals: any((device_id, t) in conflicts for t in intervals),
    )
    used = pack((t, readings[t]) for t in needed if t in readings)
    record = DeviceRecord(
        device_id,
        bid.bid_index,
        figures.baseline_wh,
        figures.metered_wh,
        figures.delivered_wh,
        figures.quality,
    )
    return DeviceMeasurement(record, used)


@dataclass(frozen=True)
class RecordFigures:
    """The figures of a device record (`DeviceRecord` without its ids)."""

    baseline_wh: int
    metered_wh: int
    delivered_wh: int
    quality: Quality

    @classmethod
    def of(cls, record: DeviceRecord) -> RecordFigures:
        return cls(record.baseline_wh, record.metered_wh, record.delivered_wh, record.quality)


def device_figures(
    method: BaselineMethod,
    direction: int,
    window: EventWindow,
    readings: Mapping[int, int],
    excluded_days: frozenset[int] | set[int] | tuple[int, ...],
    cap_wh: int,
    has_conflict: Callable[[set[int]], bool] = lambda _: False,
) -> tuple[RecordFigures, set[int]]:
    """A device's figures and the intervals its measurement needed (the rules of the module
    docstring); `has_conflict` says whether conflicting signed values exist for any of them."""
    event = list(window.interval_starts)
    baseline = compute_baseline(method, readings, window, excluded_days)
    needed = set(baseline.used_intervals) | set(event)
    metered_series = [readings.get(t, 0) for t in event]
    delivered = 0
    if has_conflict(needed):
        quality = Quality.CONFLICT
    elif any(t not in readings for t in event):
        quality = Quality.INSUFFICIENT_DATA
    elif baseline.quality not in (Quality.OK, Quality.FALLBACK):
        quality = Quality(baseline.quality)
    else:
        quality = Quality(baseline.quality)
        delivered = sum(delivered_wh(direction, baseline.baseline_wh, metered_series, cap_wh))
    figures = RecordFigures(sum(baseline.baseline_wh), sum(metered_series), delivered, quality)
    return figures, needed


def recompute_from_used_readings(
    method: int, direction: int, window: EventWindow, cap_wh: int, used_readings: bytes
) -> RecordFigures:
    """What follows from a report's own used readings of one device, as the chain judges it
    (`BaselineMath.measureUsedReadings`, `DeliveryDispute.challengeArithmetic`): the device's
    figures when its only readings are `used_readings`, with no excluded days and no
    conflicts. An honest record equals it, except that a CONFLICT record delivers zero (the
    chain cannot see conflicts). ValueError when the chain cannot judge the method/window
    (`recomputable_on_chain`)."""
    if not recomputable_on_chain(method, window):
        raise ValueError("an X-of-Y record cannot be recomputed when 4 h + the window exceed a day")
    readings = dict(unpack_used_readings(used_readings))
    figures, _ = device_figures(BaselineMethod(method), direction, window, readings, (), cap_wh)
    return figures


def record_follows(record: DeviceRecord, recomputed: RecordFigures) -> bool:
    """Whether a record is what the chain recomputes from its used readings: every figure,
    except that a CONFLICT record must deliver zero instead (the conflict itself is the
    oracles' claim, not arithmetic; `DeliveryDispute`)."""
    if record.quality == Quality.CONFLICT:
        return (record.baseline_wh, record.metered_wh, record.delivered_wh) == (
            recomputed.baseline_wh,
            recomputed.metered_wh,
            0,
        )
    return RecordFigures.of(record) == recomputed
