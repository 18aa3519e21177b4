"""Builds one oracle from its settings: database, chain connection, registry cache, clock,
ingestor and metrics. Everything that can be checked at start is checked here, so a
misconfigured oracle stops with a message instead of answering 503s forever."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import structlog
from eth_account import Account
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from gridflex.chain.client import ChainClient
from gridflex.chain.connect import chain_id_at, connect
from gridflex.chain.deployments import Deployment, load_deployment
from gridflex.chain.protocol import Protocol
from gridflex.errors import ChainUnavailableError, ConfigurationError
from gridflex.rules.attestation import meter_domain_separator
from gridflex.watch import ReportWatcher
from oracle.clock import ChainClock, Clock, WallClock
from oracle.committee import CommitteeLoop, build_committee_loop
from oracle.config import OracleSettings
from oracle.db import create_oracle_engine, init_db
from oracle.ingest import IngestLimits, Ingestor, StoreUnavailableError
from oracle.measurement import Measurer
from oracle.metrics import OracleMetrics
from oracle.registry_cache import RegistryCache
from oracle.report_book import ReportBook
from oracle.watcher import build_watcher

log = structlog.get_logger(__name__)

RPC_TIMEOUT_SECONDS = 5.0
SIGNER_RPC_TIMEOUT_SECONDS = 10.0


@dataclass
class OracleService:
    settings: OracleSettings
    engine: Engine
    protocol: Protocol
    """Reads for the request threads (a keyless account: it never sends)."""
    deployment: Deployment
    registry: RegistryCache
    ingestor: Ingestor
    metrics: OracleMetrics
    reports: ReportBook
    committee: CommitteeLoop | None = None
    """The committee loop, when a signer key is configured (started with the app)."""
    watcher: ReportWatcher | None = None
    """The report watcher (signer key and `watcher_enabled`), started with the app."""
    _schema_ready: bool = False
    _schema_lock: threading.Lock = field(default_factory=threading.Lock)

    def ensure_schema(self) -> None:
        """Create the tables once; a database that is down at start is retried per request
        (StoreUnavailableError -> 503) so the oracle can start before PostgreSQL does."""
        if self._schema_ready:
            return
        with self._schema_lock:
            if self._schema_ready:
                return
            try:
                init_db(self.engine)
            except OperationalError as error:
                raise StoreUnavailableError(f"database unavailable: {error.orig}") from error
            self._schema_ready = True

    def start_background(self) -> None:
        if self.committee is None:
            return
        try:
            self.ensure_schema()
        except StoreUnavailableError as error:  # the loop's ticks retry until it is up
            log.error("database down at start of the committee loop", error=str(error))
        self.committee.start()
        if self.watcher is not None:
            self.watcher.start()

    def close(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        if self.committee is not None:
            self.committee.stop()
        self.engine.dispose()


def build_service(settings: OracleSettings) -> OracleService:
    """Everything one oracle process needs; raises ConfigurationError with the fix."""
    w3 = connect(settings.rpc_url, RPC_TIMEOUT_SECONDS)
    chain_id = settings.chain_id
    if chain_id is None:
        try:
            chain_id = chain_id_at(w3, settings.rpc_url)
        except ChainUnavailableError as error:
            raise ConfigurationError(
                f"chain RPC {settings.rpc_url} does not answer ({error.__cause__}); start the "
                "chain or set GRIDFLEX_ORACLE_CHAIN_ID to start without it"
            ) from error
    deployment = load_deployment(chain_id, settings.deployments_dir)
    # Reads need no key: a throwaway account is only the `from` of eth_call.
    protocol = Protocol(ChainClient(w3, Account.create()), deployment)
    # From the deployment block: the first poll learns every device registered before this
    # start from its registration event (a restart next to a million devices must not cost
    # them two calls each on first sight).
    registry = RegistryCache(protocol, deployment.deployed_at_block, settings.registry_poll_seconds)
    clock: Clock = (
        ChainClock(protocol.latest_block_timestamp) if settings.clock == "chain" else WallClock()
    )
    engine = create_oracle_engine(settings)
    ingestor = Ingestor(
        engine,
        registry,
        clock,
        meter_domain_separator(chain_id, protocol.registry.address),
        IngestLimits(
            settings.margin_ratio,
            settings.future_skew_seconds,
            settings.max_reading_age_seconds,
        ),
    )
    signer_key = None if settings.signer_key is None else settings.signer_key.get_secret_value()
    reports = ReportBook(
        Measurer(protocol, engine, signer_key), engine, clock, settings.report_delay_seconds
    )
    committee, watcher = None, None
    if signer_key:
        # The committee key's one client: the loop and the watcher write through it, so
        # their transactions take nonces from one counter (on its own connection, so the
        # request threads' reads do not queue behind the loops' receipts).
        signer = Protocol.signing(
            connect(settings.rpc_url, SIGNER_RPC_TIMEOUT_SECONDS),
            Account.from_key(signer_key),
            deployment,
        )
        committee = build_committee_loop(settings, reports, signer, clock, ingestor)
        if settings.watcher_enabled:
            watcher = build_watcher(settings, reports, signer, clock)
    service = OracleService(
        settings,
        engine,
        protocol,
        deployment,
        registry,
        ingestor,
        OracleMetrics(),
        reports,
        committee,
        watcher,
    )
    try:
        service.ensure_schema()
    except StoreUnavailableError as error:
        log.error("database down at start; retrying on each request", error=str(error))
    log.info(
        "oracle ready",
        chain_id=chain_id,
        registry=protocol.registry.address,
        database=engine.url.render_as_string(hide_password=True),
        clock=settings.clock,
        signer=None if committee is None else committee.protocol.address,
        watcher=watcher is not None,
        peers=settings.peer_urls,
    )
    return service
