"""What an oracle report commits to, byte for byte, so that oracles, the contracts, the
watcher and `gridflex verify` build and check the same roots.

- Device records: one per measured device, leaf types
  `(uint256 deviceId, uint16 bidIndex, int256 baselineWh, int256 meteredWh,
  int256 deliveredWh, uint8 quality)` summed over the event intervals; their
  StandardMerkleTree root is the report's `devicesRoot`.
- Used readings: per device, the (intervalStart, energyWh) pairs the measurement read
  (baseline history, adjustment window and event intervals), sorted by interval and packed
  as `abi.encodePacked(uint64 intervalStart, int64 energyWh)` (16 bytes each); leaf types
  `(uint256 deviceId, bytes32 keccak256(packed))`; their root is `readingsRoot`. A fraud
  proof shows one packed pair that differs from what the device signed.
- Leaves are encoded by hand (all fields are static ABI words), which is what
  `abi.encode` does, without eth-abi's per-call overhead; tests check the equality.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from functools import cached_property

import numpy as np

from gridflex.rules.keccak import keccak256
from gridflex.rules.merkle import MerkleTree, merkle_roots

DEVICE_RECORD_TYPES = ("uint256", "uint16", "int256", "int256", "int256", "uint8")
USED_READINGS_TYPES = ("uint256", "bytes32")
USED_READING_BYTES = 16


class Quality(IntEnum):
    """Data quality of one device's measurement (settles as zero delivery unless OK or
    FALLBACK)."""

    OK = 0
    FALLBACK = 1
    """The method's documented fallback baseline was used (e.g. too few eligible days)."""
    INSUFFICIENT_DATA = 2
    """No usable baseline or missing event intervals: zero delivery, visible in the report."""
    CONFLICT = 3
    """The device signed two different values for an interval it needs: zero delivery."""


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big", signed=value < 0)


@dataclass(frozen=True)
class DeviceRecord:
    device_id: int
    bid_index: int
    baseline_wh: int
    metered_wh: int
    delivered_wh: int
    quality: Quality

    def values(self) -> tuple[int, ...]:
        return (
            self.device_id, self.bid_index, self.baseline_wh,
            self.metered_wh, self.delivered_wh, int(self.quality),
        )  # fmt: skip

    def leaf(self) -> bytes:
        return keccak256(keccak256(b"".join(_word(v) for v in self.values())))

    def to_json(self) -> dict[str, int]:
        return {
            "deviceId": self.device_id, "bidIndex": self.bid_index,
            "baselineWh": self.baseline_wh, "meteredWh": self.metered_wh,
            "deliveredWh": self.delivered_wh, "quality": int(self.quality),
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, int]) -> DeviceRecord:
        return cls(
            int(data["deviceId"]), int(data["bidIndex"]), int(data["baselineWh"]),
            int(data["meteredWh"]), int(data["deliveredWh"]), Quality(int(data["quality"])),
        )  # fmt: skip


def pack_used_readings(readings: Iterable[tuple[int, int]]) -> bytes:
    """(intervalStart, energyWh) pairs sorted by interval, 16 bytes each."""
    ordered = sorted(readings)
    packed = np.empty(len(ordered), dtype=[("start", ">u8"), ("energy", ">i8")])
    if ordered:
        packed["start"], packed["energy"] = zip(*ordered, strict=True)
    return packed.tobytes()


def unpack_used_readings(packed: bytes) -> list[tuple[int, int]]:
    if len(packed) % USED_READING_BYTES:
        raise ValueError("packed readings must be a multiple of 16 bytes")
    rows = np.frombuffer(packed, dtype=[("start", ">u8"), ("energy", ">i8")])
    return [(int(start), int(energy)) for start, energy in rows]


def used_readings_leaf(device_id: int, packed: bytes) -> bytes:
    return keccak256(keccak256(_word(device_id) + keccak256(packed)))


_QUALITIES = list(Quality)


