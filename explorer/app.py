"""`create_app(context)`: the explorer's FastAPI application: HTML pages (`explorer.pages`),
the JSON API under `/api` (`explorer.api`), static assets, and `/health`, whose
`indexed_block` and `chain_head` tell a supervisor (e.g. `make demo`) when the index has
caught up."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx
from eth_account import Account
from fastapi import Depends, FastAPI, Request
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from sqlalchemy import Engine
from sqlmodel import Session
from web3 import Web3

from explorer import queries
from explorer.settings import ExplorerSettings
from gridflex.chain.client import ChainClient
from gridflex.chain.deployments import Deployment
from gridflex.chain.protocol import Protocol

STATIC_DIR = Path(__file__).parent / "static"
ORACLE_TIMEOUT_SECONDS = 10.0


@dataclass
class ExplorerContext:
    """What the app reads: its database, and for the verify check the chain and oracles."""

    settings: ExplorerSettings
    engine: Engine
    w3: Web3
    deployment: Deployment
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=ORACLE_TIMEOUT_SECONDS))
    _protocol: Protocol | None = None

    @property
    def protocol(self) -> Protocol:
        """A read-only handle (a throwaway account is only the `from` of eth_call)."""
        if self._protocol is None:
            self._protocol = Protocol(ChainClient(self.w3, Account.create()), self.deployment)
        return self._protocol


def get_context(request: Request) -> ExplorerContext:
    context: ExplorerContext = request.app.state.context
    return context


ContextDep = Annotated[ExplorerContext, Depends(get_context)]


def get_session(context: ContextDep) -> Iterator[Session]:
    with Session(context.engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


class Health(BaseModel):
    status: str
    """`ok` once the index holds a cursor, `starting` before the first pass."""
    indexed_block: int | None
    chain_head: int | None
    chain_id: int


def create_app(context: ExplorerContext) -> FastAPI:
    from explorer import api, pages

    app = FastAPI(
        title="GridFlex explorer",
        summary=(
            "Requests, bids, clearing, reports, deliveries, payouts and slashes of a GridFlex "
            "network, indexed from the chain, with per-device proofs checked live."
        ),
        version="1",
    )
    app.state.context = context

    @app.middleware("http")
    async def server_timing(request: Request, call_next: Any) -> Any:
        """`Server-Timing: app;dur=<ms>` on every answer: the page budget is measurable
        from outside (browser dev tools, `scripts/bench.py explorer`)."""
        started = time.perf_counter()
        response = await call_next(request)
        elapsed_ms = (time.perf_counter() - started) * 1000
        response.headers["Server-Timing"] = f"app;dur={elapsed_ms:.2f}"
        return response

    @app.get("/health", response_model=Health, tags=["health"])
    def health(session: SessionDep) -> Health:
        """How far the index is: `indexed_block >= chain_head` means caught up."""
        progress = queries.progress(session)
        return Health(
            status="ok" if progress.indexed_block is not None else "starting",
            indexed_block=progress.indexed_block,
            chain_head=progress.chain_head,
            chain_id=context.deployment.chain_id,
        )

    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
