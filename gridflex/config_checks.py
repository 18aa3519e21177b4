"""Checks shared by the components' settings objects, so the oracle and the explorer
accept and normalise the same database and RPC URLs."""

from __future__ import annotations

SUPPORTED_DATABASE_SCHEMES = ("sqlite://", "postgresql://", "postgresql+psycopg://")


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
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"rpc_url must be an http(s) JSON-RPC URL, got {url!r}")
    return url
