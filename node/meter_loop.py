"""From devices to the outbox: read each completed interval, sign runs of consecutive
intervals as units, store them; and the loops that push the outbox to the oracles.

Never signs an interval twice: each device resumes from its watermark in the outbox.
Intervals an accumulator meter could not measure (no sample at a boundary, e.g. the node
was down) are skipped and logged: a gap is honest, a guess signed by the device is not.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import structlog

from gridflex.rules.attestation import MAX_INTERVALS_PER_UNIT, MeterUnit, sign_unit
from gridflex.rules.types import DEFAULT_INTERVAL_SECONDS
from node.devices.base import BoundarySampler, DeviceAdapter, MissingSampleError
from node.keystore import DevicePrivateKey
from node.outbox import Outbox, OutboxUnit
from node.sender import Sender

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class MeteredDevice:
    """A registered device: on-chain id, how to read it, how to sign for it."""

    device_id: int
    adapter: DeviceAdapter
    signing_key: DevicePrivateKey


def floor_to_grid(at: int, interval_seconds: int) -> int:
    return at - at % interval_seconds


class MeterLoop:
    """Turns device readings into signed units in the outbox."""

    def __init__(
        self,
        outbox: Outbox,
        devices: Sequence[MeteredDevice],
        domain_separator: bytes,
        *,
        interval_seconds: int = DEFAULT_INTERVAL_SECONDS,
        max_intervals: int = MAX_INTERVALS_PER_UNIT,
    ) -> None:
        if not 1 <= max_intervals <= MAX_INTERVALS_PER_UNIT:
            raise ValueError(f"max_intervals must be 1..{MAX_INTERVALS_PER_UNIT}")
        self.outbox = outbox
        self.devices = list(devices)
        self.domain_separator = domain_separator
        self.interval_seconds = interval_seconds
        self.max_intervals = max_intervals

    def _signer(self, device: MeteredDevice) -> Callable[[MeterUnit], MeterUnit]:
        return lambda unit: sign_unit(unit, self.domain_separator, device.signing_key)

    def _runs(self, device: MeteredDevice, start: int, end: int) -> Iterator[tuple[int, list[int]]]:
        """(first interval start, energies) for runs of consecutive measurable intervals."""
        run_start, energies = start, []
        for interval_start in range(start, end, self.interval_seconds):
            try:
                energy_wh = device.adapter.read_interval_energy_wh(
                    interval_start, self.interval_seconds
                )
            except MissingSampleError as error:
                log.warning("interval not measurable, skipped", device_id=device.device_id,
                            interval_start=interval_start, reason=str(error))  # fmt: skip
                if energies:
                    yield run_start, energies
                run_start, energies = interval_start + self.interval_seconds, []
                continue
            energies.append(energy_wh)
            if len(energies) == self.max_intervals:
                yield run_start, energies
                run_start, energies = interval_start + self.interval_seconds, []
        if energies:
            yield run_start, energies

    def attest_device(self, device: MeteredDevice, start: int, end: int) -> list[OutboxUnit]:
        """Sign and store `device`'s intervals in [max(start, watermark), end)."""
        watermark = self.outbox.attested_until(device.device_id)
        first = floor_to_grid(start, self.interval_seconds)
        if watermark is not None:
            first = max(first, watermark)
        last = floor_to_grid(end, self.interval_seconds)
        stored = []
        for run_start, energies in self._runs(device, first, last):
            stored.append(
                self.outbox.append(
                    device.device_id,
                    run_start,
                    self.interval_seconds,
                    energies,
                    self._signer(device),
                )
            )
        return stored

    def backfill(self, start: int, end: int) -> int:
        """Signed history for [start, end) on every device (time compressed: simulated
        devices compute any past interval instantly). Returns the number of units stored."""
        return sum(len(self.attest_device(device, start, end)) for device in self.devices)

    def attest_completed(self, now: int, first_start: int) -> int:
        """Sign every interval completed by `now`; devices with no history start at
        `first_start`. Samples accumulator meters at the current boundary first."""
        boundary = floor_to_grid(now, self.interval_seconds)
        stored = 0
        for device in self.devices:
            if isinstance(device.adapter, BoundarySampler):
                try:
                    device.adapter.sample_boundary(boundary)
                except Exception as error:  # a meter offline must not stop the others
                    log.error("meter not sampled", device_id=device.device_id, error=str(error))
            stored += len(self.attest_device(device, first_start, boundary))
        return stored


def run_node(
    meter_loop: MeterLoop,
    sender: Sender,
    stop: threading.Event,
    *,
    clock: Callable[[], float] = time.time,
    max_wait_s: float = 60.0,
) -> None:
    """The long-running node: at every interval boundary attest what completed, and keep
    the outbox flowing to the oracles (with their backoff) until `stop` is set."""
    first_start = floor_to_grid(int(clock()), meter_loop.interval_seconds)
    last_boundary = None
    while not stop.is_set():
        now = int(clock())
        boundary = floor_to_grid(now, meter_loop.interval_seconds)
        if boundary != last_boundary:
            stored = meter_loop.attest_completed(now, first_start)
            if stored:
                log.info("units signed", units=stored, boundary=boundary)
            last_boundary = boundary
        sender_wait_s = sender.send_round()
        next_boundary_s = boundary + meter_loop.interval_seconds - clock()
        wait_s = min(
            max_wait_s,
            next_boundary_s,
            sender_wait_s if sender_wait_s is not None else max_wait_s,
        )
        stop.wait(max(wait_s, 0.0))
