"""`POST /v1/readings`: the one write endpoint. The answer contract nodes code against:

- 200 `{"results": [{"index", "status": "accepted"|"duplicate", "reason": null}]}`: the
  batch is committed (or was already); the node may delete these units.
- 409 (a conflicting reading present) / 422 (any other rejection) `{"detail", "results"}`:
  nothing of the batch stored; rejected units carry a reason, the others are `valid`
  (resend without the rejected ones) or `duplicate`.
- 413 batch or body too large, 415 not `Content-Type: application/json`, 422 malformed
  JSON (also: nested deeper than `gridflex.safe_json.MAX_JSON_DEPTH`, duplicate keys):
  `{"detail", "results": []}`.
- 503 + Retry-After: database locked/down or chain unreachable; nothing stored, resend.

The body is decoded by `gridflex.safe_json` (size and depth bounded before decoding, so no
input can overflow the decoder's stack; duplicate keys refused) straight into MeterUnits:
no pydantic model per unit on the hot path (48,000 integers a batch). The schema below is for /docs.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from gridflex import safe_json
from gridflex.rules.attestation import MAX_INTERVALS_PER_UNIT
from oracle.api.deps import ServiceDep
from oracle.ingest import StoreUnavailableError
from oracle.registry_cache import RegistryUnavailableError

router = APIRouter(prefix="/v1", tags=["ingest"])


class MeterUnitJson(BaseModel):
    """A signed EIP-712 `MeterReadings` unit (gridflex.rules.attestation.MeterUnit.to_json);
    field names are the signed ones."""

    deviceId: int
    firstIntervalStart: int = Field(description="unix seconds, on the interval grid")
    intervalSeconds: int = Field(gt=0)
    sequence: int = Field(ge=0, description="per device, never reused for other content")
    energyWh: list[int] = Field(
        min_length=1, max_length=MAX_INTERVALS_PER_UNIT, description="imported +, exported -"
    )
    signature: str = Field(description="0x r||s||v (secp256k1, 65 bytes) or r||s (P-256, 64)")


class UnitResultJson(BaseModel):
    index: int
    status: Literal["accepted", "duplicate", "rejected", "valid"]
    reason: str | None


class IngestAnswer(BaseModel):
    results: list[UnitResultJson]


class IngestRefusal(BaseModel):
    detail: str
    results: list[UnitResultJson]


_REQUEST_SCHEMA = {
    "type": "object",
    "required": ["units"],
    "properties": {"units": {"type": "array", "items": MeterUnitJson.model_json_schema()}},
}
_BODY = {"schema": _REQUEST_SCHEMA}


def _refusal(
    status_code: int, detail: str, results: list[dict[str, Any]] | None = None, **headers: str
) -> JSONResponse:
    return JSONResponse(
        {"detail": detail, "results": results or []}, status_code=status_code, headers=headers
    )


class _BodyTooLargeError(Exception):
    pass


JSON_MEDIA_TYPE = "application/json"


def content_type_refusal(request: Request) -> str | None:
    """Why the body's declared type is not JSON, or None when it is.

    Only `application/json` (optionally `; charset=utf-8`): a form or `text/plain` body is
    what a browser may send cross-origin without a preflight, so accepting it would let any
    web page post readings through a visitor's browser."""
    declared = request.headers.get("content-type")
    if declared is None:
        return f"missing Content-Type; send {JSON_MEDIA_TYPE}"
    media_type, _, parameters = declared.partition(";")
    if media_type.strip().lower() != JSON_MEDIA_TYPE:
        return f"Content-Type {declared[:80]!r} is not {JSON_MEDIA_TYPE}"
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() != "utf-8":
            return f"JSON must be UTF-8, not charset {value.strip()[:40]!r}"
    return None


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _BodyTooLargeError
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _BodyTooLargeError
    return bytes(body)


@router.post(
    "/readings",
    response_model=IngestAnswer,
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": _BODY}}},
    responses={
        409: {"model": IngestRefusal, "description": "conflicting reading; nothing stored"},
        413: {"model": IngestRefusal, "description": "too many units or body too large"},
        415: {"model": IngestRefusal, "description": "Content-Type is not application/json"},
        422: {"model": IngestRefusal, "description": "malformed or rejected; nothing stored"},
        503: {"model": IngestRefusal, "description": "store or chain unavailable; resend"},
    },
)
async def post_readings(request: Request, service: ServiceDep) -> JSONResponse:
    """Verify and store a batch of signed meter units, all or nothing."""
    settings = service.settings
    metrics = service.metrics
    wrong_type = content_type_refusal(request)
    if wrong_type is not None:
        metrics.batches.labels("malformed").inc()
        return _refusal(415, wrong_type)
    try:
        body = await _read_body(request, settings.max_body_bytes)
    except _BodyTooLargeError:
        metrics.batches.labels("too_large").inc()
        return _refusal(413, f"request body larger than {settings.max_body_bytes} bytes")
    try:
        payload = safe_json.loads(body, max_bytes=settings.max_body_bytes)
    except safe_json.UnsafeJsonError as error:
        metrics.batches.labels("malformed").inc()
        return _refusal(422, error.reason)
    units = payload.get("units") if isinstance(payload, dict) else None
    if not isinstance(units, list):
        metrics.batches.labels("malformed").inc()
        return _refusal(422, 'malformed request: expected {"units": [signed unit, ...]}')
    if len(units) > settings.max_units_per_batch:
        metrics.batches.labels("too_large").inc()
        return _refusal(
            413, f"{len(units)} units in one batch; at most {settings.max_units_per_batch}"
        )
    if not units:
        return JSONResponse({"results": []})

    retry_after = str(settings.retry_after_seconds)
    try:
        await run_in_threadpool(service.ensure_schema)
        result = await run_in_threadpool(service.ingestor.ingest_batch, units)
    except (StoreUnavailableError, RegistryUnavailableError) as error:
        metrics.batches.labels("unavailable").inc()
        return _refusal(503, f"{error}; nothing stored, resend", **{"Retry-After": retry_after})

    metrics.observe_batch(result)
    answers = [unit_result.to_json() for unit_result in result.results]
    if result.stored:
        return JSONResponse({"results": answers})
    return _refusal(409 if result.has_conflict else 422, result.summary, answers)
