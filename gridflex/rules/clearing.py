"""Merit-order clearing, the Python twin of `FlexMarket.clear`.

The contract does not sort: anyone computes the merit order off-chain with
`merit_order` and the contract checks it in one pass. `clear` then reproduces the awards
so that nodes and explorers can predict and check them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BidOffer:
    index: int
    """The bid's slot; a bid that displaced another reuses its slot, so not bid time."""
    bidder: str
    power_w: int
    price_per_kwh: int
    bond: int
    sequence: int | None = None
    """`Bid.sequence`: order of placement in the request (None: the index, as when no bid
    was ever displaced)."""

    @property
    def placement(self) -> int:
        return self.index if self.sequence is None else self.sequence


@dataclass(frozen=True)
class ClearingResult:
    awarded_w: dict[int, int]
    """Awarded power per bid index (0 for bids not awarded)."""
    kept_bond: dict[int, int]
    """Bond still locked per bid index after clearing."""
    clearing_price: int
    """Price of the last (marginal) awarded bid; what uniform pricing pays everyone."""

    @property
    def total_awarded_w(self) -> int:
        return sum(self.awarded_w.values())


def merit_order(offers: list[BidOffer]) -> list[int]:
    """Bid indices by ascending price, then by placement (`Bid.sequence`, bid time): the
    order `FlexMarket.clear` checks."""
    return [o.index for o in sorted(offers, key=lambda o: (o.price_per_kwh, o.placement))]


def clear(requested_w: int, offers: list[BidOffer], min_bid_w: int) -> ClearingResult:
    """Accepts offers in merit order until `requested_w` is met; the last one partially,
    but never by less than `min_bid_w` (`FlexMarket.minBidW`): a smaller remainder is left
    unfilled, or goes to a later bid that fits it whole.

    A partly awarded bid keeps floor(bond * awarded / offered) locked, as the contract does.
    """
    by_index = {o.index: o for o in offers}
    remaining_w = requested_w
    awarded: dict[int, int] = {}
    kept: dict[int, int] = {}
    clearing_price = 0
    for index in merit_order(offers):
        offer = by_index[index]
        if remaining_w == 0 or (remaining_w < offer.power_w and remaining_w < min_bid_w):
            awarded[index], kept[index] = 0, 0
            continue
        award_w = min(offer.power_w, remaining_w)
        remaining_w -= award_w
        awarded[index] = award_w
        kept[index] = (
            offer.bond * award_w // offer.power_w if award_w < offer.power_w else offer.bond
        )
        clearing_price = offer.price_per_kwh
    return ClearingResult(awarded, kept, clearing_price)
