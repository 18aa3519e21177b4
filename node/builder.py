"""The one way to build a running node: from its data directory (state, encrypted keys),
its settings and the chain it runs on, a `NodeRunner` whose parts (`protocol`, `devices`,
`watcher`, `bidder`, `dispatch`, `meter`, `sender`) are wired and ready to `tick()`.

`gridflex node run` builds its node here; `stream_history` (`gridflex node stream`) signs
the same simulated devices' history without the market side and sends it to the oracles."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from gridflex.chain.session import open_protocol
from gridflex.rules.attestation import meter_domain_separator
from gridflex.rules.types import zone_id
from node import state as node_state
from node.config import NodeSettings
from node.devices.simulated import simulated_device
from node.dispatch import CommandedDevice
from node.keystore import DevicePrivateKey, load_node
from node.meter_loop import MeteredDevice, MeterLoop
from node.outbox import Outbox
from node.runner import NodeDevice, NodeRunner
from node.sender import Sender, SendStats

SendProgress = Callable[[dict[str, tuple[int, int]]], None]
"""Called as units are acknowledged: oracle URL -> (acknowledged, to send)."""


def metered_devices(
    records: Sequence[node_state.NodeDevice], keys: dict[str, DevicePrivateKey]
) -> list[MeteredDevice]:
    """The registered devices as simulated meters signing with their own keys."""
    return [
        MeteredDevice(
            _registered_id(record),
            simulated_device(record.kind, record.capacity_w, record.seed),
            keys[record.name],
        )
        for record in records
    ]


def node_devices(
    records: Sequence[node_state.NodeDevice], keys: dict[str, DevicePrivateKey]
) -> list[NodeDevice]:
    """The registered devices as the runner drives them: commandable simulated devices
    with their keys and bidding strategies."""
    return [
        NodeDevice(
            _registered_id(record),
            CommandedDevice(simulated_device(record.kind, record.capacity_w, record.seed)),
            keys[record.name],
            record.min_price_per_kwh,
            record.max_share_bps,
        )
        for record in records
    ]


def _registered_id(record: node_state.NodeDevice) -> int:
    if record.device_id is None:  # `NodeState.require_registered` refuses this first
        raise ValueError(f"device {record.name} is not registered")
    return record.device_id


def build_node(
    settings: NodeSettings,
    password: str,
    *,
    rpc_url: str,
    oracle_urls: Sequence[str],
    deployments_dir: Path,
    history_hours: float,
) -> NodeRunner:
    """The node of `settings.data_dir`, signing as its owner on the deployment of the chain
    at `rpc_url` and sending to `oracle_urls`. On a new node it also signs `history_hours`
    of history (never before the devices' registration). Raises GridFlexError (wrong
    password, devices not registered, no chain, no deployment) with a readable message."""
    state, owner, keys = load_node(settings.data_dir, password)
    _chain_id, _registry, records = state.require_registered()
    protocol = open_protocol(rpc_url, deployments_dir, owner)
    return NodeRunner(
        protocol, node_devices(records, keys), zone_id(state.zone), settings.data_dir,
        rpc_url, oracle_urls,
        interval_seconds=settings.interval_seconds,
        history_intervals=int(history_hours * 3600) // settings.interval_seconds,
        price_fraction_bps=settings.bid_price_fraction_bps,
    )  # fmt: skip


@dataclass(frozen=True)
class StreamResult:
    signed_units: int
    stats: SendStats
    dead_letters: int


def stream_history(
    settings: NodeSettings,
    password: str,
    oracle_urls: Sequence[str],
    start: int,
    end: int,
    *,
    timeout_s: float,
    on_progress: SendProgress | None = None,
) -> StreamResult:
    """Sign the registered devices' readings of [start, end) into the outbox and send them
    to every oracle until all are acknowledged. Raises GridFlexError (wrong password, not
    registered, DrainTimeoutError when `timeout_s` passes first)."""
    state, _owner, keys = load_node(settings.data_dir, password)
    chain_id, registry, records = state.require_registered()
    with Outbox(settings.outbox_path, list(oracle_urls)) as outbox:
        meter_loop = MeterLoop(
            outbox, metered_devices(records, keys), meter_domain_separator(chain_id, registry),
            interval_seconds=settings.interval_seconds,
        )  # fmt: skip
        signed_units = meter_loop.backfill(start, end)
        to_send = {url: outbox.pending_count(url) for url in oracle_urls}

        def report(_stats: SendStats | None = None) -> None:
            if on_progress is not None:
                on_progress(
                    {
                        url: (total - outbox.pending_count(url), total)
                        for url, total in to_send.items()
                    }
                )

        report()
        sender = Sender(outbox, batch_size=settings.batch_size)
        try:
            stats = sender.drain(timeout_s=timeout_s, on_progress=report)
        finally:
            sender.close()
        return StreamResult(signed_units, stats, len(outbox.dead_letters()))
