"""An oracle committee for tests: seat k-of-n signer accounts on a deployment and start
each as a real `gridflex oracle serve` process on chain time, peers of each other."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from eth_account.signers.local import LocalAccount

from gridflex.chain.anvil import free_port
from gridflex.chain.protocol import Protocol
from support.oracle_process import OracleServer, start_oracle


def seat_committee(protocol: Protocol, accounts: Sequence[LocalAccount]) -> None:
    """Seat `accounts` in order; k is the strict majority after each seat (1, 2, 2, 3...)."""
    for seated, account in enumerate(accounts, start=1):
        protocol.client.w3.provider.make_request("anvil_setBalance", [account.address, hex(10**21)])
        protocol.seat_oracle(account, seated // 2 + 1)


def committee_urls(count: int) -> list[str]:
    """Base URLs on free ports, fixed before any oracle starts so each knows its peers."""
    return [f"http://127.0.0.1:{free_port()}" for _ in range(count)]


def committee_member_env(
    account: LocalAccount,
    index: int,
    urls: Sequence[str],
    workdir: Path,
    deployments_dir: Path,
    rpc_url: str,
    report_delay_seconds: int,
) -> dict[str, str]:
    """Settings of member `index`: its key, its own SQLite store, the others as peers."""
    return {
        "GRIDFLEX_ORACLE_RPC_URL": rpc_url,
        "GRIDFLEX_ORACLE_DEPLOYMENTS_DIR": str(deployments_dir),
        "GRIDFLEX_ORACLE_DATA_DIR": str(workdir / f"oracle-{index}"),
        "GRIDFLEX_ORACLE_SIGNER_KEY": account.key.hex(),
        "GRIDFLEX_ORACLE_PEERS": ",".join(url for url in urls if url != urls[index]),
        "GRIDFLEX_ORACLE_CLOCK": "chain",
        "GRIDFLEX_ORACLE_COMMITTEE_POLL_SECONDS": "0.3",
        "GRIDFLEX_ORACLE_REPORT_DELAY_SECONDS": str(report_delay_seconds),
    }


def start_committee(
    accounts: Sequence[LocalAccount],
    urls: Sequence[str],
    workdir: Path,
    deployments_dir: Path,
    rpc_url: str,
    report_delay_seconds: int,
    *,
    running: Sequence[int] | None = None,
) -> list[OracleServer]:
    """Start the members whose index is in `running` (default all) on their URLs' ports;
    on a failure the ones already started are stopped."""
    servers: list[OracleServer] = []
    try:
        for index, account in enumerate(accounts):
            if running is not None and index not in running:
                continue
            env = committee_member_env(
                account, index, urls, workdir, deployments_dir, rpc_url, report_delay_seconds
            )
            port = int(urls[index].rsplit(":", 1)[1])
            servers.append(start_oracle(workdir, env, port=port))
    except BaseException:
        for server in servers:
            server.stop()
        raise
    return servers
