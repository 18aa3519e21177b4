"""`gridflex demo --json` as a user runs it: a subprocess that starts its own anvil, oracle
processes and node processes, tells the story and prints the summary. The summary is
checked against the settlement rules (`gridflex.rules.settlement`, the Python mirror of
`FlexMarket.finalize`), and every process the demo started must be gone when it exits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from gridflex.rules.settlement import BidAward, PricingRule, settle_request

pytestmark = pytest.mark.integration

REQUIRED_INTEGERS = (
    "id", "escrow", "payouts", "fees", "slashed", "refund", "awarded_w", "delivered_wh",
)  # fmt: skip


def run_demo(tmp_path: Path, *args: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDFLEX")}
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "demo", "--json", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-6000:]
    summary = json.loads(result.stdout)  # progress went to stderr: stdout is only JSON
    for pid in summary["processes"]:  # anvil, oracles, nodes: all stopped and reaped
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    return summary


def check_settlement(request: dict[str, Any]) -> None:
    """Every awarded bid has a delivery figure, each payout is what the pricing rule gives
    for the reported delivery, and the escrow is conserved to the base unit."""
    for key in REQUIRED_INTEGERS:
        assert isinstance(request[key], int), key
    bids = request["bids"]
    for bid in bids:
        assert (bid["delivered_wh"] is None) == (bid["awarded_w"] == 0), bid
    awards = [
        BidAward(b["bidder"], b["awarded_w"], b["price_per_kwh"], b["bond"]) if b["awarded_w"]
        else None
        for b in bids
    ]  # fmt: skip
    expected = settle_request(
        escrow=request["escrow"],
        duration_seconds=request["window_end"] - request["window_start"],
        pricing_rule=PricingRule[request["pricing_rule"]],
        clearing_price=request["clearing_price"],
        availability_price_per_kwh=request["availability_price_per_kwh"],
        threshold_bps=request["delivery_threshold_bps"],
        fee_bps=request["fee_bps"],
        awards=awards,
        delivered_wh=[b["delivered_wh"] or 0 for b in bids],
    )
    paid = [b for b in bids if b["awarded_w"]]
    assert [(b["payout"], b["fee"], b["slashed"]) for b in paid] == [
        (s.payout, s.fee, s.outcome.slashed) for s in expected.bids
    ]
    assert (request["payouts"], request["fees"], request["refund"], request["slashed"]) == (
        expected.payouts, expected.fees, expected.refund, expected.slashed,
    )  # fmt: skip
    assert request["delivered_wh"] == sum(b["delivered_wh"] or 0 for b in bids)
    assert request["awarded_w"] == sum(b["awarded_w"] for b in bids)
    assert request["payouts"] + request["fees"] + request["refund"] == request["escrow"]
    assert request["conserved"] is True


def test_demo_market_story_settles_every_request(tmp_path: Path) -> None:
    summary = run_demo(tmp_path, "--devices", "20", "--seed", "7")
    assert summary["scenario"] == "market" and summary["devices"] == 20
    requests = summary["requests"]
    assert [r["baseline"] for r in requests] == ["CAISO_10_OF_10", "MBMA"]
    for request in requests:
        check_settlement(request)
        assert len(request["report_signers"]) >= summary["threshold"]
    # Real delivery happened and was paid: not an all-zero settlement.
    assert all(r["awarded_w"] > 0 and r["delivered_wh"] > 0 and r["payouts"] > 0 for r in requests)
    # Everything owed was withdrawn (pull payments): payouts + fees + refunds of both.
    assert summary["withdrawn"] == sum(r["payouts"] + r["fees"] + r["refund"] for r in requests)


def test_demo_fraud_story_slashes_the_colluders_and_settles_the_honest_report(
    tmp_path: Path,
) -> None:
    summary = run_demo(tmp_path, "--devices", "12", "--scenario", "fraud")
    fraud = summary["fraud"]
    (request,) = summary["requests"]
    check_settlement(request)
    assert fraud["request_id"] == request["id"]
    assert fraud["forged_energy_wh"] != fraud["signed_energy_wh"]
    assert fraud["voided_round"] == 0 and request["report_round"] == 1
    assert len(fraud["slashed_oracles"]) == 2
    assert fraud["challenger"] not in fraud["slashed_oracles"]
    assert fraud["slashed_total"] == 2 * fraud["oracle_bond"]
    assert (
        fraud["challenger_reward"]
        == fraud["slashed_total"] * fraud["challenger_share_bps"] // 10_000
    )
    # The settled report was signed by the honest oracle and the newly seated one only.
    assert fraud["challenger"] in request["report_signers"]
    assert not set(request["report_signers"]) & set(fraud["slashed_oracles"])


def _children(pid: int) -> set[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return {int(p) for p in path.read_text().split()} if path.exists() else set()


def test_ctrl_c_mid_story_stops_every_process_the_demo_started(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDFLEX")}
    demo = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "demo", "--devices", "4",
         "--workdir", str(tmp_path / "demo")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        started: set[int] = set()
        while time.monotonic() < deadline and len(started) < 6:  # anvil, 3 oracles, 2 nodes
            started |= _children(demo.pid)
            time.sleep(0.2)
        assert len(started) >= 6, demo.stdout.read() if demo.poll() is not None else started
        demo.send_signal(signal.SIGINT)
        output, _ = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
    assert demo.returncode == 0, output[-4000:]
    assert b"every process the demo started is gone" in output
    for pid in started:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_demo_community_story_pays_every_household_through_its_pool(tmp_path: Path) -> None:
    summary = run_demo(tmp_path, "--devices", "10", "--scenario", "community")
    (request,) = summary["requests"]
    check_settlement(request)
    community, aggregator = summary["pools"]
    assert (community["households"], aggregator["households"]) == (200, 50)
    for pool, commission_bps in ((community, 500), (aggregator, 2_500)):
        assert pool["commission"] == pool["payout"] * commission_bps // 10_000
        assert pool["claims"] > 0 and pool["claimed"] > 0
        assert pool["claimed"] + pool["commission"] + pool["dust"] == pool["payout"]
        assert 0 <= pool["dust"] < pool["devices"]
    # The pools' payouts are their bids' payouts in the market's settlement.
    payouts = {b["index"]: b["payout"] for b in request["bids"] if b["awarded_w"]}
    assert {payouts[p["bid_index"]] for p in (community, aggregator)} == {
        community["payout"],
        aggregator["payout"],
    }
