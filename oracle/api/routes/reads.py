"""Public reads: a device's readings (paginated) and any stored signed unit, so anyone can
re-verify what the oracle measured from the device's own signatures."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import Field
from sqlmodel import select

from oracle.api.deps import SessionDep
from oracle.models import (
    INT64_MAX,
    MeterUnitPublic,
    MeterUnitRecord,
    Reading,
    ReadingPage,
    ReadingPublic,
)

router = APIRouter(prefix="/v1", tags=["reads"])

MAX_PAGE = 10_000
DEFAULT_PAGE = 1_000
UnixSeconds = Annotated[int, Field(ge=0, le=INT64_MAX, description="unix seconds")]
"""Bounded to what the store holds: a larger number is a 422, not a database error."""


@router.get("/devices/{device_id}/readings", response_model=ReadingPage)
def device_readings(
    session: SessionDep,
    device_id: Annotated[int, Path(ge=0, le=INT64_MAX)],
    start: Annotated[UnixSeconds | None, Query(description="first interval start")] = None,
    end: Annotated[UnixSeconds | None, Query(description="interval starts before this")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    cursor: Annotated[
        UnixSeconds | None, Query(description="`next_cursor` of the previous page (exclusive)")
    ] = None,
) -> ReadingPage:
    """Readings in ascending interval order, each with the digest of the unit that signed it.

    Keyset pagination on the primary key: a page costs the same wherever it starts.
    """
    query = (
        select(
            Reading.interval_start,
            Reading.energy_wh,
            Reading.interval_seconds,
            MeterUnitRecord.digest,
        )
        .join(MeterUnitRecord, MeterUnitRecord.id == Reading.unit_id)  # type: ignore[arg-type]
        .where(Reading.device_id == device_id)
    )
    if start is not None:
        query = query.where(Reading.interval_start >= start)
    if end is not None:
        query = query.where(Reading.interval_start < end)
    if cursor is not None:
        query = query.where(Reading.interval_start > cursor)
    rows = session.exec(query.order_by(Reading.interval_start).limit(limit + 1)).all()  # type: ignore[arg-type]
    page = rows[:limit]
    readings = [
        ReadingPublic(
            interval_start=start_s,
            interval_seconds=seconds,
            energy_wh=energy,
            unit_digest="0x" + digest.hex(),
        )
        for start_s, energy, seconds, digest in page
    ]
    next_cursor = page[-1][0] if len(rows) > limit else None
    return ReadingPage(device_id=device_id, readings=readings, next_cursor=next_cursor)


@router.get("/units/{digest}", response_model=MeterUnitPublic)
def signed_unit(
    session: SessionDep,
    digest: Annotated[str, Path(pattern=r"^(0x)?[0-9a-fA-F]{64}$", description="EIP-712 digest")],
) -> MeterUnitPublic:
    """The signed unit exactly as the device signed it (verify with gridflex.rules.attestation)."""
    record = session.exec(
        select(MeterUnitRecord).where(
            MeterUnitRecord.digest == bytes.fromhex(digest.removeprefix("0x"))
        )
    ).first()
    if record is None:
        raise HTTPException(404, f"no unit with digest {digest}")
    return MeterUnitPublic(
        digest="0x" + record.digest.hex(),
        deviceId=record.device_id,
        firstIntervalStart=record.first_interval_start,
        intervalSeconds=record.interval_seconds,
        sequence=record.sequence,
        energyWh=json.loads(record.energy_wh),
        signature="0x" + record.signature.hex(),
        receivedAt=record.received_at,
    )
