"""Settings for the shared core and the CLI, from `GRIDFLEX_*` env vars or a `.env` file,
so every component is configured the same way and nothing is hard-coded."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Core GridFlex settings. Each field maps to `GRIDFLEX_<FIELD>` (e.g. GRIDFLEX_RPC_URL)."""

    model_config = SettingsConfigDict(
        env_prefix="GRIDFLEX_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    rpc_url: str | None = None
    """JSON-RPC endpoint of the chain; None means "start or use a local anvil"."""

    data_dir: Path = Path(".gridflex")
    """Local state: compiler build cache, keystores, node outbox."""

    deployments_dir: Path = Path("deployments")
    """Where `<chainId>.json` deployment records are read and written."""

    log_level: str = "INFO"

    @property
    def build_dir(self) -> Path:
        """Cache of compiled artifacts, keyed by a hash of sources, settings and compiler."""
        return self.data_dir / "build"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings read once per process; tests build `Settings(...)` directly instead."""
    return Settings()
