"""Settings come from GRIDFLEX_* env vars and `.env`, with local defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridflex.config import Settings


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
