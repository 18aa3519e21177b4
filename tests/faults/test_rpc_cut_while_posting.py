"""The chain RPC goes away at the moment the committee posts its report: either the
transaction reaches the chain and only the answer is lost, or the transaction is lost
too. The oracle keeps retrying with back-off while the RPC is cut; once it is back, the
report is on chain exactly once and the oracle's account sent exactly one `submitReport`
(then one `finalize` after the dispute window): retries never post twice."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from eth_account import Account
from fault_support import (
    Fleet,
    RpcProxy,
    end_an_event,
    reports_submitted,
    settle_after_dispute_window,
    wait_for_status,
)
from support.chain import wait_for
from support.committee import committee_urls, seat_committee, start_committee
from web3 import Web3

from gridflex.chain.anvil import AnvilProcess, increase_time
from gridflex.rules.types import RequestStatus

pytestmark = pytest.mark.integration

REPORT_DELAY_S = 60
RETRIES_WHILE_CUT = 5


@pytest.mark.parametrize("deliver", [True, False], ids=["answer-lost", "transaction-lost"])
def test_report_is_posted_exactly_once_when_the_rpc_is_cut_while_posting(
    deliver: bool, fleet: Fleet, anvil: AnvilProcess, w3: Web3, tmp_path: Path
) -> None:
    governance = fleet.governance
    signer = Account.create()
    seat_committee(governance, [signer])
    proxy = RpcProxy(anvil.url)
    try:
        (oracle,) = start_committee(
            [signer], committee_urls(1), tmp_path, fleet.deployments_dir, proxy.url, REPORT_DELAY_S
        )
        try:
            event = end_an_event(fleet, w3)
            stored = httpx.post(oracle.url + "/v1/readings", json=event.units_json(), timeout=30)
            assert stored.status_code == 200, stored.text
            transactions_before = w3.eth.get_transaction_count(signer.address)

            proxy.cut_at_send(deliver=deliver)
            increase_time(w3, REPORT_DELAY_S)
            wait_for(proxy.cut.is_set, "the committee's post")
            wait_for(lambda: proxy.dropped >= RETRIES_WHILE_CUT, "the oracle to retry")
            status = governance.request(event.request_id).status
            assert status == (RequestStatus.REPORTED if deliver else RequestStatus.CLEARED)

            proxy.restore()
            wait_for_status(
                governance, event.request_id, RequestStatus.REPORTED, "the report after the cut"
            )
            settle_after_dispute_window(governance, w3, event.request_id)
            assert len(reports_submitted(governance, event.request_id)) == 1
            # One submitReport and one finalize: no retry became a second post.
            assert w3.eth.get_transaction_count(signer.address) == transactions_before + 2
            assert "committee step failed" in oracle.log()
        finally:
            oracle.stop()
    finally:
        proxy.close()
