"""What every route depends on: the explorer's context (database, chain, oracles), a
database session, and the path parameter types the API and the pages share."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, TypeVar

import httpx
from fastapi import Depends, HTTPException, Path, Request
from sqlalchemy import Engine
from sqlmodel import Session

from explorer.queries import has_device_record
from explorer.settings import ExplorerSettings
from gridflex.chain.connect import Connection
from gridflex.chain.deployments import Deployment
from gridflex.chain.protocol import Protocol

ORACLE_TIMEOUT_SECONDS = 10.0


@dataclass
class ExplorerContext:
    """What the app reads: its database, and for the verify check the chain and oracles."""

    settings: ExplorerSettings
    engine: Engine
    w3: Connection
    deployment: Deployment
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=ORACLE_TIMEOUT_SECONDS))
    _protocol: Protocol | None = None

    @property
    def protocol(self) -> Protocol:
        """A read-only handle (a throwaway account is only the `from` of eth_call)."""
        if self._protocol is None:
            self._protocol = Protocol.reader(self.w3, self.deployment)
        return self._protocol


def get_context(request: Request) -> ExplorerContext:
    context: ExplorerContext = request.app.state.context
    return context


ContextDep = Annotated[ExplorerContext, Depends(get_context)]


def get_session(context: ContextDep) -> Iterator[Session]:
    with Session(context.engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


Id = Annotated[int, Path(ge=0, le=2**63 - 1)]
Address = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{40}$")]

T = TypeVar("T")


def found(value: T | None, missing: str) -> T:
    """`value`, or a 404 that says what is missing."""
    if value is None:
        raise HTTPException(404, missing)
    return value


def require_device_record(session: Session, request_id: int, device_id: int) -> None:
    """404 before any chain or oracle call when the device has no record in the request."""
    if not has_device_record(session, request_id, device_id):
        raise HTTPException(404, f"device {device_id} has no record in request {request_id}")
