"""Device histories as registered on-chain, cached so ingest verifies without an RPC per
unit.

A unit is judged by the device as it stood at the unit's intervals, never by its current
state: the registry appends an epoch (owner, key, capacity, active flag, from `since`) at
every owner action, and `DisputeResolver` judges a unit by `DeviceRegistry.deviceAt`. So
the oracle does too: after a rotation or a transfer, the old key's units for later
intervals are refused while its units for earlier intervals stay valid, and a
deactivation after signing cannot make one oracle accept a unit another refuses.

A device's history is loaded with `epochCount(id)` + `epochAt(id, i)` the first time it is
seen, unless a poll saw its registration and nothing else (then the event is its history:
one epoch, so a fleet onboarded in batches costs no call per device). The first poll reads
from the deployment block, so this holds after a restart too. Registry events
(registration, update, key rotation, (de)activation, transfer) are polled from the last
seen block; every one names its device id in the first indexed topic, so the cache simply
forgets that device and reloads it on next sight. When a unit
fails verification, the caller asks for one reload (rate-limited per device, so forged
units cannot turn into an RPC flood) to catch a change the poll has not seen yet.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Protocol as Interface

import structlog

from gridflex.chain.device_history import DeviceHistory, RegisteredDevice
from gridflex.chain.protocol import Protocol
from gridflex.errors import TransactionReverted

__all__ = ["DeviceDirectory", "DeviceHistory", "RegisteredDevice", "RegistryCache"]

log = structlog.get_logger(__name__)

RELOAD_MIN_SECONDS = 1.0
"""Least time between two chain lookups of the same device id (known or unknown)."""
FORCED_POLL_MIN_SECONDS = 0.25
"""Least time between event polls forced by failed verifications of one device (a flood
of forged units costs at most four `eth_getLogs` per second and device)."""


LOG_CHUNK_BLOCKS = 10_000
"""Blocks per `eth_getLogs` (public RPC providers cap the range; the first poll after a
start reads the registry's events since its deployment)."""


class RegistryUnavailableError(RuntimeError):
    """The chain did not answer a registry lookup; the batch must be retried later."""


class DeviceDirectory(Interface):
    """What ingest asks about devices (RegistryCache on a chain; a fixed map in tests)."""

    def get_many(self, device_ids: set[int]) -> dict[int, DeviceHistory | None]: ...

    def reload(self, device_id: int) -> DeviceHistory | None: ...


@dataclass
class _Entry:
    device: DeviceHistory | None  # None: not registered when last asked
    loaded_at: float
    forced_poll_at: float = float("-inf")


class RegistryCache:
    """Thread-safe cache of `DeviceRegistry` devices, kept fresh by polling its events."""

    def __init__(self, protocol: Protocol, from_block: int, poll_seconds: float = 2.0) -> None:
        self._protocol = protocol
        self._poll_seconds = poll_seconds
        self._next_block = from_block
        self._last_poll = 0.0
        self._entries: dict[int, _Entry] = {}
        self._lock = threading.RLock()

    def get(self, device_id: int) -> DeviceHistory | None:
        """The device, or None when it is not registered (re-asked at most once a second)."""
        with self._lock:
            entry = self._entries.get(device_id)
            if entry is not None and (
                entry.device is not None or time.monotonic() - entry.loaded_at < RELOAD_MIN_SECONDS
            ):
                return entry.device
            return self._load(device_id)

    def reload(self, device_id: int) -> DeviceHistory | None:
        """Fresh copy after a failed verification. A copy younger than a second is kept
        unless a (globally rate-limited) event poll shows the device changed since."""
        with self._lock:
            entry = self._entries.get(device_id)
            now = time.monotonic()
            if entry is not None and now - entry.loaded_at < RELOAD_MIN_SECONDS:
                if now - entry.forced_poll_at >= FORCED_POLL_MIN_SECONDS:
                    entry.forced_poll_at = now
                    self.poll_events()
                if device_id in self._entries:
                    return entry.device
            return self._load(device_id)

    def get_many(self, device_ids: set[int]) -> dict[int, DeviceHistory | None]:
        """Devices of one batch, after catching up on registry events if a poll is due."""
        self.poll_if_due()
        with self._lock:
            return {device_id: self.get(device_id) for device_id in device_ids}

    def poll_if_due(self) -> None:
        with self._lock:
            if time.monotonic() - self._last_poll >= self._poll_seconds:
                self.poll_events()

    def poll_events(self) -> None:
        """Forget every device named by a registry event since the last poll.

        On an RPC error the cache stays as it is (logged): a stale key is re-checked by the
        reload-on-failure path, and the next poll resumes from the same block.
        """
        with self._lock:
            self._last_poll = time.monotonic()
            try:
                latest = self._protocol.block_number()
            except Exception as error:  # any transport error: keep serving from the cache
                log.warning("registry event poll failed", error=str(error))
                return
            while self._next_block <= latest:
                to_block = min(latest, self._next_block + LOG_CHUNK_BLOCKS - 1)
                try:
                    changed, registered = self._protocol.registry_changes(
                        self._next_block, to_block
                    )
                except Exception as error:
                    log.warning("registry event poll failed", error=str(error))
                    return
                now = time.monotonic()
                for device_id in changed:
                    history = registered.get(device_id)
                    if history is None:
                        self._entries.pop(device_id, None)
                    else:  # a new device, known from its registration event alone
                        self._entries[device_id] = _Entry(history, now)
                self._next_block = to_block + 1
                if changed:
                    log.info(
                        "registry devices changed", count=len(changed), next_block=to_block + 1
                    )

    def _load(self, device_id: int) -> DeviceHistory | None:
        try:
            history = self._protocol.device_history(device_id)
        except TransactionReverted:  # UnknownDevice: removed between the two calls
            history = None
        except Exception as error:
            raise RegistryUnavailableError(f"registry lookup failed: {error}") from error
        self._entries[device_id] = _Entry(history, time.monotonic())
        return history
