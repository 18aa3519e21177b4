"""Prometheus metrics of one oracle, in their own registry so several apps can live in one
process (tests) without clashing on the global default registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from oracle.ingest import BatchResult, UnitStatus

BATCH_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class OracleMetrics:
    """Counters of what ingest did, updated only after the batch's commit (or rejection)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.units = Counter(
            "gridflex_oracle_units",
            "Meter units by outcome (accepted, duplicate, rejected, valid-but-not-stored)",
            ["status"],
            registry=self.registry,
        )
        self.readings_accepted = Counter(
            "gridflex_oracle_readings_accepted",
            "Interval readings committed to the store",
            registry=self.registry,
        )
        self.rejections = Counter(
            "gridflex_oracle_rejections",
            "Rejected units by reason",
            ["reason"],
            registry=self.registry,
        )
        self.batches = Counter(
            "gridflex_oracle_batches",
            "Ingest requests by outcome (stored, rejected, too_large, malformed, unavailable)",
            ["outcome"],
            registry=self.registry,
        )
        self.batch_seconds = Histogram(
            "gridflex_oracle_batch_seconds",
            "Time to verify and commit one batch",
            buckets=BATCH_SECONDS_BUCKETS,
            registry=self.registry,
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

    def render(self) -> bytes:
        return generate_latest(self.registry)
