"""Prometheus metrics of one node, in their own registry (several nodes can live in one
process in tests). Updated from the runner's thread after each tick, so the scrape thread
never touches the outbox database; served by `gridflex node run --metrics-port N`."""

from __future__ import annotations

from gridflex.metrics import ComponentMetrics
from node.runner import NodeRunner, TickReport
from node.sender import SendStats


class NodeMetrics(ComponentMetrics):
    """Counters of what the node did and gauges of what it still owes the oracles."""

    def __init__(self) -> None:
        super().__init__("node")
        self.units_signed = self.counter("units_signed", "Signed meter units stored in the outbox")
        self.units_acked = self.counter(
            "units_acked", "Units an oracle acknowledged after its commit"
        )
        self.units_rejected = self.counter(
            "units_rejected", "Units an oracle rejected for good (dead-lettered)"
        )
        self.send_failures = self.counter(
            "send_failures",
            "Posts to an oracle that failed transiently (down, 5xx, timeout) and will be retried",
        )
        self.pending_units = self.gauge(
            "pending_units", "Units in the outbox not yet finished by this oracle", ["oracle"]
        )
        self.bids_placed = self.counter(
            "bids_placed", "Bids the node placed on flexibility requests"
        )
        self.dispatch_commands = self.counter(
            "dispatch_commands",
            "Dispatch log entries by action (commanded, restored, undeliverable, missed)",
            ["action"],
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
