"""Explorer settings: env vars with the explorer's prefix, the core fallbacks, and clear
refusals at start."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from explorer.settings import ExplorerSettings


def test_core_settings_are_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDFLEX_RPC_URL", "http://chain:8545")
    monkeypatch.setenv("GRIDFLEX_DEPLOYMENTS_DIR", "/srv/deployments")
    monkeypatch.setenv("GRIDFLEX_EXPLORER_ORACLES", "http://a:8600/, http://b:8600")
    monkeypatch.setenv("DATABASE_URL", "postgres://u@db/explorer")
    settings = ExplorerSettings()
    assert settings.rpc_url == "http://chain:8545"
    assert settings.deployments_dir == Path("/srv/deployments")
    assert settings.oracle_urls == ["http://a:8600", "http://b:8600"]
    assert settings.resolved_database_url == "postgresql+psycopg://u@db/explorer"
    monkeypatch.setenv("GRIDFLEX_EXPLORER_RPC_URL", "http://own:8545")
    assert ExplorerSettings().rpc_url == "http://own:8545"
    monkeypatch.setenv("GRIDFLEX_EXPLORER_DATABASE_URL", "sqlite:///own.db")
    assert ExplorerSettings().resolved_database_url == "sqlite:///own.db"


def test_unprefixed_variables_are_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bug fixed in issue 13: the field names were aliases too, matched case-insensitively
    against the environment, so a stray `RPC_URL` was the explorer's chain and
    `DATABASE_URL` hid `GRIDFLEX_EXPLORER_DATABASE_URL`."""
    for name in ("GRIDFLEX_RPC_URL", "GRIDFLEX_EXPLORER_RPC_URL", "GRIDFLEX_DEPLOYMENTS_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RPC_URL", "http://stray:1")
    monkeypatch.setenv("DEPLOYMENTS_DIR", "/stray")
    settings = ExplorerSettings()
    assert settings.rpc_url == "http://127.0.0.1:8545"
    assert settings.deployments_dir == Path("deployments")
    assert ExplorerSettings(rpc_url="http://given:2").rpc_url == "http://given:2"


def test_default_database_is_sqlite_in_the_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    settings = ExplorerSettings(data_dir=Path("/var/lib/explorer"))
    assert settings.resolved_database_url == "sqlite:////var/lib/explorer/explorer.db"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("database_url", "mysql://x/y", "unsupported database URL"),
        ("rpc_url", "ws://chain", "http(s) JSON-RPC URL"),
        ("oracles", "oracle:8600", "must be an http(s) URL"),
        ("poll_seconds", 0, "greater than 0"),
    ],
)
def test_bad_values_are_refused_with_the_reason(field: str, value: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ExplorerSettings(**{field: value})
