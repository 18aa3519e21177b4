"""Explorer fixtures: an explorer database (SQLite in the test's directory) and an indexer
for a deployment of the test's own."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from explorer.db import create_explorer_engine, init_db


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = create_explorer_engine(f"sqlite:///{tmp_path / 'explorer.db'}")
    init_db(engine)
    return engine
