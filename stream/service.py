"""Start-up and shutdown of a scorer process: open every client, check, close.

Every start-up failure (broker or Redis unreachable, topic or model missing,
model unusable or of another dimension than the newest input events) raises a
:class:`~stream.errors.SeismoError` with one clear line, which the CLI prints
without a traceback.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from models.artifact import load_artifact
from models.errors import ArtifactError
from stream.kafka_io import (
    CONSUMER_DEFAULTS,
    PINNED_CONSUMER,
    PRODUCER_DEFAULTS,
    BrokerErrors,
    ConfirmingProducer,
    check_topics,
    client_config,
)
from stream.metrics import ScorerMetrics
from stream.preflight import dimension_mismatch, latest_values
from stream.redis_stats import RedisStats, SharedStats, connect, stats_key
from stream.scorer import Scorer
from stream.settings import ScorerSettings

log = logging.getLogger(__name__)


def _log_assignment(verb: str) -> Any:
    def callback(_consumer: Consumer, partitions: list[TopicPartition]) -> None:
        names = ", ".join(f"{p.topic}[{p.partition}]" for p in partitions) or "nothing"
        log.info("partitions %s: %s", verb, names)

    return callback


def check_model_fits(settings: ScorerSettings, n_features: int) -> None:
    """Refuse to start when the newest input events cannot fit the model."""
    config = client_config(settings.bootstrap_servers, {}, settings.kafka_config)
    mismatch = dimension_mismatch(latest_values(config, settings.input_topic), n_features)
    if mismatch:
        raise ArtifactError(
            f"model {settings.model} does not fit topic {settings.input_topic}: {mismatch}"
        )


def output_topics(settings: ScorerSettings) -> list[str]:
    """Every topic the scorer writes to."""
    topics = [settings.alerts_topic, settings.dlq_topic]
    return topics + ([settings.scores_topic] if settings.scores_topic else [])


@contextmanager
def open_scorer(settings: ScorerSettings, metrics: ScorerMetrics | None = None) -> Iterator[Scorer]:
    """Open the model, Redis and Kafka clients; close them all on exit.

    On exit the consumer leaves its group (``close``) without committing
    anything beyond what the scorer committed.
    """
    artifact = load_artifact(settings.model, device=settings.device)
    log.info("model %s version %s (%d features) on %s", artifact.name, artifact.version,
             artifact.n_features, artifact.detector.device)
    with ExitStack() as stack:
        client = connect(settings.redis_url.get_secret_value())
        stack.callback(client.close)
        key = stats_key(
            settings.redis_prefix, artifact.name, artifact.version, settings.threshold_space
        )
        stats = SharedStats(RedisStats(client, key, settings.stats_window))
        config = client_config(
            settings.bootstrap_servers,
            {**CONSUMER_DEFAULTS, "group.id": settings.group_id},
            settings.kafka_config,
            PINNED_CONSUMER,
        )
        errors = BrokerErrors()
        consumer = Consumer({**config, "error_cb": errors})
        stack.callback(consumer.close)
        check_topics(consumer, [settings.input_topic, *output_topics(settings)], errors=errors)
        check_model_fits(settings, artifact.n_features)
        producer = ConfirmingProducer(
            client_config(settings.bootstrap_servers, PRODUCER_DEFAULTS, settings.kafka_config)
        )
        metrics = metrics or ScorerMetrics()
        if settings.metrics_port:
            metrics.serve(settings.metrics_port, settings.metrics_host)
        consumer.subscribe(
            [settings.input_topic],
            on_assign=_log_assignment("assigned"),
            on_revoke=_log_assignment("revoked"),
        )
        yield Scorer(
            settings=settings,
            artifact=artifact,
            consumer=consumer,
            producer=producer,
            stats=stats,
            metrics=metrics,
        )


def run_scorer(settings: ScorerSettings, stop: threading.Event) -> None:
    """Run a scorer until ``stop`` is set; the batch in flight is finished first."""
    log.info("starting scorer with settings %s", settings.redacted())
    with open_scorer(settings) as scorer:
        scorer.run(stop)
    log.info("scorer stopped cleanly")
