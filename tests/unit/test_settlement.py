"""Properties of the settlement and clearing mirrors: escrow always covers what a request
can pay, and escrow == payouts + fees + refund to the base unit."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gridflex.rules.clearing import BidOffer, clear, merit_order
from gridflex.rules.settlement import BidAward, PricingRule, escrow_for, settle_request

offers_strategy = st.lists(
    st.tuples(st.integers(1_000, 500_000), st.integers(1, 10**18)), min_size=0, max_size=12
)


@settings(max_examples=300)
@given(
    requested_w=st.integers(1_000, 2_000_000),
    offers=offers_strategy,
    intervals=st.integers(1, 96),
    cap_extra=st.integers(0, 10**18),
    availability_price=st.integers(0, 10**18),
    uniform=st.booleans(),
    fee_bps=st.integers(0, 1_000),
    threshold_bps=st.integers(0, 10_000),
    delivery_ratio_pct=st.lists(st.integers(0, 150), min_size=12, max_size=12),
)
def test_settlement_never_pays_more_than_escrow_and_conserves_it(
    requested_w: int,
    offers: list[tuple[int, int]],
    intervals: int,
    cap_extra: int,
    availability_price: int,
    uniform: bool,
    fee_bps: int,
    threshold_bps: int,
    delivery_ratio_pct: list[int],
) -> None:
    duration = intervals * 900
    cap = max((price for _, price in offers), default=1) + cap_extra
    escrow = escrow_for(requested_w, duration, cap, availability_price)
    bids = [
        BidOffer(i, f"0x{i:040x}", power, price, power * 10)
        for i, (power, price) in enumerate(offers)
    ]
    result = clear(requested_w, bids, 1_000)
    assert requested_w - result.total_awarded_w < 1_000 or result.total_awarded_w == sum(
        power for power, _ in offers
    )

    awards = [
        BidAward(b.bidder, result.awarded_w[b.index], b.price_per_kwh, result.kept_bond[b.index])
        for b in bids
    ]
    delivered = [
        result.awarded_w[b.index] * duration // 3600 * delivery_ratio_pct[b.index] // 100
        for b in bids
    ]
    outcome = settle_request(
        escrow=escrow,
        duration_seconds=duration,
        pricing_rule=PricingRule.UNIFORM if uniform else PricingRule.PAY_AS_BID,
        clearing_price=result.clearing_price,
        availability_price_per_kwh=availability_price,
        threshold_bps=threshold_bps,
        fee_bps=fee_bps,
        awards=awards,
        delivered_wh=delivered,
    )
    assert outcome.refund >= 0
    assert outcome.payouts + outcome.fees + outcome.refund == escrow


def test_merit_order_sorts_by_price_then_bid_time() -> None:
    offers = [
        BidOffer(0, "a", 1_000, 30, 0),
        BidOffer(1, "b", 1_000, 10, 0),
        BidOffer(2, "c", 1_000, 30, 0),
        BidOffer(3, "d", 1_000, 20, 0),
    ]
    assert merit_order(offers) == [1, 3, 0, 2]


def test_merit_order_breaks_ties_by_sequence_not_slot() -> None:
    """A bid that displaced another reuses its slot (issue 12 finding 6): slot 0 holds the
    latest bid, so among equal prices it ranks after the earlier one in slot 2, as
    `FlexMarket.clear` checks by (price, sequence)."""
    offers = [
        BidOffer(0, "late", 1_000, 30, 0, sequence=4),
        BidOffer(1, "b", 1_000, 10, 0, sequence=1),
        BidOffer(2, "early", 1_000, 30, 0, sequence=2),
    ]
    assert merit_order(offers) == [1, 2, 0]
    result = clear(2_000, offers, 1_000)
    assert result.awarded_w == {1: 1_000, 2: 1_000, 0: 0}


def test_clear_awards_last_bid_partially_and_keeps_its_bond_pro_rata() -> None:
    offers = [BidOffer(0, "a", 30_000, 20, 300), BidOffer(1, "b", 30_000, 15, 300)]
    result = clear(50_000, offers, 1_000)
    assert result.awarded_w == {1: 30_000, 0: 20_000}
    assert result.kept_bond == {1: 300, 0: 200}
    assert result.clearing_price == 20


def test_clear_never_awards_a_remainder_below_the_minimum_bid() -> None:
    """The demo's old sliver: 2 W left for a 3 kW bid capped each device at 0 Wh and
    slashed it whatever it delivered. Now the sliver stays unfilled, or goes whole to a
    later bid small enough (one placed when the minimum was lower)."""
    offers = [
        BidOffer(0, "a", 9_998, 10, 100),
        BidOffer(1, "b", 3_000, 20, 300),
        BidOffer(2, "c", 3_000, 30, 300),
    ]
    result = clear(10_000, offers, 1_000)
    assert result.awarded_w == {0: 9_998, 1: 0, 2: 0}
    assert result.kept_bond == {0: 100, 1: 0, 2: 0}
    assert result.clearing_price == 10
    # 1,000 W left is not below the minimum: awarded partially, bond kept pro rata.
    assert clear(10_998, offers, 1_000).awarded_w == {0: 9_998, 1: 1_000, 2: 0}
    assert clear(10_998, offers, 1_000).kept_bond[1] == 100
    # A 500 W bid placed under a lower minimum fits a 600 W remainder whole.
    offers.append(BidOffer(3, "d", 500, 40, 50))
    assert clear(10_598, offers, 1_000).awarded_w == {0: 9_998, 1: 0, 2: 0, 3: 500}
    assert clear(10_598, offers, 1_000).clearing_price == 40
