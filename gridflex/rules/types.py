"""The protocol's value types: the enums and struct shapes of the GridFlex contracts, as
plain Python values. Pure (no web3): the chain edge (`gridflex.chain`) decodes into these,
and every component passes them around."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from eth_utils import keccak

SETTLED_INTERVAL_SECONDS = frozenset({900, 1800})
"""The interval lengths a request can have and readings can be metered at (`FlexMarket`
refuses others with `InvalidInterval`): 15-minute ERCOT/EU periods, 30-minute GB
settlement periods. Oracles refuse readings of other lengths: they settle nothing."""
DEFAULT_INTERVAL_SECONDS = 900
"""The length a request or a node takes unless told otherwise."""


class DeviceKind(IntEnum):
    BATTERY = 0
    EV_CHARGER = 1
    HEAT_PUMP = 2
    HVAC = 3
    PV_INVERTER = 4
    INDUSTRIAL_LOAD = 5
    OTHER = 6


class Direction(IntEnum):
    REDUCE_CONSUMPTION = 0
    INCREASE_CONSUMPTION = 1


class BaselineMethod(IntEnum):
    MBMA = 0
    CAISO_10_OF_10 = 1
    PJM_HIGH_4_OF_5 = 2


class RequestStatus(IntEnum):
    NONE = 0
    OPEN = 1
    CLEARED = 2
    REPORTED = 3
    SETTLED = 4
    CANCELLED = 5
    EXPIRED = 6


def zone_id(name: str) -> bytes:
    """Grid zones are bytes32 on-chain: the keccak of a human name such as 'NL-AMS-01'."""
    return keccak(text=name)


@dataclass(frozen=True)
class RequestSpec:
    """A grid operator's flexibility request (fields of `IFlexMarket.RequestParams`)."""

    zone: bytes
    power_w: int
    window_start: int
    window_end: int
    price_cap_per_kwh: int
    gate_closure: int
    settlement_token: str
    direction: Direction = Direction.REDUCE_CONSUMPTION
    interval_seconds: int = DEFAULT_INTERVAL_SECONDS
    availability_price_per_kwh: int = 0
    baseline_method: BaselineMethod = BaselineMethod.MBMA
    pricing_rule: int = 0

    def as_tuple(self) -> tuple[Any, ...]:
        return (
            self.zone,
            int(self.direction),
            self.power_w,
            self.window_start,
            self.window_end,
            self.interval_seconds,
            self.price_cap_per_kwh,
            self.availability_price_per_kwh,
            self.gate_closure,
            int(self.baseline_method),
            int(self.pricing_rule),
            self.settlement_token,
        )


@dataclass(frozen=True)
class RequestState:
    """`IFlexMarket.Request` as read from the chain."""

    operator: str
    gate_closure: int
    direction: Direction
    baseline_method: int
    pricing_rule: int
    settlement_token: str
    power_w: int
    awarded_w: int
    window_start: int
    window_end: int
    interval_seconds: int
    bid_count: int
    status: RequestStatus
    # End of the pending report's dispute window (fixed when posted); after a void, the
    # time of the void, from which the report timeout counts again. 0 before any report.
    dispute_ends_at: int
    report_round: int
    signer_bitmap: int
    zone: bytes
    price_cap_per_kwh: int
    availability_price_per_kwh: int
    escrow: int
    clearing_price: int
    # Devices transferred at or after this time cannot be offered in the request.
    created_at: int
    # Bids ever placed, displaced ones included (the next bid's sequence).
    bids_placed: int = 0

    @property
    def duration_seconds(self) -> int:
        return self.window_end - self.window_start


@dataclass(frozen=True)
class RegistryDevice:
    """`IDeviceRegistry.Device` as read from the chain (decoded by name in gridflex.chain)."""

    owner: str
    capacity_w: int
    kind: DeviceKind
    key_type: int
    active: bool
    last_transfer_at: int
    zone: bytes
    key_x: bytes
    key_y: bytes


class ChallengeStatus(IntEnum):
    NONE = 0
    PENDING = 1
    REBUTTED = 2
    RESOLVED = 3
    MOOT = 4
    """Resolved with nothing left to judge (its round voided by another challenge, finalized
    or closed): the bond came back, nobody was slashed."""


@dataclass(frozen=True)
class DeviceEpoch:
    """`IDeviceRegistry.DeviceEpoch`: the device as it stood from `since` (`deviceAt`)."""

    since: int
    owner: str
    capacity_w: int
    key_type: int
    active: bool
    zone: bytes
    key_x: bytes
    key_y: bytes


class ArithmeticFault(IntEnum):
    """`IDeliveryDispute.Fault`: what an arithmetic fraud proof established."""

    ARITHMETIC = 0
    UNKNOWN_BID = 1
    BID_NOT_AWARDED = 2
    DEVICE_NOT_IN_BID = 3
    MALFORMED_READINGS = 4
    BID_TOTAL = 5
