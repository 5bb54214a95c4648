"""Prometheus metrics of the scorer, on a registry of their own.

Metric names are part of the public contract (dashboards use them).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

_BATCH_SIZES = (1, 8, 32, 128, 256, 512, 1024, 2048, 4096, 16384)
_LATENCIES = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ScorerMetrics:
    """Counters, gauges and histograms of one scorer process."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.consumed = Counter("seismo_events_consumed", "Events consumed.", registry=r)
        self.scored = Counter("seismo_events_scored", "Events scored.", registry=r)
        self.dead_lettered = Counter(
            "seismo_events_dead_lettered", "Events sent to the dead-letter topic.", registry=r
        )
        self.alerts = Counter("seismo_alerts", "Alerts published.", registry=r)
        self.batch_size = Histogram(
            "seismo_batch_size", "Messages per micro-batch.", buckets=_BATCH_SIZES, registry=r
        )
        self.batch_latency = Histogram(
            "seismo_batch_latency_seconds",
            "Time from a batch's arrival to its commit.",
            buckets=_LATENCIES,
            registry=r,
        )
        self.event_to_alert = Histogram(
            "seismo_event_to_alert_latency_seconds",
            "Event timestamp to alert publication.",
            buckets=_LATENCIES + (30.0, 60.0),
            registry=r,
        )
        self.threshold = Gauge("seismo_threshold", "Threshold in force.", registry=r)
        self.threshold_mean = Gauge("seismo_threshold_mean", "Rolling score mean.", registry=r)
        self.threshold_std = Gauge("seismo_threshold_std", "Rolling score std.", registry=r)
        self.model_info = Gauge(
            "seismo_model_info", "Model served (value 1).", ["name", "version"], registry=r
        )
        self.redis_errors = Counter("seismo_redis_errors", "Failed Redis calls.", registry=r)
        self.kafka_errors = Counter(
            "seismo_kafka_errors", "Kafka errors (consume or commit).", registry=r
        )

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        """Expose ``/metrics`` over HTTP (in a daemon thread)."""
        start_http_server(port, addr=host, registry=self.registry)
