"""Builds one oracle from its settings: database, chain connection, registry cache, clock,
ingestor and metrics. Everything that can be checked at start is checked here, so a
misconfigured oracle stops with a message instead of answering 503s forever."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import structlog
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from web3 import Web3

from gridflex.attestation import meter_domain_separator
from gridflex.chain.deployments import Deployment, load_deployment
from gridflex.errors import ConfigurationError
from oracle.clock import ChainClock, Clock, WallClock
from oracle.config import OracleSettings
from oracle.db import create_oracle_engine, init_db
from oracle.ingest import IngestLimits, Ingestor, StoreUnavailableError
from oracle.metrics import OracleMetrics
from oracle.registry_cache import RegistryCache

log = structlog.get_logger(__name__)

RPC_TIMEOUT_SECONDS = 5.0


@dataclass
class OracleService:
    settings: OracleSettings
    engine: Engine
    w3: Web3
    deployment: Deployment
    registry: RegistryCache
    ingestor: Ingestor
    metrics: OracleMetrics
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

    def close(self) -> None:
        self.engine.dispose()


def build_service(settings: OracleSettings) -> OracleService:
    """Everything one oracle process needs; raises ConfigurationError with the fix."""
    w3 = Web3(Web3.HTTPProvider(settings.rpc_url, request_kwargs={"timeout": RPC_TIMEOUT_SECONDS}))
    chain_id = settings.chain_id
    if chain_id is None:
        try:
            chain_id = int(w3.eth.chain_id)
        except Exception as error:
            raise ConfigurationError(
                f"chain RPC {settings.rpc_url} does not answer ({error}); start the chain or "
                "set GRIDFLEX_ORACLE_CHAIN_ID to start without it"
            ) from error
    deployment = load_deployment(chain_id, settings.deployments_dir)
    registry_contract = w3.eth.contract(
        address=deployment.address_of("DeviceRegistry"),  # type: ignore[arg-type]
        abi=deployment.contracts["DeviceRegistry"].abi,
    )
    try:
        from_block = int(w3.eth.block_number) + 1
    except Exception:
        log.warning("chain RPC down at start; registry events from the deployment block")
        from_block = deployment.deployed_at_block
    registry = RegistryCache(w3, registry_contract, from_block, settings.registry_poll_seconds)
    clock: Clock = ChainClock(w3) if settings.clock == "chain" else WallClock()
    engine = create_oracle_engine(settings)
    ingestor = Ingestor(
        engine,
        registry,
        clock,
        meter_domain_separator(chain_id, registry_contract.address),
        IngestLimits(settings.margin_ratio, settings.future_skew_seconds),
    )
    service = OracleService(settings, engine, w3, deployment, registry, ingestor, OracleMetrics())
    try:
        service.ensure_schema()
    except StoreUnavailableError as error:
        log.error("database down at start; retrying on each request", error=str(error))
    log.info(
        "oracle ready",
        chain_id=chain_id,
        registry=registry_contract.address,
        database=engine.url.render_as_string(hide_password=True),
        clock=settings.clock,
    )
    return service
