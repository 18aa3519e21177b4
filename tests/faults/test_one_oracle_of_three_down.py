"""One oracle of a 2-of-3 committee is SIGKILLed before the event is measured: the one
that would post first (lowest address). The two others still measure, exchange
signatures, post the report exactly once with two signatures (the next in line takes
over the post), and finalize it; the provider is paid what the reported delivery earns."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from eth_account import Account
from fault_support import (
    PRICE_PER_KWH,
    Fleet,
    end_an_event,
    reports_submitted,
    settle_after_dispute_window,
    wait_for_status,
)
from support.committee import committee_urls, seat_committee, start_committee
from web3 import Web3

from gridflex.chain.anvil import AnvilProcess, increase_time
from gridflex.rules.settlement import fee, settle_bid
from gridflex.rules.types import RequestStatus

pytestmark = pytest.mark.integration

REPORT_DELAY_S = 60
THRESHOLD_BPS = 5_000


def test_two_of_three_oracles_report_once_and_settle_when_one_is_down(
    fleet: Fleet, anvil: AnvilProcess, w3: Web3, tmp_path: Path
) -> None:
    governance = fleet.governance
    signers = sorted((Account.create() for _ in range(3)), key=lambda a: int(a.address, 16))
    seat_committee(governance, signers)
    assert int(governance.committee.functions.threshold().call()) == 2
    oracles = start_committee(
        signers, committee_urls(3), tmp_path, fleet.deployments_dir, anvil.url, REPORT_DELAY_S
    )
    try:
        first_poster, *alive = oracles
        first_poster.kill()
        event = end_an_event(fleet, w3)
        for oracle in alive:
            stored = httpx.post(oracle.url + "/v1/readings", json=event.units_json(), timeout=30)
            assert stored.status_code == 200, stored.text

        increase_time(w3, REPORT_DELAY_S)
        wait_for_status(
            governance, event.request_id, RequestStatus.REPORTED, "the two oracles' report"
        )
        (submitted,) = reports_submitted(governance, event.request_id)
        assert list(submitted["args"]["deliveredWh"]) == [event.delivered_wh]
        assert bin(submitted["args"]["signerBitmap"]).count("1") == 2
        poster = w3.eth.get_transaction(submitted["transactionHash"])["from"]
        assert poster in {signer.address for signer in signers[1:]}  # the next in line

        settle_after_dispute_window(governance, w3, event.request_id)
        assert len(reports_submitted(governance, event.request_id)) == 1
        awarded_w = sum(fleet.capacities_w.values())
        bond = awarded_w * int(governance.market.functions.bondPerKW().call()) // 1000
        outcome = settle_bid(
            awarded_w,
            event.duration_seconds,
            event.delivered_wh,
            PRICE_PER_KWH,
            0,
            THRESHOLD_BPS,
            bond,
        )
        fee_bps = int(governance.market.functions.protocolFeeBps().call())
        token = governance.token.address
        assert outcome.gross > 0 and outcome.slashed == 0
        assert governance.claimable(token, fleet.owner.address) == outcome.gross - fee(
            outcome.gross, fee_bps
        )
    finally:
        for oracle in oracles:
            oracle.stop()
