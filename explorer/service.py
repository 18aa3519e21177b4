"""Builds one explorer from its settings (database, chain, deployment, oracles) and runs
its background follower: index the chain, then fetch the oracles' records and readings,
every `poll_seconds`. Everything checkable at start is checked here, so a misconfigured
explorer stops with a message."""

from __future__ import annotations

import gc
import threading
from dataclasses import dataclass, field

import structlog
from fastapi import FastAPI

from explorer.app import create_app
from explorer.db import create_explorer_engine, init_db
from explorer.deps import ExplorerContext
from explorer.indexer import Indexer, SyncResult
from explorer.records import RecordFetcher
from explorer.settings import ExplorerSettings
from gridflex.chain.connect import Connection, chain_id_at, connect
from gridflex.chain.deployments import Deployment, load_deployment
from gridflex.errors import ChainUnavailableError, ConfigurationError

log = structlog.get_logger(__name__)

RPC_TIMEOUT_SECONDS = 10.0


def freeze_startup_heap() -> None:
    """Move every object alive after start (imported libraries, the app, the context) to
    the permanent generation: the garbage collector then stops rescanning them, which took
    100-300 ms pauses out of page times (`scripts/bench.py explorer`)."""
    gc.collect()
    gc.freeze()


def build_context(settings: ExplorerSettings) -> ExplorerContext:
    """The app's context; ConfigurationError naming the fix when the chain does not answer
    or has no deployment record."""
    w3 = connect(settings.rpc_url, RPC_TIMEOUT_SECONDS)
    try:
        chain_id = chain_id_at(w3, settings.rpc_url)
    except ChainUnavailableError as error:
        raise ConfigurationError(
            f"chain RPC {settings.rpc_url} does not answer ({error.__cause__}): start the "
            "chain or pass --rpc-url"
        ) from error
    deployment = load_deployment(chain_id, settings.deployments_dir)
    return open_context(settings, w3, deployment)


def open_context(
    settings: ExplorerSettings, w3: Connection, deployment: Deployment
) -> ExplorerContext:
    """The context over a chain already reached: opens the database, creating its tables."""
    engine = create_explorer_engine(settings.resolved_database_url)
    init_db(engine)
    log.info(
        "explorer ready",
        chain_id=deployment.chain_id,
        database=engine.url.render_as_string(hide_password=True),
        oracles=settings.oracle_urls,
    )
    return ExplorerContext(settings, engine, w3, deployment)


def build_app(context: ExplorerContext) -> FastAPI:
    """The app as `gridflex explorer` serves it: created, then the startup heap frozen."""
    app = create_app(context)
    freeze_startup_heap()
    return app


@dataclass
class Follower:
    """The indexer and the record fetcher in one background thread."""

    context: ExplorerContext
    stop_event: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        settings = self.context.settings
        self.indexer = Indexer(
            self.context.engine, self.context.w3, self.context.deployment,
            batch_blocks=settings.batch_blocks, reorg_depth=settings.reorg_depth,
        )  # fmt: skip
        self.records = RecordFetcher(self.context)

    def _after_sync(self, result: SyncResult) -> None:
        self.records.sync(chain_rewound=result.reset or result.rolled_back_to is not None)

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.indexer.follow,
            args=(self.stop_event, self.context.settings.poll_seconds, self._after_sync),
            name="explorer-follower",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
