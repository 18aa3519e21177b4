"""Oracle settings: one pydantic-settings object, `GRIDFLEX_ORACLE_*` env vars or `.env`,
plus the conventional `DATABASE_URL`, checked once at start so a misconfigured oracle
fails with a message instead of rejecting readings later."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings

from gridflex.config import database_url_field, settings_config
from gridflex.config_checks import (
    DatabaseUrl,
    HttpUrlList,
    RpcUrl,
    database_url_or_sqlite,
    split_urls,
)

MIB = 1024 * 1024


class OracleSettings(BaseSettings):
    """Settings of one oracle process. Each field maps to `GRIDFLEX_ORACLE_<FIELD>`."""

    model_config = settings_config("GRIDFLEX_ORACLE_", populate_by_name=True)

    data_dir: Path = Path(".gridflex/oracle")
    """Where the default SQLite database lives."""

    database_url: DatabaseUrl | None = database_url_field("GRIDFLEX_ORACLE_")
    """SQLAlchemy URL; None means the SQLite file `<data_dir>/oracle.db`."""

    rpc_url: RpcUrl = "http://127.0.0.1:8545"
    deployments_dir: Path = Path("deployments")
    chain_id: int | None = None
    """None: asked from the RPC at start (the deployment record must exist for it)."""

    max_units_per_batch: int = Field(default=500, ge=1, le=10_000)
    max_body_bytes: int = Field(default=8 * MIB, ge=1024)
    plausibility_margin: float = 1.5
    """|energy| may exceed capacity x interval length by this factor (meter noise, peaks)."""
    future_skew_seconds: int = Field(default=120, ge=0)
    max_reading_age_seconds: int = Field(default=60 * 86_400, ge=86_400)
    """Units whose first interval started longer ago are refused. X-of-Y baselines (CAISO
    10-in-10) read up to 46 days before an event, so an older reading can change no report
    still to be measured; 60 days leaves two weeks for a node catching up on its backlog
    (nodes backfill up to `--history-hours`, the demo 15 days)."""
    clock: Literal["wall", "chain"] = "wall"
    """`chain` uses the latest block timestamp (demos that move anvil time)."""

    registry_poll_seconds: float = Field(default=2.0, gt=0)
    """How often registry events are polled to catch key rotations and deactivations."""
    sqlite_busy_timeout_ms: int = Field(default=5_000, ge=0)
    retry_after_seconds: int = Field(default=2, ge=1)
    """Retry-After sent with a 503 when the database is locked or unavailable."""

    # ─── Reports and the committee ────────────────────────────────────────────────────

    signer_key: SecretStr | None = None
    """Hex secp256k1 key of this oracle's committee seat. None: the oracle measures and
    serves reports on request but neither signs nor runs the committee loop."""
    peers: HttpUrlList = ""
    """Comma-separated base URLs of the other committee oracles (`http://host:port`)."""
    report_delay_seconds: int = Field(default=60, ge=0)
    """Grace after the window end before measuring (late readings still arrive)."""
    committee_poll_seconds: float = Field(default=2.0, gt=0)
    remeasure_seconds: float = Field(default=30.0, gt=0)
    """While a measured report is not on chain yet, measure again this often: readings
    that arrive late (a node catching up after an outage) must still count."""
    """Period of the committee loop (measure, collect signatures, post, finalize)."""
    peer_timeout_seconds: float = Field(default=5.0, gt=0)
    reconcile_timeout_seconds: float = Field(default=60.0, gt=0)
    """How long the committee loop tries to reconcile its units with k-1 peers before it
    signs a round with what it holds (oracle/committee.py)."""
    rpc_retry_max_seconds: float = Field(default=60.0, gt=0)
    """Longest back-off between two attempts on one request after RPC errors."""
    watcher_enabled: bool = True
    """With a signer key: check every posted report against our own measurement and
    challenge it with a device-signed unit we hold when it contradicts (oracle/watcher.py)."""

    @field_validator("plausibility_margin")
    @classmethod
    def _margin_at_least_one(cls, margin: float) -> float:
        if not 1.0 <= margin <= 100.0:
            raise ValueError("plausibility_margin must be between 1.0 and 100.0")
        return margin

    @field_validator("signer_key")
    @classmethod
    def _hex_key(cls, key: SecretStr | None) -> SecretStr | None:
        if key is None or not key.get_secret_value().strip():
            return None
        raw = key.get_secret_value().strip().removeprefix("0x")
        if len(raw) != 64 or any(c not in "0123456789abcdefABCDEF" for c in raw):
            raise ValueError("signer_key must be 32 bytes of hex (64 digits, 0x optional)")
        return SecretStr("0x" + raw.lower())

    @property
    def peer_urls(self) -> list[str]:
        return split_urls(self.peers)

    @property
    def resolved_database_url(self) -> str:
        return database_url_or_sqlite(self.database_url, self.data_dir / "oracle.db")

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def margin_ratio(self) -> Fraction:
        """The margin as an exact fraction, so the plausibility bound is integer math."""
        return Fraction(str(self.plausibility_margin)).limit_denominator(1000)
