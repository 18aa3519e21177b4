"""Properties of the settlement and clearing math that conservation alone does not pin
down (`tests/unit/test_settlement.py` has escrow = payouts + fees + refund): delivering
more never earns less, over-delivery earns nothing extra, a slash never exceeds the bond,
the threshold switches between pay and slash, and clearing follows the merit order."""

from __future__ import annotations

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from gridflex.rules.clearing import BidOffer, clear
from gridflex.rules.settlement import BPS, energy_wh, fee, settle_bid

TOKEN = 10**18

bid_terms = st.fixed_dictionaries(
    {
        "awarded_w": st.integers(1, 10_000_000),
        "duration_seconds": st.integers(1, 96).map(lambda intervals: intervals * 900),
        "price_per_kwh": st.integers(0, 10 * TOKEN),
        "availability_price_per_kwh": st.integers(0, TOKEN),
        "threshold_bps": st.integers(0, BPS),
        "bond": st.integers(0, 10**6 * TOKEN),
    }
)


@settings(max_examples=400)
@given(terms=bid_terms, less=st.integers(0, 10**9), more=st.integers(0, 10**9))
def test_delivering_more_never_earns_less_nor_slashes_more(
    terms: dict[str, int], less: int, more: int
) -> None:
    less, more = sorted((less, more))
    low = settle_bid(delivered_wh=less, **terms)
    high = settle_bid(delivered_wh=more, **terms)
    assert high.utilization >= low.utilization
    assert high.availability >= low.availability
    assert high.slashed <= low.slashed


@settings(max_examples=300)
@given(terms=bid_terms, extra=st.integers(1, 10**9))
def test_delivery_beyond_the_award_earns_exactly_what_the_award_earns(
    terms: dict[str, int], extra: int
) -> None:
    awarded_wh = energy_wh(terms["awarded_w"], terms["duration_seconds"])
    exact = settle_bid(delivered_wh=awarded_wh, **terms)
    over = settle_bid(delivered_wh=awarded_wh + extra, **terms)
    assert over == exact
    assert exact.slashed == 0
    assert exact.credited_wh == awarded_wh


@settings(max_examples=400)
@given(terms=bid_terms, delivered=st.integers(0, 10**9))
def test_the_threshold_switches_between_pay_and_slash_and_bounds_both(
    terms: dict[str, int], delivered: int
) -> None:
    outcome = settle_bid(delivered_wh=delivered, **terms)
    awarded_wh = outcome.awarded_wh
    assume(awarded_wh > 0)
    assert 0 <= outcome.slashed <= terms["bond"]
    assert outcome.utilization <= awarded_wh * terms["price_per_kwh"] // 1000
    assert outcome.credited_wh == min(delivered, awarded_wh)
    if outcome.credited_wh * BPS >= awarded_wh * terms["threshold_bps"]:
        assert outcome.slashed == 0
        assert outcome.utilization == outcome.credited_wh * terms["price_per_kwh"] // 1000
    else:
        assert outcome.utilization == 0
        shortfall = awarded_wh - outcome.credited_wh
        assert outcome.slashed == terms["bond"] * shortfall // awarded_wh


@settings(max_examples=200)
@given(terms=bid_terms)
def test_nothing_delivered_below_a_positive_threshold_slashes_the_whole_bond(
    terms: dict[str, int],
) -> None:
    assume(terms["threshold_bps"] > 0)
    outcome = settle_bid(delivered_wh=0, **terms)
    assume(outcome.awarded_wh > 0)
    assert (outcome.utilization, outcome.availability) == (0, 0)
    assert outcome.slashed == terms["bond"]


@settings(max_examples=300)
@given(terms=bid_terms, delivered=st.integers(0, 10**9), raise_by=st.integers(1, TOKEN))
def test_a_higher_price_never_pays_less(
    terms: dict[str, int], delivered: int, raise_by: int
) -> None:
    cheaper = settle_bid(delivered_wh=delivered, **terms)
    dearer = settle_bid(
        delivered_wh=delivered, **terms | {"price_per_kwh": terms["price_per_kwh"] + raise_by}
    )
    assert dearer.utilization >= cheaper.utilization
    assert dearer.slashed == cheaper.slashed


@settings(max_examples=300)
@given(gross=st.integers(0, 10**30), fee_bps=st.integers(0, BPS))
def test_the_fee_never_exceeds_the_gross(gross: int, fee_bps: int) -> None:
    assert 0 <= fee(gross, fee_bps) <= gross


@settings(max_examples=400)
@given(
    requested_w=st.integers(1, 2_000_000),
    offers=st.lists(
        st.tuples(st.integers(1_000, 500_000), st.integers(0, 100), st.integers(0, 10**6)),
        max_size=12,
    ),
    min_bid_w=st.integers(1, 5_000),
)
def test_clearing_follows_the_merit_order_and_never_over_awards(
    requested_w: int, offers: list[tuple[int, int, int]], min_bid_w: int
) -> None:
    """Bids may predate a raised minimum (1,000 W offers, minimum up to 5,000 W)."""
    bids = [
        BidOffer(i, f"0x{i:040x}", power, price, bond)
        for i, (power, price, bond) in enumerate(offers)
    ]
    result = clear(requested_w, bids, min_bid_w)
    unfilled = requested_w - result.total_awarded_w
    assert unfilled >= 0
    for bid in bids:
        awarded = result.awarded_w[bid.index]
        assert 0 <= awarded <= bid.power_w
        assert 0 <= result.kept_bond[bid.index] <= bid.bond
        if awarded < bid.power_w:  # a bid left (partly) unserved: at most a sliver is unmet
            assert unfilled < min_bid_w
        if 0 < awarded < bid.power_w:
            assert awarded >= min_bid_w, "no partial award below the minimum bid"
        if awarded:
            assert bid.price_per_kwh <= result.clearing_price
            # Served: every bid ahead of it in merit order (price, then bid time) is full,
            # or was passed over whole because only a sliver was left, larger than this one.
            for ahead in bids:
                if (ahead.price_per_kwh, ahead.index) < (bid.price_per_kwh, bid.index):
                    ahead_awarded = result.awarded_w[ahead.index]
                    assert ahead_awarded == ahead.power_w or (
                        ahead_awarded == 0 and ahead.power_w > bid.power_w == awarded
                    )
    partial = [b for b in bids if 0 < result.awarded_w[b.index] < b.power_w]
    assert len(partial) <= 1  # only the marginal bid is cut
