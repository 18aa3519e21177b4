"""The oracle's HTTP API (FastAPI): ingest, public reads, health and metrics."""

from oracle.api.app import create_app

__all__ = ["create_app"]
