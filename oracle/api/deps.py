"""Typed FastAPI dependencies: the service built at start and a database session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlmodel import Session

from oracle.ingest import StoreUnavailableError
from oracle.service import OracleService


def get_service(request: Request) -> OracleService:
    service: OracleService = request.app.state.service
    return service


ServiceDep = Annotated[OracleService, Depends(get_service)]


def get_session(service: ServiceDep) -> Iterator[Session]:
    """A read session; 503 with Retry-After when the database cannot be reached."""
    try:
        service.ensure_schema()
    except StoreUnavailableError as error:
        raise HTTPException(
            503, str(error), headers={"Retry-After": str(service.settings.retry_after_seconds)}
        ) from error
    with Session(service.engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
