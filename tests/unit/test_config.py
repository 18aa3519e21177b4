"""Settings come from GRIDFLEX_* env vars and `.env`, with local defaults."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from gridflex.config import Settings, database_url_field, load_settings, settings_config
from gridflex.config_checks import (
    DatabaseUrl,
    HttpUrlList,
    RpcUrl,
    database_url_or_sqlite,
    split_urls,
)
from gridflex.errors import ConfigurationError


def test_defaults_point_at_local_state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    for name in ("RPC_URL", "DATA_DIR", "DEPLOYMENTS_DIR", "LOG_LEVEL"):
        monkeypatch.delenv(f"GRIDFLEX_{name}", raising=False)

    settings = Settings()

    assert settings.rpc_url is None
    assert settings.data_dir == Path(".gridflex")
    assert settings.build_dir == Path(".gridflex") / "build"
    assert settings.deployments_dir == Path("deployments")


def test_env_prefix_and_dotenv_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("GRIDFLEX_DATA_DIR=/var/lib/gridflex\n")
    monkeypatch.setenv("GRIDFLEX_RPC_URL", "http://127.0.0.1:9545")

    settings = Settings()

    assert settings.rpc_url == "http://127.0.0.1:9545"
    assert settings.data_dir == Path("/var/lib/gridflex")


class ComponentSettings(BaseSettings):
    """A component's settings built from the shared pieces, as oracle and explorer are."""

    model_config = settings_config("GRIDFLEX_SAMPLE_", populate_by_name=True)

    database_url: DatabaseUrl | None = database_url_field("GRIDFLEX_SAMPLE_")
    rpc_url: RpcUrl = "http://127.0.0.1:8545"
    peers: HttpUrlList = ""


def test_component_settings_read_their_prefix_and_the_conventional_database_url(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", "postgres://db/shared")
    monkeypatch.setenv("GRIDFLEX_SAMPLE_PEERS", "http://a:1/, https://b:2")
    settings = ComponentSettings()
    assert settings.database_url == "postgresql+psycopg://db/shared"
    assert split_urls(settings.peers) == ["http://a:1", "https://b:2"]

    monkeypatch.setenv("GRIDFLEX_SAMPLE_DATABASE_URL", "sqlite:///own.db")
    assert ComponentSettings().database_url == "sqlite:///own.db"
    assert database_url_or_sqlite(None, tmp_path / "x.db") == f"sqlite:///{tmp_path / 'x.db'}"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("database_url", "mysql://x/y", "unsupported database URL 'mysql'"),
        ("rpc_url", "ws://chain", "http(s) JSON-RPC URL"),
        ("peers", "http://ok:1,peer:8600", "'peer:8600' must be an http(s) URL"),
    ],
)
def test_shared_setting_types_refuse_unusable_values(field: str, value: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(f"GRIDFLEX_SAMPLE_{field.upper()}")):
        load_settings(ComponentSettings, **{field: value})
    with pytest.raises(ValidationError, match=re.escape(message)):
        ComponentSettings(**{field: value})
