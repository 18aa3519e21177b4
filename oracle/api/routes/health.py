"""Liveness of what the oracle depends on, and its Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from oracle.api.deps import ServiceDep
from oracle.db import ping

router = APIRouter(tags=["operations"])


def _check(service: ServiceDep) -> dict[str, str | int]:
    report: dict[str, str | int] = {}
    try:
        service.ensure_schema()
        ping(service.engine)
        report["database"] = "ok"
    except Exception as error:  # any failure means "down"; the message says which
        report["database"] = f"down: {str(error).splitlines()[0]}"
    try:
        report["block"] = service.protocol.block_number()
        report["chain"] = "ok"
    except Exception as error:
        report["chain"] = f"down: {str(error).splitlines()[0]}"
    return report


@router.get("/health")
async def health(service: ServiceDep) -> JSONResponse:
    """200 when the database and the chain RPC both answer, else 503 naming what is down."""
    report = await run_in_threadpool(_check, service)
    healthy = report["database"] == "ok" and report["chain"] == "ok"
    report["status"] = "ok" if healthy else "degraded"
    headers = {} if healthy else {"Retry-After": str(service.settings.retry_after_seconds)}
    return JSONResponse(report, status_code=200 if healthy else 503, headers=headers)


@router.get("/metrics")
def metrics(service: ServiceDep) -> Response:
    """Prometheus text format."""
    return Response(service.metrics.render(), media_type="text/plain; version=0.0.4")
