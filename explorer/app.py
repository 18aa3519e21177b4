"""`create_app(context)`: the explorer's FastAPI application: HTML pages (`explorer.pages`),
the JSON API under `/api` (`explorer.api`), static assets, and `/health`, whose
`indexed_block` and `chain_head` tell a supervisor (e.g. `make demo`) when the index has
caught up."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from explorer import api, pages, queries
from explorer.deps import ExplorerContext, SessionDep

STATIC_DIR = Path(__file__).parent / "static"


class Health(BaseModel):
    status: str
    """`ok` once the index holds a cursor, `starting` before the first pass."""
    indexed_block: int | None
    chain_head: int | None
    chain_id: int


def create_app(context: ExplorerContext) -> FastAPI:
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
