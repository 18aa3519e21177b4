"""Node settings from `GRIDFLEX_NODE_*` env vars or `.env`: one object, so the CLI, the
meter loop and the sender are configured the same way and nothing is hard-coded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from gridflex.rules.types import DEFAULT_INTERVAL_SECONDS, SETTLED_INTERVAL_SECONDS

DEFAULT_SCRYPT_N = 2**18  # eth-account's default: ~0.5 s per keystore on a laptop


class NodeSettings(BaseSettings):
    """Each field maps to `GRIDFLEX_NODE_<FIELD>` (e.g. GRIDFLEX_NODE_ORACLE_URLS)."""

    model_config = SettingsConfigDict(
        env_prefix="GRIDFLEX_NODE_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    data_dir: Path = Path(".gridflex/node")
    """Keystores, `state.json` (devices and their on-chain ids) and the outbox SQLite file."""

    oracle_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Base URLs of every oracle of the committee (comma-separated or a JSON list)."""

    rpc_url: str | None = None
    """Chain JSON-RPC; None falls back to GRIDFLEX_RPC_URL, then a local anvil."""

    chain_id: int | None = None
    """Expected chain id; None takes whatever the RPC (or the registered state) says."""

    password: str | None = None
    """Keystore password; None means prompt (or `--password-env VAR`)."""

    batch_size: int = Field(default=50, ge=1)
    """Signed units per POST to an oracle (halved automatically on HTTP 413)."""

    interval_seconds: int = Field(default=DEFAULT_INTERVAL_SECONDS, gt=0)
    """Metering interval, one of `SETTLED_INTERVAL_SECONDS`: 15 minutes as in ERCOT and EU
    imbalance settlement, 30 minutes for GB settlement periods. The node signs its readings
    (live and backfilled history) at this length and bids only on requests of this length:
    a request is measured from readings of its own length, and an oracle holds one length
    per device and interval start."""

    bid_price_fraction_bps: int = Field(default=8_000, ge=0, le=10_000)
    """Bids ask this share of a request's price cap (raised to a device's bidding floor)."""

    scrypt_n: int = Field(default=DEFAULT_SCRYPT_N, ge=2)
    """scrypt cost of new keystores (tests lower it; decrypt reads it from the file)."""

    @field_validator("oracle_urls", mode="before")
    @classmethod
    def _split_urls(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    return json.loads(text)
                except ValueError as error:
                    raise ValueError(f"not a JSON list of URLs ({error})") from error
            return [url.strip() for url in text.split(",") if url.strip()]
        return value

    @field_validator("oracle_urls")
    @classmethod
    def _http_oracles(cls, urls: list[str]) -> list[str]:
        for url in urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"oracle URL {url!r} must start with http:// or https://")
        return urls

    @field_validator("interval_seconds")
    @classmethod
    def _settled_interval(cls, seconds: int) -> int:
        if seconds not in SETTLED_INTERVAL_SECONDS:
            lengths = " or ".join(str(s) for s in sorted(SETTLED_INTERVAL_SECONDS))
            raise ValueError(f"interval_seconds must be {lengths} (what the market settles)")
        return seconds

    @field_validator("rpc_url")
    @classmethod
    def _http_rpc(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError(f"rpc_url must be an http(s) JSON-RPC URL, got {url!r}")
        return url

    @property
    def outbox_path(self) -> Path:
        return self.data_dir / "outbox.sqlite"
