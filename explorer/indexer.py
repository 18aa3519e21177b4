"""Follows every GridFlex contract event from the deployment block into the database.

Each pass: check that the database still describes this chain (genesis and deployment
block hashes, else reset); check that the last indexed block is still on the chain (else
walk back through the recent indexed block hashes to the fork point, delete everything
above it and recompute the projections); then fetch logs in batches with `eth_getLogs`,
store them keyed by (block number, block hash, log index) and project them, one
transaction per batch together with the cursor. A restart resumes from the cursor; a
replayed batch changes nothing; a reverted anvil snapshot or a reorg is undone before
anything is counted again.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from hexbytes import HexBytes
from sqlalchemy import Engine, delete
from sqlmodel import Session, col, select

from explorer.models import (
    ALL_TABLES,
    AccountStake,
    ChainEvent,
    IndexedBlock,
    IndexerCursor,
    LedgerEntry,
)
from explorer.projection import FLEX, apply_event, rebuild_projections
from gridflex.chain.connect import RPC_ERRORS, Connection
from gridflex.chain.deployments import Deployment
from gridflex.chain.logs import DeploymentLogs
from gridflex.chain.protocol import Protocol
from gridflex.errors import TransactionReverted

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class SyncResult:
    indexed_block: int
    chain_head: int
    new_events: int
    rolled_back_to: int | None = None
    """The fork point when a reorg (or a reverted snapshot) was undone."""
    reset: bool = False


def to_json_value(value: Any, abi_type: Mapping[str, Any] | None = None) -> Any:
    """A decoded ABI value as plain JSON: bytes as 0x-hex, structs as objects by name."""
    if isinstance(value, bytes | bytearray | HexBytes):
        return "0x" + bytes(value).hex()
    if isinstance(value, Mapping):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        components = (abi_type or {}).get("components")
        if components and not str(abi_type.get("type", "")).endswith("]"):  # type: ignore[union-attr]
            return {c["name"]: to_json_value(v, c) for c, v in zip(components, value, strict=True)}
        return [to_json_value(v) for v in value]
    return value


class Indexer:
    """One chain, one deployment, one database."""

    def __init__(
        self,
        engine: Engine,
        w3: Connection,
        deployment: Deployment,
        *,
        batch_blocks: int = 2_000,
        reorg_depth: int = 64,
    ) -> None:
        self.engine = engine
        self.deployment = deployment
        self.batch_blocks = batch_blocks
        self.reorg_depth = reorg_depth
        self.logs = DeploymentLogs(w3, deployment)
        self.protocol = Protocol.reader(w3, deployment)
        self._lock = threading.Lock()

    def _block_hash(self, number: int) -> str | None:
        header = self.logs.block(number)
        return None if header is None else header.hash

    # ─── One pass ─────────────────────────────────────────────────────────────────────

    def sync(self) -> SyncResult:
        """Index up to the current head (serialised: one pass at a time)."""
        with self._lock:
            return self._sync()

    def _sync(self) -> SyncResult:
        head = self.logs.head()
        cursor, reset = self._checked_cursor(head)
        rolled_back_to = None
        if not reset:
            rolled_back_to = self._undo_fork(cursor)
        new_events = 0
        next_block = self._cursor().next_block
        while next_block <= head:
            to_block = min(head, next_block + self.batch_blocks - 1)
            try:
                stored = self._index_batch(next_block, to_block, head)
            except RPC_ERRORS as error:
                if to_block == next_block:
                    raise
                # Providers cap eth_getLogs by range or result count: halve and go on.
                self.batch_blocks = max(1, (to_block - next_block + 1) // 2)
                log.info("eth_getLogs refused; smaller batches", blocks=self.batch_blocks,
                         error=str(error))  # fmt: skip
                continue
            if stored is None:  # the chain moved under us: check again next pass
                break
            new_events += stored
            next_block = to_block + 1
        with Session(self.engine) as session:
            current = session.get(IndexerCursor, 1)
            assert current is not None
            current.chain_head = head
            session.add(current)
            session.commit()
            return SyncResult(current.next_block - 1, head, new_events, rolled_back_to, reset)

    def _cursor(self) -> IndexerCursor:
        with Session(self.engine) as session:
            cursor = session.get(IndexerCursor, 1)
            assert cursor is not None
            return cursor

    def _checked_cursor(self, head: int) -> tuple[IndexerCursor, bool]:
        """The cursor, after a reset when the database describes another chain (another
        genesis, another deployment block hash) or the deployment is not on it yet."""
        deployed_at = self.deployment.deployed_at_block
        genesis = self._block_hash(0) or ""
        deployment_hash = (self._block_hash(deployed_at) if head >= deployed_at else "") or ""
        expected = (self.deployment.chain_id, genesis, deployed_at, deployment_hash)
        with Session(self.engine) as session:
            cursor = session.get(IndexerCursor, 1)
            if (
                cursor is not None
                and (
                    cursor.chain_id,
                    cursor.genesis_hash,
                    cursor.deployed_at_block,
                    cursor.deployment_block_hash,
                )
                == expected
            ):
                return cursor, False
            if cursor is not None:
                log.warning("explorer database follows another chain: reset", chain_id=expected[0])
            _delete_all(session)
            cursor = IndexerCursor(
                chain_id=expected[0],
                genesis_hash=genesis,
                deployed_at_block=deployed_at,
                deployment_block_hash=deployment_hash,
                next_block=deployed_at,
                chain_head=head,
            )
            session.add(cursor)
            session.commit()
            session.refresh(cursor)
            return cursor, True

    def _undo_fork(self, cursor: IndexerCursor) -> int | None:
        """When the newest indexed block left the chain, delete everything above the
        newest block still on it and recompute the projections; returns that block."""
        with Session(self.engine) as session:
            recent = session.exec(
                select(IndexedBlock)
                .order_by(col(IndexedBlock.number).desc())
                .limit(self.reorg_depth)
            ).all()
            if not recent or self._block_hash(recent[0].number) == recent[0].hash:
                return None
            fork_point = cursor.deployed_at_block - 1
            for block in recent[1:]:
                if self._block_hash(block.number) == block.hash:
                    fork_point = block.number
                    break
            else:
                if len(recent) == self.reorg_depth:
                    log.warning("reorg deeper than the kept block hashes: re-indexing all")
            session.exec(delete(ChainEvent).where(col(ChainEvent.block_number) > fork_point))  # type: ignore[call-overload]
            session.exec(delete(IndexedBlock).where(col(IndexedBlock.number) > fork_point))  # type: ignore[call-overload]
            rebuild_projections(session)
            session.exec(delete(AccountStake))  # type: ignore[call-overload]
            accounts = set(
                session.exec(select(LedgerEntry.account).where(LedgerEntry.token == FLEX)).all()
            )
            self._refresh_stakes(session, accounts, max(fork_point, cursor.deployed_at_block))
            stored = session.get(IndexerCursor, 1)
            assert stored is not None
            stored.next_block = max(fork_point + 1, cursor.deployed_at_block)
            session.add(stored)
            session.commit()
            log.warning("chain reorganised: rolled back", fork_point=fork_point)
            return fork_point

    def _index_batch(self, from_block: int, to_block: int, head: int) -> int | None:
        """Store and project the logs of [from_block, to_block]; None if a block hash
        changed while fetching (a reorg in progress)."""
        logged = self.logs.fetch(from_block, to_block)
        numbers = sorted({event.block_number for event in logged} | {to_block})
        blocks: dict[int, IndexedBlock] = {}
        for number in numbers:
            header = self.logs.block(number)
            if header is None:
                return None
            blocks[number] = IndexedBlock(
                number=number, hash=header.hash, timestamp=header.timestamp
            )
        events = []
        for event in logged:
            block = blocks[event.block_number]
            if event.block_hash != block.hash:
                return None
            events.append(
                ChainEvent(
                    block_number=block.number,
                    block_hash=block.hash,
                    log_index=event.log_index,
                    tx_hash=event.tx_hash,
                    timestamp=block.timestamp,
                    contract=event.contract,
                    name=event.name,
                    args=json.dumps({k: to_json_value(v) for k, v in event.args.items()}),
                )
            )
        with Session(self.engine) as session:
            known = set(
                session.exec(
                    select(ChainEvent.block_hash, ChainEvent.log_index).where(
                        col(ChainEvent.block_number).between(from_block, to_block)
                    )
                ).all()
            )
            fresh = [e for e in events if (e.block_hash, e.log_index) not in known]
            for event in fresh:
                session.add(event)
                apply_event(session, event)
            touched = {
                json.loads(e.args).get("account") for e in fresh if e.contract == "Staking"
            } - {None}
            self._refresh_stakes(session, touched, to_block)
            for block in blocks.values():
                session.merge(block)
            self._prune_blocks(session, to_block)
            cursor = session.get(IndexerCursor, 1)
            assert cursor is not None
            cursor.next_block = to_block + 1
            cursor.chain_head = head
            session.add(cursor)
            session.commit()
        if fresh:
            log.info("indexed", from_block=from_block, to_block=to_block, events=len(fresh))
        return len(fresh)

    def _refresh_stakes(self, session: Session, accounts: set[str], block: int) -> None:
        """Each account's stake as of `block`; a node without that block's state (not an
        archive node, catching up from far back) answers for its head instead, which the
        next batches that touch the account overwrite."""
        for account in accounts:
            read_at: int = block
            try:
                stake = self.protocol.stake_of(account, block)
            except (*RPC_ERRORS, TransactionReverted) as error:
                log.info("no historical state; stake read at the head", error=str(error))
                read_at = self.logs.head()
                stake = self.protocol.stake_of(account, read_at)
            session.merge(
                AccountStake(
                    account=account, staked=stake.staked, locked=stake.locked,
                    unbonding=stake.unbonding, unbonding_release_at=stake.unbonding_release_at,
                    block_number=read_at,
                )
            )  # fmt: skip

    def _prune_blocks(self, session: Session, newest: int) -> None:
        """Keep event blocks (they date events) and the recent blocks (fork search)."""
        session.exec(  # type: ignore[call-overload]
            delete(IndexedBlock).where(
                col(IndexedBlock.number) < newest - self.reorg_depth,
                col(IndexedBlock.number).not_in(select(ChainEvent.block_number).distinct()),
            )
        )

    # ─── Following the chain ──────────────────────────────────────────────────────────

    def follow(
        self,
        stop: threading.Event,
        poll_seconds: float,
        after_sync: Callable[[SyncResult], None] | None = None,
    ) -> None:
        """Sync every `poll_seconds` until `stop` is set; errors are logged and retried."""
        while not stop.is_set():
            try:
                result = self.sync()
                if after_sync is not None:
                    after_sync(result)
            except Exception as error:  # the chain or an oracle may be down: retry
                log.error("explorer sync failed", error=str(error))
            stop.wait(poll_seconds)


def _delete_all(session: Session) -> None:
    for table in ALL_TABLES:
        session.exec(delete(table))  # type: ignore[call-overload]
