"""One nonce source per key: an oracle's committee loop and its watcher both write with the
committee key, from two threads. Built as the oracle builds them (`build_service`), they
send concurrently on a real anvil: every transaction is mined, each with its own nonce.
(With a client, and so a nonce counter, of their own each, the second writer reused a
nonce the first had taken: "nonce too low" or a replaced transaction.)"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from eth_account import Account
from support.chain import funded_account

from gridflex.chain.anvil import AnvilProcess
from gridflex.chain.deployments import save_deployment
from gridflex.chain.protocol import Protocol
from oracle.config import OracleSettings
from oracle.service import build_service

pytestmark = pytest.mark.integration

SENDS_PER_WRITER = 6


def test_committee_loop_and_watcher_send_concurrently_without_a_nonce_collision(
    anvil: AnvilProcess, governance: Protocol, tmp_path: Path
) -> None:
    key = funded_account(governance.client.w3)
    save_deployment(governance.deployment, tmp_path)
    service = build_service(
        OracleSettings(  # type: ignore[call-arg]
            data_dir=tmp_path / "oracle",
            rpc_url=anvil.url,
            deployments_dir=tmp_path,
            signer_key="0x" + bytes(key.key).hex(),  # type: ignore[arg-type]
            clock="wall",
        )
    )
    try:
        assert service.committee is not None and service.watcher is not None
        writers = [service.committee.protocol, service.watcher.protocol]
        assert {writer.address for writer in writers} == {key.address}
        start = threading.Barrier(len(writers))
        receipts: list[dict] = []
        errors: list[Exception] = []

        def write(writer: Protocol) -> None:
            start.wait()
            try:
                for _ in range(SENDS_PER_WRITER):
                    spender = Account.create().address
                    receipts.append(
                        dict(writer.client.send(writer.token.functions.approve(spender, 1)))
                    )
            except Exception as error:  # collected: a thread's exception would be lost
                errors.append(error)

        threads = [threading.Thread(target=write, args=(writer,)) for writer in writers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        service.close()

    assert errors == []
    assert len(receipts) == len(writers) * SENDS_PER_WRITER
    assert all(receipt["status"] == 1 for receipt in receipts)
    w3 = governance.client.w3
    nonces = sorted(int(w3.eth.get_transaction(r["transactionHash"])["nonce"]) for r in receipts)
    assert nonces == list(range(len(receipts)))
