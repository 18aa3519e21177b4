"""Public reports: what this oracle measured for a request, the proofs of any device's
record and readings against the report's roots, and the committee signatures it holds.

Answers: 200; 404 unknown request, never cleared, no awarded device, or device not in
the report; 425 (`Retry-After`) before the window end plus `report_delay_seconds`; 503
when the chain or the database does not answer."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query
from sqlalchemy.exc import OperationalError

from oracle.api.deps import ServiceDep
from oracle.measurement import MeasuredReport, ReportUnavailableError
from oracle.models import INT64_MAX, MAX_REPORT_ROUND
from oracle.service import OracleService

router = APIRouter(prefix="/v1/reports", tags=["reports"])

RequestId = Annotated[int, Path(ge=0, le=INT64_MAX, description="FlexMarket request id")]
Round = Annotated[
    int | None,
    Query(
        ge=0,
        le=MAX_REPORT_ROUND,
        description="An earlier (voided) round; default the current round",
    ),
]


def _report(service: OracleService, request_id: int, round_: int | None) -> MeasuredReport:
    service.ensure_schema()
    try:
        return service.reports.report_for(request_id, round_)
    except ReportUnavailableError as error:
        headers = {}
        if error.status == 425 and error.retry_at is not None:
            wait = max(1, error.retry_at - service.reports.clock.now())
            headers["Retry-After"] = str(wait)
        raise HTTPException(error.status, error.reason, headers=headers or None) from error
    except OperationalError:
        raise  # the app's handler answers 503 "database unavailable"
    except Exception as error:  # chain RPC down or failing
        raise HTTPException(
            503,
            f"chain unavailable: {str(error).splitlines()[0] if str(error) else error!r}",
            headers={"Retry-After": str(service.settings.retry_after_seconds)},
        ) from error


@router.get("/{request_id}")
def report(service: ServiceDep, request_id: RequestId, round: Round = None) -> dict[str, Any]:
    """The report of the request's current round: per-bid delivery, roots, EIP-712 digest,
    this oracle's signature (null without a signer key) and every device record."""
    return _report(service, request_id, round).to_json()


@router.get("/{request_id}/devices/{device_id}")
def device_proof(
    service: ServiceDep,
    request_id: RequestId,
    device_id: Annotated[int, Path(ge=0, le=INT64_MAX)],
    round: Round = None,
) -> dict[str, Any]:
    """One device's record with its proof against `devicesRoot`, its packed used readings
    with their proof against `readingsRoot`, and the signed units they came from."""
    measured = _report(service, request_id, round)
    try:
        return service.reports.device_proof(measured, device_id).to_json()
    except KeyError as error:
        raise HTTPException(
            404, f"device {device_id} has no record in request {request_id}"
        ) from error


@router.get("/{request_id}/signatures")
def signatures(service: ServiceDep, request_id: RequestId, round: Round = None) -> dict[str, Any]:
    """The verified committee signatures this oracle holds over its digest (its own and
    its peers'), signers ascending as `submitReport` wants them."""
    measured = _report(service, request_id, round)
    collected = service.reports.signatures(measured)
    return {
        "requestId": measured.request_id,
        "round": measured.round,
        "digest": "0x" + measured.digest.hex(),
        "signatures": [
            {"signer": signer, "signature": "0x" + signature.hex()}
            for signer, signature in collected.items()
        ],
    }
