"""`create_app(settings)`: the FastAPI application of one oracle."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError

from oracle.api.routes import evidence, health, ingest, reads, reports
from oracle.config import OracleSettings
from oracle.service import OracleService, build_service


def create_app(
    settings: OracleSettings | None = None, service: OracleService | None = None
) -> FastAPI:
    """The app for `settings` (or an already built `service`, for tests and embedding)."""
    service = service or build_service(settings or OracleSettings())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        service.start_background()
        yield
        service.close()

    app = FastAPI(
        title="GridFlex oracle",
        summary=(
            "Ingests signed meter readings, measures delivery, signs and serves committee "
            "reports with the proofs to re-verify them."
        ),
        version="1",
        lifespan=lifespan,
    )
    app.state.service = service

    @app.exception_handler(OperationalError)
    async def _database_down(_request: Request, error: OperationalError) -> JSONResponse:
        return JSONResponse(
            {"detail": f"database unavailable: {error.orig}"},
            status_code=503,
            headers={"Retry-After": str(service.settings.retry_after_seconds)},
        )

    app.include_router(ingest.router)
    app.include_router(reads.router)
    app.include_router(reports.router)
    app.include_router(evidence.router)
    app.include_router(health.router)
    return app
