"""Explorer settings: one pydantic-settings object (`GRIDFLEX_EXPLORER_*` env vars, `.env`,
and the conventional `DATABASE_URL`), validated at start so a bad value stops the explorer
with a message instead of failing on the first page."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gridflex.config_checks import checked_rpc_url, normalized_database_url


class ExplorerSettings(BaseSettings):
    """Settings of one explorer process. Each field maps to `GRIDFLEX_EXPLORER_<FIELD>`."""

    model_config = SettingsConfigDict(
        env_prefix="GRIDFLEX_EXPLORER_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    rpc_url: str = Field(
        default="http://127.0.0.1:8545",
        validation_alias=AliasChoices("rpc_url", "GRIDFLEX_EXPLORER_RPC_URL", "GRIDFLEX_RPC_URL"),
    )
    """The explorer's own setting, else the core `GRIDFLEX_RPC_URL`."""
    deployments_dir: Path = Field(
        default=Path("deployments"),
        validation_alias=AliasChoices(
            "deployments_dir", "GRIDFLEX_EXPLORER_DEPLOYMENTS_DIR", "GRIDFLEX_DEPLOYMENTS_DIR"
        ),
    )
    data_dir: Path = Path(".gridflex/explorer")
    """Where the default SQLite database lives."""
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "database_url", "GRIDFLEX_EXPLORER_DATABASE_URL", "DATABASE_URL"
        ),
    )
    """SQLAlchemy URL; None means the SQLite file `<data_dir>/explorer.db`."""
    oracles: str = ""
    """Comma-separated base URLs of the oracles whose public records and readings are
    fetched (`http://host:port`)."""
    poll_seconds: float = Field(default=2.0, gt=0)
    batch_blocks: int = Field(default=2_000, ge=1, le=100_000)
    """Blocks per `eth_getLogs` call."""
    reorg_depth: int = Field(default=64, ge=1, le=10_000)
    """How many recent indexed block hashes are kept to find a fork point."""

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, url: str | None) -> str | None:
        return None if url is None else normalized_database_url(url)

    @field_validator("rpc_url")
    @classmethod
    def _http_rpc(cls, url: str) -> str:
        return checked_rpc_url(url)

    @field_validator("oracles")
    @classmethod
    def _http_oracles(cls, oracles: str) -> str:
        for url in (u.strip() for u in oracles.split(",")):
            if url and not url.startswith(("http://", "https://")):
                raise ValueError(f"oracle {url!r} must be an http(s) URL")
        return oracles

    @property
    def oracle_urls(self) -> list[str]:
        return [u.strip().rstrip("/") for u in self.oracles.split(",") if u.strip()]

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'explorer.db'}"
