"""Reads `tests/vectors/baselines.json`: builds each vector's meter readings from its
edit list, so the unit tests (Python) and the anvil tests (Solidity) read the same data."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gridflex.rules.baselines import (
    LOOKBACK_DAYS,
    SECONDS_PER_DAY,
    EventWindow,
    block_days,
    block_starts,
)
from gridflex.rules.types import BaselineMethod

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parents[1] / "vectors" / "baselines.json").read_text()
)


def _seconds(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 3600 + int(minutes) * 60


@dataclass(frozen=True)
class BaselineVector:
    name: str
    method: int
    window: EventWindow
    readings: dict[int, int]
    excluded_days: tuple[int, ...]
    expected: dict[str, Any]

    def day(self, relative: int) -> int:
        return self.window.event_day + relative

    def at(self, relative_day: int, hhmm: str) -> int:
        return self.day(relative_day) * SECONDS_PER_DAY + _seconds(hhmm)

    def shifted(self, relative_day: int, starts: list[int]) -> list[int]:
        """The vector's readings at `starts` moved back to `relative_day`."""
        return [self.readings[t + relative_day * SECONDS_PER_DAY] for t in starts]


def _apply(
    readings: dict[int, int], edits: list[dict[str, Any]], event_day: int, step: int
) -> None:
    for edit in edits:
        first, last = edit["days"]
        for relative in range(first, last + 1):
            midnight = (event_day + relative) * SECONDS_PER_DAY
            begin = _seconds(edit.get("from", "00:00"))
            end = _seconds(edit["to"]) if "to" in edit else SECONDS_PER_DAY
            for t in range(midnight + begin, midnight + end, step):
                if edit.get("missing"):
                    readings.pop(t, None)
                elif "add" in edit:
                    readings[t] += edit["add"]
                else:
                    readings[t] = edit["wh"]


def baseline_vectors() -> list[BaselineVector]:
    vectors = []
    for case in VECTORS["baselines"]:
        step = case["interval_seconds"]
        start = case["event_day"] * SECONDS_PER_DAY + _seconds(case["start"])
        window = EventWindow(start, start + case["intervals"] * step, step)
        readings: dict[int, int] = {}
        _apply(readings, VECTORS["histories"][case["history"]]["edits"], window.event_day, step)
        _apply(readings, case["edits"], window.event_day, step)
        excluded = tuple(window.event_day + d for d in case["excluded_days"])
        vectors.append(
            BaselineVector(
                case["name"], case["method"], window, readings, excluded, case["expected"]
            )
        )
    return vectors


def random_device_histories(
    rng: np.random.Generator, method: BaselineMethod, window: EventWindow, devices: int
) -> tuple[list[dict[int, int]], list[set[int]]]:
    """Seeded per-device histories with gaps and excluded days, for engine comparisons."""
    starts = block_starts(method, window)
    days = block_days(method)
    missing_rate = rng.choice([0.0, 0.002, 0.02, 0.3], size=devices)
    readings_per_device, excluded_per_device = [], []
    for device in range(devices):
        readings = {}
        level = int(rng.integers(-3000, 5000))
        for i in range(days):
            shift = (days - 1 - i) * SECONDS_PER_DAY
            for start in starts:
                if rng.random() >= missing_rate[device]:
                    readings[start - shift] = level + int(rng.integers(-800, 800))
        readings_per_device.append(readings)
        count = int(rng.integers(0, 12))
        excluded_per_device.append(
            {window.event_day - int(d) for d in rng.integers(1, LOOKBACK_DAYS + 1, size=count)}
        )
    return readings_per_device, excluded_per_device
