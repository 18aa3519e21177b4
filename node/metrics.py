"""Prometheus metrics of one node, in their own registry (several nodes can live in one
process in tests). Updated from the runner's thread after each tick, so the scrape thread
never touches the outbox database; served by `gridflex node run --metrics-port N`."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest, start_http_server

from node.runner import NodeRunner, TickReport
from node.sender import SendStats


class NodeMetrics:
    """Counters of what the node did and gauges of what it still owes the oracles."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.units_signed = Counter(
            "gridflex_node_units_signed",
            "Signed meter units stored in the outbox",
            registry=self.registry,
        )
        self.units_acked = Counter(
            "gridflex_node_units_acked",
            "Units an oracle acknowledged after its commit",
            registry=self.registry,
        )
        self.units_rejected = Counter(
            "gridflex_node_units_rejected",
            "Units an oracle rejected for good (dead-lettered)",
            registry=self.registry,
        )
        self.send_failures = Counter(
            "gridflex_node_send_failures",
            "Posts to an oracle that failed transiently (down, 5xx, timeout) and will be retried",
            registry=self.registry,
        )
        self.pending_units = Gauge(
            "gridflex_node_pending_units",
            "Units in the outbox not yet finished by this oracle",
            ["oracle"],
            registry=self.registry,
        )
        self.bids_placed = Counter(
            "gridflex_node_bids_placed",
            "Bids the node placed on flexibility requests",
            registry=self.registry,
        )
        self.dispatch_commands = Counter(
            "gridflex_node_dispatch_commands",
            "Dispatch log entries by action (commanded, restored, undeliverable, missed)",
            ["action"],
            registry=self.registry,
        )
        self._sent = SendStats()

    def observe_tick(self, runner: NodeRunner, report: TickReport) -> None:
        """Fold one tick and the sender's running totals into the metrics."""
        self.units_signed.inc(report.units_signed)
        self.bids_placed.inc(report.bids_placed)
        for entry in report.dispatch:
            self.dispatch_commands.labels(entry.action).inc()
        stats = runner.sender.stats
        self.units_acked.inc(stats.acked - self._sent.acked)
        self.units_rejected.inc(stats.rejected - self._sent.rejected)
        self.send_failures.inc(stats.retries - self._sent.retries)
        self._sent = SendStats(acked=stats.acked, rejected=stats.rejected, retries=stats.retries)
        for oracle in runner.outbox.oracles:
            self.pending_units.labels(oracle).set(runner.outbox.pending_count(oracle))

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        """Serve `/metrics` from a daemon thread."""
        start_http_server(port, addr=host, registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)
