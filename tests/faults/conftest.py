"""Fault injection against real parts (issue 8): one file per fault, with real oracle
processes on the session anvil and a real node outbox and sender.

- Oracle SIGKILLed mid-ingest: already proven end to end by
  `tests/e2e/test_node_to_oracle.py::test_oracle_sigkilled_mid_stream_loses_no_acknowledged_
  reading_and_duplicates_none` (every unit acknowledged before the kill is in the database
  file, and after the restart every unit is stored exactly once).
- Chain RPC cut while a report is being posted: `test_rpc_cut_while_posting.py`.
- One oracle of three down: `test_one_oracle_of_three_down.py`.
- Node offline for hours, then catching up: `test_node_offline_for_hours.py`.
- Database locked, disk full, file size limit: `test_store_faults.py`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fault_support import Fleet, deploy_fleet
from web3 import Web3

from gridflex.chain.anvil import AnvilProcess


@pytest.fixture
def fleet(w3: Web3, tmp_path: Path) -> Fleet:
    return deploy_fleet(w3, tmp_path / "deployments")


@pytest.fixture
def oracle_env(anvil: AnvilProcess, fleet: Fleet, tmp_path: Path) -> dict[str, str]:
    """An oracle on the fleet's deployment with a SQLite file under `oracle/`."""
    return {
        "GRIDFLEX_ORACLE_RPC_URL": anvil.url,
        "GRIDFLEX_ORACLE_DEPLOYMENTS_DIR": str(fleet.deployments_dir),
        "GRIDFLEX_ORACLE_DATA_DIR": str(tmp_path / "oracle"),
    }
