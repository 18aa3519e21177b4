"""Explorer settings: one pydantic-settings object (`GRIDFLEX_EXPLORER_*` env vars, `.env`,
and the conventional `DATABASE_URL`), validated at start so a bad value stops the explorer
with a message instead of failing on the first page."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings

from gridflex.config import database_url_field, fallback_field, settings_config
from gridflex.config_checks import (
    DatabaseUrl,
    HttpUrlList,
    RpcUrl,
    database_url_or_sqlite,
    split_urls,
)


class ExplorerSettings(BaseSettings):
    """Settings of one explorer process. Each field maps to `GRIDFLEX_EXPLORER_<FIELD>`."""

    model_config = settings_config("GRIDFLEX_EXPLORER_", populate_by_name=True)

    rpc_url: RpcUrl = fallback_field(
        "http://127.0.0.1:8545", "GRIDFLEX_EXPLORER_RPC_URL", "GRIDFLEX_RPC_URL"
    )
    """The explorer's own setting, else the core `GRIDFLEX_RPC_URL`."""
    deployments_dir: Path = fallback_field(
        Path("deployments"), "GRIDFLEX_EXPLORER_DEPLOYMENTS_DIR", "GRIDFLEX_DEPLOYMENTS_DIR"
    )
    data_dir: Path = Path(".gridflex/explorer")
    """Where the default SQLite database lives."""
    database_url: DatabaseUrl | None = database_url_field("GRIDFLEX_EXPLORER_")
    """SQLAlchemy URL; None means the SQLite file `<data_dir>/explorer.db`."""
    oracles: HttpUrlList = ""
    """Comma-separated base URLs of the oracles whose public records and readings are
    fetched (`http://host:port`)."""
    poll_seconds: float = Field(default=2.0, gt=0)
    batch_blocks: int = Field(default=2_000, ge=1, le=100_000)
    """Blocks per `eth_getLogs` call."""
    reorg_depth: int = Field(default=64, ge=1, le=10_000)
    """How many recent indexed block hashes are kept to find a fork point."""

    @property
    def oracle_urls(self) -> list[str]:
        return split_urls(self.oracles)

    @property
    def resolved_database_url(self) -> str:
        return database_url_or_sqlite(self.database_url, self.data_dir / "explorer.db")