class RecordTable(Sequence[DeviceRecord]):
    """Device records held as int64 / uint8 columns (how the engine computes them), seen as
    a sequence of `DeviceRecord`: a record object is made only when one is asked for."""

    def __init__(self, *columns: np.ndarray) -> None:
        self.columns = [np.asarray(column) for column in columns]

    def __len__(self) -> int:
        return len(self.columns[0])

    def __getitem__(self, index):  # type: ignore[no-untyped-def, override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        values = [int(column[index]) for column in self.columns]
        return DeviceRecord(*values[:5], _QUALITIES[values[5]])

    def __iter__(self) -> Iterator[DeviceRecord]:
        for *values, quality in zip(*(column.tolist() for column in self.columns), strict=True):
            yield DeviceRecord(*values, _QUALITIES[quality])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]


class PackedReadings(Mapping[int, bytes]):
    """Used readings per device as one packed buffer (`n` records of 16 bytes) and per-device
    bounds in records, seen as {device id: packed bytes}; the bytes are cut when asked for."""

    def __init__(self, device_ids: np.ndarray, packed: np.ndarray, bounds: np.ndarray) -> None:
        self.device_ids = device_ids.tolist()
        self.row = {device: k for k, device in enumerate(self.device_ids)}
        self.buffer = packed.view(np.uint8).reshape(-1)
        self.bounds = bounds * USED_READING_BYTES
        self.replaced: dict[int, bytes] = {}

    def __getitem__(self, device_id: int) -> bytes:
        if device_id in self.replaced:
            return self.replaced[device_id]
        begin, end = self.bounds[self.row[device_id]]
        return self.buffer[begin:end].tobytes()

    def __iter__(self) -> Iterator[int]:
        return iter(self.device_ids)

    def __len__(self) -> int:
        return len(self.device_ids)


@dataclass(frozen=True)
class ReportTrees:
    """The two trees of one report and its per-bid delivery figures. The roots are computed
    when the report is measured; the trees themselves (for proofs) only when first asked."""

    records: Sequence[DeviceRecord]
    used_readings: Mapping[int, bytes]
    delivered_wh: list[int]
    devices_root: bytes
    readings_root: bytes

    @cached_property
    def devices_tree(self) -> MerkleTree:
        return MerkleTree.from_leaf_hashes([r.leaf() for r in self.records])

    @cached_property
    def readings_tree(self) -> MerkleTree:
        return MerkleTree.from_leaf_hashes(
            [used_readings_leaf(device, packed) for device, packed in self.used_readings.items()]
        )


def delivered_per_bid(bid_index: np.ndarray, delivered_wh: np.ndarray, bid_count: int) -> list[int]:
    """Per bid index, the sum of its devices' (non-negative) deliveries; zero for bids
    without measured devices."""
    totals = np.zeros(bid_count, dtype=np.int64)
    np.add.at(totals, np.asarray(bid_index, dtype=np.int64), np.maximum(delivered_wh, 0))
    return [int(total) for total in totals]


def build_report_trees(
    records: list[DeviceRecord], used_readings: dict[int, bytes], bid_count: int
) -> ReportTrees:
    """Trees and per-bid totals of a report given as records (by bid, then device) and
    used readings (by device); needs at least one record."""
    if not records:
        raise ValueError("a Merkle tree needs at least one leaf")
    devices_root, readings_root = merkle_roots(
        _leaf_array([r.leaf() for r in records]),
        _leaf_array([used_readings_leaf(d, packed) for d, packed in used_readings.items()]),
    )
    delivered = delivered_per_bid(
        np.array([r.bid_index for r in records]),
        np.array([r.delivered_wh for r in records]),
        bid_count,
    )
    return ReportTrees(records, used_readings, delivered, devices_root, readings_root)


def _leaf_array(leaves: list[bytes]) -> np.ndarray:
    return np.frombuffer(b"".join(leaves), dtype=np.uint8).reshape(-1, 32)
