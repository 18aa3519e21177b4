"""The one way to build a running node: from its data directory (state, encrypted keys),
its settings and the chain it runs on, a `NodeRunner` whose parts (`protocol`, `devices`,
`watcher`, `bidder`, `dispatch`, `meter`, `sender`) are wired and ready to `tick()`.

`gridflex node run` builds its node here; `metered_devices` gives `gridflex node stream`
the same simulated devices without the market side."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from gridflex.chain.session import open_protocol
from gridflex.rules.types import zone_id
from node import state as node_state
from node.config import NodeSettings
from node.devices.simulated import simulated_device
from node.dispatch import CommandedDevice
from node.keystore import DevicePrivateKey, load_node
from node.meter_loop import MeteredDevice
from node.runner import NodeDevice, NodeRunner


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
