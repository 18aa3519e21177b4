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
- the device's readings: only those the method can need (`reading_span`), laid out as the
  engine's history block; the method itself (`gridflex.rules.baselines`) says which it
  used. Recomputing from the used readings alone gives the same record (days outside
  them were not eligible or not needed), which is what lets anyone re-check a report
  from its public data, and the chain judge it (`recompute_from_used_readings`,
  `DeliveryDispute`; for X-of-Y methods when 4 h + the window fit a day, so that no two
  history days share an interval);
- the (device, interval) pairs with conflicting signed values.

One engine: `measure_block` measures every device of a history block at once (the oracle
runs it on a whole request, `measure_request_block`); `measure_device`, `device_figures` and
`recompute_from_used_readings` are the same engine on a batch of one.

Per awarded device (records exist for devices of bids with `awardedW > 0` only):
baseline = `gridflex.rules.baselines.compute_baselines`, metered = the event intervals,
delivered = the sum of `delivered_per_interval(direction, baseline, metered,
device_cap_wh(...))` over the event. Quality,
first match wins: CONFLICT (evidence for a needed interval), INSUFFICIENT_DATA (an event
interval is missing, or the method had no usable baseline), else the baseline's quality
(OK or FALLBACK). Anything but OK/FALLBACK delivers zero. The used readings of a device are
the (interval, Wh) pairs of its used baseline intervals and its event intervals that exist,
packed with `pack_used_readings`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

import numpy as np

from gridflex.errors import GridFlexError
from gridflex.rules.baselines import (
    MISSING_WH,
    BaselineBatch,
    EventWindow,
    ReadingSpan,
    compute_baselines,
    delivered_per_interval,
    device_cap_wh,
    excluded_mask,
    history_block,
    reading_span,
    recomputable_on_chain,
)
from gridflex.rules.report_batch import device_used_readings
from gridflex.rules.reports import DeviceRecord, Quality, unpack_used_readings
from gridflex.rules.types import BaselineMethod, RequestStatus

SECONDS_PER_DAY = 86_400
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
    pool_capacity_w: int | None = None
    """A pool bid's capacity as the market recorded it (`IFlexMarket.PoolBid.capacityW`),
    the sum of its backing devices' capacities; None for an individual bid."""

    @property
    def capacity_w(self) -> int:
        if self.pool_capacity_w is not None:
            return self.pool_capacity_w
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


# ─── The engine ───────────────────────────────────────────────────────────────────────


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


@dataclass(frozen=True)
class MeasurementBatch:
    """The record figures of every device (row) of a history block, int64 / uint8 arrays
    `[devices]`, with the baselines and the block they came from (the used readings)."""

    baselines: BaselineBatch
    history: np.ndarray
    baseline_wh: np.ndarray
    metered_wh: np.ndarray
    delivered_wh: np.ndarray
    quality: np.ndarray

    def figures(self, row: int) -> RecordFigures:
        return RecordFigures(
            int(self.baseline_wh[row]),
            int(self.metered_wh[row]),
            int(self.delivered_wh[row]),
            Quality(int(self.quality[row])),
        )

    def used_readings(self, row: int) -> bytes:
        """The row's packed used readings (`pack_used_readings` of what it read)."""
        return device_used_readings(self.baselines, self.history, row)


def measure_block(
    method: BaselineMethod,
    direction: int,
    window: EventWindow,
    history: np.ndarray,
    cap_wh: np.ndarray,
    excluded: np.ndarray | None = None,
    conflicted: np.ndarray | None = None,
) -> MeasurementBatch:
    """Every device's figures (module docstring): `cap_wh` per device and interval,
    `excluded` an `excluded_mask`, `conflicted` the devices measured CONFLICT."""
    baselines = compute_baselines(method, history, window, excluded)
    events = len(window.interval_starts)
    metered = history[:, -1, -events:].astype(np.int64)
    present = metered != MISSING_WH
    metered[~present] = 0
    quality = baselines.quality.copy()
    quality[~present.all(axis=1)] = Quality.INSUFFICIENT_DATA
    if conflicted is not None:
        quality[conflicted] = Quality.CONFLICT
    delivers = (quality == Quality.OK) | (quality == Quality.FALLBACK)
    delivered = delivered_per_interval(direction, baselines.baseline_wh, metered, cap_wh)
    return MeasurementBatch(
        baselines,
        history,
        baselines.baseline_wh.sum(axis=1),
        metered.sum(axis=1),
        np.where(delivers, delivered.sum(axis=1), 0),
        quality,
    )


