"""Settlement arithmetic, the Python twin of `contracts/libraries/SettlementMath.sol`.

Integers only: power in W, energy in Wh, time in seconds, money in token base units.
One rounding rule, the contract's: every quotient rounds down and what rounding leaves
over stays in escrow and goes back to the grid operator with the refund. Tests run both
implementations on the same vectors (`tests/vectors/settlement.json`) and must agree to
the unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

SECONDS_PER_HOUR = 3600
WH_PER_KWH = 1000
W_PER_KW = 1000
W_SECONDS_PER_KW_HOUR = 3_600_000
BPS = 10_000


class PricingRule(IntEnum):
    PAY_AS_BID = 0
    UNIFORM = 1


@dataclass(frozen=True)
class BidOutcome:
    """What one awarded bid earns and loses (fields match `SettlementMath.BidOutcome`)."""

    awarded_wh: int
    credited_wh: int
    utilization: int
    availability: int
    slashed: int

    @property
    def gross(self) -> int:
        return self.utilization + self.availability


def mul_div(x: int, y: int, denominator: int) -> int:
    """floor(x * y / denominator) on unbounded integers, as OpenZeppelin's Math.mulDiv."""
    return x * y // denominator


def energy_wh(power_w: int, duration_seconds: int) -> int:
    return power_w * duration_seconds // SECONDS_PER_HOUR


def max_budget(
    power_w: int, duration_seconds: int, price_cap_per_kwh: int, availability_price_per_kwh: int
) -> tuple[int, int]:
    """(utilization, availability) at the cap for the full power: the escrow is their sum."""
    utilization = mul_div(energy_wh(power_w, duration_seconds), price_cap_per_kwh, WH_PER_KWH)
    availability = mul_div(
        power_w * duration_seconds, availability_price_per_kwh, W_SECONDS_PER_KW_HOUR
    )
    return utilization, availability


def escrow_for(
    power_w: int, duration_seconds: int, price_cap_per_kwh: int, availability_price_per_kwh: int
) -> int:
    return sum(max_budget(power_w, duration_seconds, price_cap_per_kwh, availability_price_per_kwh))


def settle_bid(
    awarded_w: int,
    duration_seconds: int,
    delivered_wh: int,
    price_per_kwh: int,
    availability_price_per_kwh: int,
    threshold_bps: int,
    bond: int,
) -> BidOutcome:
    """Utilization on min(delivered, awarded) energy, nothing below the delivery threshold
    (then the bond is slashed in proportion to the shortfall); availability for the awarded
    power scaled by the delivery ratio capped at 100%."""
    awarded_wh = energy_wh(awarded_w, duration_seconds)
    if awarded_wh == 0:
        return BidOutcome(0, 0, 0, 0, 0)
    credited_wh = min(delivered_wh, awarded_wh)
    meets_threshold = credited_wh * BPS >= awarded_wh * threshold_bps
    utilization = mul_div(credited_wh, price_per_kwh, WH_PER_KWH) if meets_threshold else 0
    slashed = 0 if meets_threshold else mul_div(bond, awarded_wh - credited_wh, awarded_wh)
    full_availability = mul_div(
        awarded_w * duration_seconds, availability_price_per_kwh, W_SECONDS_PER_KW_HOUR
    )
    availability = mul_div(full_availability, credited_wh, awarded_wh)
    return BidOutcome(awarded_wh, credited_wh, utilization, availability, slashed)


def fee(gross: int, fee_bps: int) -> int:
    return gross * fee_bps // BPS


def pool_split(payout: int, commission_bps: int) -> tuple[int, int]:
    """A pool bid's payout as (operator commission, members' pot); SettlementMath.poolSplit."""
    commission = payout * commission_bps // BPS
    return commission, payout - commission


def member_share(member_pot: int, bid_delivered_wh: int, device_delivered_wh: int) -> int:
    """A device's share of its pool bid's member pot, rounded down (SettlementMath.memberShare):
    the pot split by delivered energy; a device that delivered nothing gets nothing."""
    if bid_delivered_wh == 0 or device_delivered_wh <= 0:
        return 0
    return member_pot * device_delivered_wh // bid_delivered_wh


def bond_for(power_w: int, bond_per_kw: int) -> int:
    return power_w * bond_per_kw // W_PER_KW


@dataclass(frozen=True)
class BidAward:
    """An awarded bid as settlement sees it."""

    bidder: str
    awarded_w: int
    price_per_kwh: int
    bond: int


@dataclass(frozen=True)
class BidSettlement:
    bidder: str
    outcome: BidOutcome
    fee: int

    @property
    def payout(self) -> int:
        return self.outcome.gross - self.fee


@dataclass(frozen=True)
class RequestSettlement:
    """The whole settlement of one request; `escrow == payouts + fees + refund` always."""

    escrow: int
    bids: list[BidSettlement]

    @property
    def payouts(self) -> int:
        return sum(b.payout for b in self.bids)

    @property
    def fees(self) -> int:
        return sum(b.fee for b in self.bids)

    @property
    def gross(self) -> int:
        return sum(b.outcome.gross for b in self.bids)

    @property
    def refund(self) -> int:
        return self.escrow - self.gross

    @property
    def slashed(self) -> int:
        return sum(b.outcome.slashed for b in self.bids)


def settle_request(
    *,
    escrow: int,
    duration_seconds: int,
    pricing_rule: PricingRule,
    clearing_price: int,
    availability_price_per_kwh: int,
    threshold_bps: int,
    fee_bps: int,
    awards: list[BidAward | None],
    delivered_wh: list[int],
) -> RequestSettlement:
    """Settles every awarded bid as `FlexMarket.finalize` does; `awards[i]` is None for a
    bid that was not awarded (its delivery figure is ignored)."""
    settled: list[BidSettlement] = []
    for award, delivered in zip(awards, delivered_wh, strict=True):
        if award is None or award.awarded_w == 0:
            continue
        price = clearing_price if pricing_rule == PricingRule.UNIFORM else award.price_per_kwh
        outcome = settle_bid(
            award.awarded_w,
            duration_seconds,
            delivered,
            price,
            availability_price_per_kwh,
            threshold_bps,
            award.bond,
        )
        settled.append(BidSettlement(award.bidder, outcome, fee(outcome.gross, fee_bps)))
    return RequestSettlement(escrow, settled)
