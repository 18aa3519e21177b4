"""The machine's PostgreSQL (127.0.0.1:5432, trust auth) for tests of the PostgreSQL path;
where it does not answer, those tests skip with the reason."""

from __future__ import annotations

POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def postgres_available() -> str | None:
    """None when PostgreSQL answers on 127.0.0.1:5432, else why it does not."""
    try:
        import psycopg

        with psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=2):
            return None
    except Exception as error:
        return f"PostgreSQL not reachable on 127.0.0.1:5432 ({str(error).splitlines()[0]})"