@dataclass(frozen=True)
class RequestRows:
    """The layout of one request's history block: one row per awarded device, by bid, then
    device, with its bid index and per-interval cap (int64 arrays)."""

    device_id: np.ndarray
    bid_index: np.ndarray
    cap_wh: np.ndarray

    @classmethod
    def of(cls, facts: RequestFacts) -> RequestRows:
        rows = [
            (device_id, bid.bid_index, device_cap_wh(
                bid.awarded_w, capacity, bid.capacity_w, facts.window.interval_seconds
            ))
            for bid in sorted(facts.bids, key=lambda b: b.bid_index)
            for device_id, capacity in sorted(bid.device_capacity_w.items())
        ]  # fmt: skip
        columns = np.array(rows, dtype=np.int64).reshape(-1, 3)
        return cls(columns[:, 0].copy(), columns[:, 1].copy(), columns[:, 2].copy())

    def excluded(self, facts: RequestFacts) -> np.ndarray | None:
        """The rows' `excluded_mask` (None when no device has earlier event days)."""
        if not facts.excluded_days:
            return None
        days = [facts.excluded_days.get(int(d), frozenset()) for d in self.device_id]
        return excluded_mask(facts.window, days)


def measure_request_block(
    facts: RequestFacts,
    rows: RequestRows,
    history: np.ndarray,
    conflicted: np.ndarray | None = None,
) -> MeasurementBatch:
    """All awarded devices of a request from its history block (rows as `rows`)."""
    return measure_block(
        BaselineMethod(facts.baseline_method), facts.direction, facts.window, history,
        rows.cap_wh, rows.excluded(facts), conflicted,
    )  # fmt: skip


@dataclass(frozen=True)
class DeviceMeasurement:
    record: DeviceRecord
    used_readings: bytes


def _measure_one(
    method: BaselineMethod,
    direction: int,
    window: EventWindow,
    readings: Mapping[int, int],
    excluded_days: Collection[int],
    cap_wh: int,
    has_conflict: Callable[[set[int]], bool],
) -> tuple[MeasurementBatch, RecordFigures, set[int]]:
    """The engine on a batch of one: the batch, the figures and the intervals needed."""
    history = history_block(method, [readings], window)
    mask = excluded_mask(window, [excluded_days])
    batch = measure_block(method, direction, window, history, np.array([cap_wh]), mask)
    needed = set(batch.baselines.used_intervals(0)) | set(window.interval_starts)
    figures = batch.figures(0)
    if has_conflict(needed):
        figures = RecordFigures(figures.baseline_wh, figures.metered_wh, 0, Quality.CONFLICT)
    return batch, figures, needed


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
    batch, figures, _ = _measure_one(
        BaselineMethod(facts.baseline_method),
        facts.direction,
        window,
        readings,
        facts.excluded_days.get(device_id, frozenset()),
        cap,
        lambda intervals: any((device_id, t) in conflicts for t in intervals),
    )
    record = DeviceRecord(
        device_id,
        bid.bid_index,
        figures.baseline_wh,
        figures.metered_wh,
        figures.delivered_wh,
        figures.quality,
    )
    return DeviceMeasurement(record, batch.used_readings(0))


def device_figures(
    method: BaselineMethod,
    direction: int,
    window: EventWindow,
    readings: Mapping[int, int],
    excluded_days: Collection[int],
    cap_wh: int,
    has_conflict: Callable[[set[int]], bool] = lambda _: False,
) -> tuple[RecordFigures, set[int]]:
    """A device's figures and the intervals its measurement needed (the rules of the module
    docstring); `has_conflict` says whether conflicting signed values exist for any of them."""
    _, figures, needed = _measure_one(
        method, direction, window, readings, excluded_days, cap_wh, has_conflict
    )
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


__all__ = [
    "SETTLED_STATUSES",
    "AwardedBid",
    "DeviceMeasurement",
    "MeasurementBatch",
    "ReadingSpan",
    "RecordFigures",
    "ReportUnavailableError",
    "RequestFacts",
    "RequestRows",
    "device_figures",
    "measure_block",
    "measure_device",
    "measure_request_block",
    "reading_span",
    "recompute_from_used_readings",
    "record_follows",
    "utc_day",
]
