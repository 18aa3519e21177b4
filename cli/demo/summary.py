"""What the demo reports, read back from the chain after settlement (never from the
demo's own bookkeeping): per request the parameters, every bid with its award, the
delivery the committee reported, the settlement of each bid, and the totals with the
conservation check (escrow = payouts + fees + refund, to the base unit).

Token amounts are integers in base units (JSON) and shown in whole tokens (table)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from gridflex.chain.protocol import Protocol
from gridflex.errors_text import format_time
from gridflex.rules.settlement import PricingRule
from gridflex.rules.types import BaselineMethod
from gridflex.verify import signers_of


@dataclass
class BidSummary:
    index: int
    bidder: str
    node: int | None
    device_ids: list[int]
    power_w: int
    price_per_kwh: int
    bond: int
    awarded_w: int
    delivered_wh: int | None
    """The committee's figure for an awarded bid (final report); None if not awarded."""
    utilization: int = 0
    availability: int = 0
    fee: int = 0
    slashed: int = 0
    payout: int = 0


@dataclass
class RequestSummary:
    id: int
    title: str
    operator: str
    token: str
    token_symbol: str
    baseline: str
    pricing_rule: str
    power_w: int
    window_start: int
    window_end: int
    price_cap_per_kwh: int
    availability_price_per_kwh: int
    delivery_threshold_bps: int
    fee_bps: int
    escrow: int
    awarded_w: int
    clearing_price: int
    delivered_wh: int
    payouts: int
    fees: int
    slashed: int
    refund: int
    conserved: bool
    report_round: int
    report_signers: list[str]
    bids: list[BidSummary] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def summarize_request(
    protocol: Protocol, request_id: int, title: str, node_of: dict[str, int]
) -> RequestSummary:
    """Everything about a settled request, from its contract state and events."""
    market = protocol.market
    state = protocol.request(request_id)
    (created,) = protocol.events(market, "RequestCreated", requestId=request_id)
    placed = protocol.bid_placements(request_id)
    settled_bids = {
        int(e.args["bidIndex"]): e.args
        for e in protocol.events(market, "BidSettled", requestId=request_id)
    }
    (settled,) = protocol.events(market, "RequestSettled", requestId=request_id)
    reports = protocol.report_submissions(
        request_id, state.report_round
    )  # none when nothing was awarded (settled at clearing with a full refund)
    delivered = list(reports[0].delivered_wh) if reports else []
    awarded = protocol.awarded_w(request_id)
    bids = []
    for offer in protocol.bids(request_id):
        outcome = settled_bids.get(offer.index)
        bid = BidSummary(
            index=offer.index, bidder=offer.bidder, node=node_of.get(offer.bidder),
            device_ids=list(placed[offer.index]),
            power_w=offer.power_w, price_per_kwh=offer.price_per_kwh, bond=offer.bond,
            awarded_w=awarded[offer.index],
            delivered_wh=delivered[offer.index] if awarded[offer.index] else None,
        )  # fmt: skip
        if outcome is not None:
            bid.utilization, bid.availability = (
                int(outcome["utilization"]),
                int(outcome["availability"]),
            )
            bid.fee, bid.slashed = int(outcome["fee"]), int(outcome["slashed"])
            bid.payout = bid.utilization + bid.availability - bid.fee
        bids.append(bid)
    args = settled.args
    payouts, fees, refund = int(args["payouts"]), int(args["fees"]), int(args["refund"])
    escrow = int(created.args["escrow"])
    signers: list[str] = []
    if reports:
        signers = list(signers_of(protocol, reports[0].signer_bitmap, reports[0].block_number))
    return RequestSummary(
        id=request_id, title=title, operator=state.operator, token=state.settlement_token,
        token_symbol=protocol.token_symbol(state.settlement_token),
        baseline=BaselineMethod(state.baseline_method).name,
        pricing_rule=PricingRule(state.pricing_rule).name,
        power_w=state.power_w, window_start=state.window_start, window_end=state.window_end,
        price_cap_per_kwh=state.price_cap_per_kwh,
        availability_price_per_kwh=state.availability_price_per_kwh,
        delivery_threshold_bps=protocol.delivery_threshold_bps(),
        fee_bps=protocol.protocol_fee_bps(),
        escrow=escrow, awarded_w=state.awarded_w,
        clearing_price=state.clearing_price, delivered_wh=sum(delivered),
        payouts=payouts, fees=fees, slashed=int(args["slashed"]), refund=refund,
        conserved=payouts + fees + refund == escrow,
        report_round=state.report_round, report_signers=signers,
        bids=bids,
    )  # fmt: skip


def withdrawn_total(protocol: Protocol, token: str, from_block: int) -> int:
    """Everything withdrawn from the market in `token` since `from_block`."""
    events = protocol.events(protocol.market, "Withdrawn", from_block=from_block, token=token)
    return sum(int(e.args["amount"]) for e in events)


# ─── Rendering ────────────────────────────────────────────────────────────────────────

UNIT = 10**18


def _tokens(amount: int, symbol: str) -> str:
    return f"{amount / UNIT:,.4f} {symbol}"


def print_request(console: Console, summary: RequestSummary) -> None:
    s = summary
    table = Table(
        title=f"Request {s.id}: {s.title}",
        caption=(
            f"{s.power_w / 1000:,.0f} kW asked, {format_time(s.window_start)} to "
            f"{format_time(s.window_end)}; baseline {s.baseline}, {s.pricing_rule} pricing; "
            f"report round {s.report_round} signed by {len(s.report_signers)} oracles"
        ),
    )
    for column in ("bid", "node", "devices", "price /kWh", "awarded kW", "delivered kWh",
                   "payout", "slashed"):  # fmt: skip
        table.add_column(column, justify="right")
    for bid in s.bids:
        table.add_row(
            str(bid.index), "-" if bid.node is None else str(bid.node), str(len(bid.device_ids)),
            _tokens(bid.price_per_kwh, s.token_symbol), f"{bid.awarded_w / 1000:,.1f}",
            "-" if bid.delivered_wh is None else f"{bid.delivered_wh / 1000:,.3f}",
            _tokens(bid.payout, s.token_symbol) if bid.awarded_w else "passed over",
            _tokens(bid.slashed, "FLEX") if bid.slashed else "",
        )  # fmt: skip
    table.add_section()
    table.add_row(
        "total", "", "", f"clearing {_tokens(s.clearing_price, s.token_symbol)}",
        f"{s.awarded_w / 1000:,.1f}", f"{s.delivered_wh / 1000:,.3f}",
        _tokens(s.payouts, s.token_symbol), _tokens(s.slashed, "FLEX") if s.slashed else "",
    )  # fmt: skip
    console.print(table)
    verdict = "[green]holds[/]" if s.conserved else "[red]BROKEN[/]"
    console.print(
        f"  escrow {_tokens(s.escrow, s.token_symbol)} = payouts "
        f"{_tokens(s.payouts, s.token_symbol)} + fees {_tokens(s.fees, s.token_symbol)} + "
        f"refund {_tokens(s.refund, s.token_symbol)}: {verdict} (to the base unit)"
    )
