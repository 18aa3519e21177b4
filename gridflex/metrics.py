"""Prometheus metrics of one component in their own registry, so several nodes or oracles
can live in one process (tests) without clashing on the global default registry. Each
component names its metrics once (`gridflex_<component>_<name>`); this is how they are
made, rendered and served."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)


class ComponentMetrics:
    """A registry of `gridflex_<component>_*` metrics, rendered for a scrape."""

    def __init__(self, component: str) -> None:
        self.registry = CollectorRegistry()
        self._prefix = f"gridflex_{component}_"

    def counter(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Counter:
        return Counter(self._prefix + name, documentation, labels, registry=self.registry)

    def gauge(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Gauge:
        return Gauge(self._prefix + name, documentation, labels, registry=self.registry)

    def histogram(self, name: str, documentation: str, buckets: Sequence[float]) -> Histogram:
        return Histogram(
            self._prefix + name, documentation, buckets=buckets, registry=self.registry
        )

    def render(self) -> bytes:
        """The text exposition format of every metric in this registry."""
        return generate_latest(self.registry)

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        """Serve `/metrics` from a daemon thread."""
        start_http_server(port, addr=host, registry=self.registry)
