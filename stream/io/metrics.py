"""Prometheus metrics of the scorer, on a registry of their own.

Metric names are part of the public contract (dashboards use them).
"""

from __future__ import annotations

from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from seismo.stream.io.health import Health, RetrainerHealth, bind_error, brokers_up, serve

_BATCH_SIZES = (1, 8, 32, 128, 256, 512, 1024, 2048, 4096, 16384)
_LATENCIES = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


H = TypeVar("H", Health, RetrainerHealth)


class _ServiceMetrics(Generic[H]):
    """What the scorer and the retrainer share: the model served, Kafka's state, HTTP."""

    registry: CollectorRegistry
    model_info: Gauge
    kafka_up: Gauge
    health: H

    def set_model(self, name: str, version: str) -> None:
        """Mark ``version`` as the model of ``name`` in service (and no other)."""
        self.model_info.clear()
        self.model_info.labels(name, version).set(1)
        self.health.model(version)

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        """Expose ``/metrics`` and ``/health`` over HTTP (in a daemon thread).

        A port that cannot be bound raises a one-line :class:`~seismo.stream.errors.ServiceError`.
        """
        serve(self.registry, self.health, port, host)

    def on_kafka_stats(self, stats_json: str) -> None:
        """A ``stats_cb`` for the process's consumer: broker connections into health."""
        up, known = brokers_up(stats_json)
        self.kafka_up.set(up)
        self.health.kafka((up, known))


def serve_metrics(registry: CollectorRegistry, port: int, host: str = "127.0.0.1") -> None:
    """Expose ``/metrics`` alone over HTTP (in a daemon thread).

    Raises
    ------
    ServiceError
        When ``host:port`` cannot be bound (in use, no such address), in one line.
    """
    try:
        start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise bind_error(host, port, exc) from exc


class ScorerMetrics(_ServiceMetrics[Health]):
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
        self.threshold_calibration = Gauge(
            "seismo_threshold_calibration",
            "Threshold of the model's calibration alone (what seismo evaluate uses).",
            registry=r,
        )
        self.threshold_mean = Gauge("seismo_threshold_mean", "Rolling score mean.", registry=r)
        self.threshold_std = Gauge("seismo_threshold_std", "Rolling score std.", registry=r)
        self.model_info = Gauge(
            "seismo_model_info", "Model served (value 1).", ["name", "version"], registry=r
        )
        self.redis_errors = Counter("seismo_redis_errors", "Failed Redis calls.", registry=r)
        self.threshold_local = Gauge(
            "seismo_threshold_local",
            "1 while batches are judged on local statistics (Redis unavailable), else 0.",
            registry=r,
        )
        self.stats_pending = Gauge(
            "seismo_stats_pending", "Scores not merged into Redis yet.", registry=r
        )
        self.device_states = Gauge(
            "seismo_device_states", "Device states held in memory (threshold_scope device).",
            registry=r,
        )  # fmt: skip
        self.device_states_pending = Gauge(
            "seismo_device_states_pending", "Device states not written to Redis yet.", registry=r
        )
        self.kafka_errors = Counter(
            "seismo_kafka_errors", "Kafka errors (consume or commit).", registry=r
        )
        self.delivery_failures = Counter(
            "seismo_delivery_failures",
            "Batches the broker did not confirm (each is published again).",
            registry=r,
        )
        self.kafka_up = Gauge(
            "seismo_kafka_brokers_up", "Broker connections up (librdkafka statistics).", registry=r
        )
        self.health = Health()
        self.model_swaps = Counter(
            "seismo_model_swaps", "Model versions swapped in without a restart.", registry=r
        )
        self.model_swap_failures = Counter(
            "seismo_model_swap_failures",
            "New versions refused (unloadable, other width or channels).", registry=r,
        )
        self.drift_requests = Counter(
            "seismo_drift_retrain_requests", "Retrains requested by the drift trigger.", registry=r
        )
        self.state_repairs = Counter(
            "seismo_state_repairs",
            "Shared statistics or device states found unusable (NaN, Inf, null, unreadable) "
            "and started again from the model's calibration.",
            registry=r,
        )
        self.device_evictions = Counter(
            "seismo_device_evictions",
            "Device states and windows dropped from memory to stay under max_devices "
            "(states are written to Redis first).",
            registry=r,
        )
        self.timestamps_replaced = Counter(
            "seismo_timestamps_replaced",
            "Events whose Kafka timestamp lay outside [0, 1e14) ms and took the scorer's clock.",
            registry=r,
        )
        self.rows_skipped = Counter(
            "seismo_rows_skipped",
            "Rows not judged because their device's state had already judged them (a replay).",
            registry=r,
        )
        self.model_watch_errors = Counter(
            "seismo_model_watch_errors",
            "Errors in the model watcher thread (it retries; see /health for its liveness).",
            registry=r,
        )


class RetrainerMetrics(_ServiceMetrics[RetrainerHealth]):
    """Counters and gauges of one retraining sidecar."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.attempted = Counter(
            "seismo_retrains_attempted", "Retrain rounds started, by trigger.", ["trigger"],
            registry=r,
        )  # fmt: skip
        self.promoted = Counter("seismo_retrains_promoted", "Challengers promoted.", registry=r)
        self.skipped = Counter(
            "seismo_retrains_skipped", "Rounds not started, by reason.", ["reason"], registry=r
        )
        self.rejected = Counter(
            "seismo_retrains_rejected", "Challengers rejected, by reason.", ["reason"], registry=r
        )
        self.seconds = Histogram(
            "seismo_retrain_seconds",
            "Time of one round (training and judging).",
            buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
            registry=r,
        )
        self.window_events = Gauge(
            "seismo_retrain_window_events", "Events in the training window.", registry=r
        )
        self.model_info = Gauge(
            "seismo_model_info", "Current model version (value 1).", ["name", "version"],
            registry=r,
        )  # fmt: skip
        self.kafka_up = Gauge(
            "seismo_kafka_brokers_up", "Broker connections up (librdkafka statistics).", registry=r
        )
        self.health = RetrainerHealth()


class IncidentMetrics:
    """Counters of ``seismo incidents``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.changes = Counter(
            "seismo_incident_changes", "Incident changes published, by status.", ["status"],
            registry=r,
        )  # fmt: skip
        self.silenced = Counter(
            "seismo_incident_silenced_changes", "Changes of incidents under a silence.", registry=r
        )
        self.skipped = Counter(
            "seismo_incident_skipped_messages", "Messages that were no seismo alert.", registry=r
        )
        self.forgotten = Counter(
            "seismo_incident_devices_forgotten",
            "Idle device states deleted (--forget-after, --max-devices).", registry=r,
        )  # fmt: skip
        self.devices = Gauge(
            "seismo_incident_devices", "Device states this instance holds (at the last sweep).",
            registry=r,
        )  # fmt: skip

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        """Expose ``/metrics`` over HTTP (in a daemon thread); a busy port: ServiceError."""
        serve_metrics(self.registry, port, host)


class NotifyMetrics:
    """Counters of ``seismo notify``, by sink."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.delivered = Counter(
            "seismo_notify_delivered", "Deliveries a sink accepted.", ["sink"], registry=r
        )
        self.failed = Counter(
            "seismo_notify_failed", "Delivery attempts a sink did not accept.", ["sink"],
            registry=r,
        )  # fmt: skip
        self.given_up = Counter(
            "seismo_notify_given_up", "Deliveries sent to the dead topic.", ["sink"], registry=r
        )

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        """Expose ``/metrics`` over HTTP (in a daemon thread); a busy port: ServiceError."""
        serve_metrics(self.registry, port, host)
