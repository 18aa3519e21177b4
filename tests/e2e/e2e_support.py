"""Helpers for the end-to-end tests: the `gridflex node` CLI as a device owner runs it and
what the simulated devices say each interval should hold (the node's outbox and the
oracle's database are read with `support.stores`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from support.clock import DAY
from typer.testing import CliRunner

from cli.main import app
from gridflex.chain.protocol import Protocol
from node.devices.simulated import simulated_device
from node.state import NodeDevice, NodeState

PASSWORD = "end-to-end node password"
FAST_SCRYPT_N = 2**10
FLEX = 10**18
INTERVAL = 900
INTERVALS_PER_DAY = DAY // INTERVAL
REPORT_DELAY_S = 60
"""The committee oracle's wait after a window's end before it measures (stories)."""


@dataclass
class RegisteredNode:
    """A node after `gridflex node init` and `gridflex node register`."""

    data_dir: Path
    state: NodeState
    protocol: Protocol
    domain: bytes

    @property
    def outbox_path(self) -> Path:
        return self.data_dir / "outbox.sqlite"


def node_cli(*args: str) -> str:
    """`gridflex node <args>` in-process; fails the test with the output on a non-zero exit."""
    result = CliRunner().invoke(app, ["node", *args])
    assert result.exit_code == 0, result.output
    return result.output


def expected_energy_wh(device: NodeDevice, start: int, end: int) -> dict[int, int]:
    """{interval start: Wh} as the device's simulated adapter reads it (a pure function of
    its seed and the time, so a fresh adapter recomputes exactly what the node signed)."""
    adapter = simulated_device(device.kind, device.capacity_w, device.seed)
    return {
        interval_start: adapter.read_interval_energy_wh(interval_start, INTERVAL)
        for interval_start in range(start, end, INTERVAL)
    }
