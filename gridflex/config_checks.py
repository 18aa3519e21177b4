"""Checks shared by the components' settings objects, so the oracle and the explorer
accept and normalise the same database, RPC and peer URLs. Each check is also an
annotated type (`DatabaseUrl`, `RpcUrl`, `HttpUrlList`) that a settings field declares,
so no settings class repeats a validator."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator

SUPPORTED_DATABASE_SCHEMES = ("sqlite://", "postgresql://", "postgresql+psycopg://")
HTTP_SCHEMES = ("http://", "https://")


def normalized_database_url(url: str) -> str:
    """`postgres://` and `postgresql://` become `postgresql+psycopg://` (psycopg 3);
    anything but SQLite or PostgreSQL is refused with the accepted forms."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if not url.startswith(SUPPORTED_DATABASE_SCHEMES):
        raise ValueError(
            f"unsupported database URL {url.split(':', 1)[0]!r}: use sqlite:///path "
            "or postgresql+psycopg://user@host/db"
        )
    return url


def checked_rpc_url(url: str) -> str:
    if not url.startswith(HTTP_SCHEMES):
        raise ValueError(f"rpc_url must be an http(s) JSON-RPC URL, got {url!r}")
    return url


def split_urls(urls: str) -> list[str]:
    """The base URLs of a comma-separated list, without blanks or trailing slashes."""
    return [url.strip().rstrip("/") for url in urls.split(",") if url.strip()]


def checked_http_urls(urls: str) -> str:
    """A comma-separated list of base URLs (oracles, peers), each http(s)."""
    for url in split_urls(urls):
        if not url.startswith(HTTP_SCHEMES):
            raise ValueError(f"{url!r} must be an http(s) URL (http://host:port)")
    return urls


def database_url_or_sqlite(database_url: str | None, sqlite_path: Path) -> str:
    """The configured SQLAlchemy URL, else the component's SQLite file."""
    return database_url or f"sqlite:///{sqlite_path}"


DatabaseUrl = Annotated[str, AfterValidator(normalized_database_url)]
RpcUrl = Annotated[str, AfterValidator(checked_rpc_url)]
HttpUrlList = Annotated[str, AfterValidator(checked_http_urls)]
