"""Oracle fixtures: a store on SQLite (always) and PostgreSQL (when 127.0.0.1:5432
answers, in a throwaway database), simulated meters, and an ingestor over them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from oracle_testkit import (
    CHAIN_ID,
    DOMAIN,
    SimulatedMeter,
    StaticDirectory,
)
from sqlalchemy import Engine
from support.postgres import POSTGRES_ADMIN_URL, postgres_available

from oracle.clock import WallClock
from oracle.config import OracleSettings
from oracle.db import create_oracle_engine, init_db
from oracle.ingest import IngestLimits, Ingestor


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL database for the session, dropped at the end."""
    reason = postgres_available()
    if reason is not None:
        pytest.skip(reason)
    import psycopg

    name = f"gridflex_oracle_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> OracleSettings:
    """Oracle settings on a fresh SQLite file, or on the session's PostgreSQL database
    (emptied first, so each test starts from zero rows)."""
    if request.param == "sqlite":
        return OracleSettings(data_dir=tmp_path, deployments_dir=tmp_path, chain_id=CHAIN_ID)
    url = request.getfixturevalue("postgres_url")
    settings = OracleSettings(database_url=url, deployments_dir=tmp_path, chain_id=CHAIN_ID)
    engine = create_oracle_engine(settings)
    init_db(engine)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "TRUNCATE conflict_evidence, readings, meter_units, oracle_reports, "
            "report_signatures RESTART IDENTITY CASCADE"
        )
    engine.dispose()
    return settings


@pytest.fixture
def store_engine(store_settings: OracleSettings) -> Iterator[Engine]:
    engine = create_oracle_engine(store_settings)
    init_db(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def meters() -> list[SimulatedMeter]:
    """Two secp256k1 meters and one P-256 meter."""
    return [
        SimulatedMeter.secp256k1(1, 10_000),
        SimulatedMeter.secp256k1(2, 40_000),
        SimulatedMeter.p256(3, 5_000),
    ]


@pytest.fixture
def ingestor(store_engine: Engine, meters: list[SimulatedMeter]) -> Ingestor:
    directory = StaticDirectory([meter.registered() for meter in meters])
    return Ingestor(store_engine, directory, WallClock(), DOMAIN, IngestLimits())
