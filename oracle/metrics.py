"""Prometheus metrics of one oracle, in their own registry so several apps can live in one
process (tests) without clashing on the global default registry."""

from __future__ import annotations

from gridflex.metrics import ComponentMetrics
from oracle.ingest import BatchResult, UnitStatus

BATCH_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class OracleMetrics(ComponentMetrics):
    """Counters of what ingest did, updated only after the batch's commit (or rejection)."""

    def __init__(self) -> None:
        super().__init__("oracle")
        self.units = self.counter(
            "units",
            "Meter units by outcome (accepted, duplicate, rejected, valid-but-not-stored)",
            ["status"],
        )
        self.readings_accepted = self.counter(
            "readings_accepted", "Interval readings committed to the store"
        )
        self.rejections = self.counter("rejections", "Rejected units by reason", ["reason"])
        self.batches = self.counter(
            "batches",
            "Ingest requests by outcome (stored, rejected, too_large, malformed, unavailable)",
            ["outcome"],
        )
        self.batch_seconds = self.histogram(
            "batch_seconds", "Time to verify and commit one batch", BATCH_SECONDS_BUCKETS
        )

    def observe_batch(self, result: BatchResult) -> None:
        for status in UnitStatus:
            count = result.count(status)
            if count:
                self.units.labels(status.value).inc(count)
        for rejected in result.rejected:
            assert rejected.rejection is not None
            self.rejections.labels(rejected.rejection.value).inc()
        self.readings_accepted.inc(result.readings_stored)
        self.batches.labels("stored" if result.stored else "rejected").inc()
        self.batch_seconds.observe(result.seconds)
