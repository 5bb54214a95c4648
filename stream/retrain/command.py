"""``seismo retrain``: open the sidecar's clients, run it, close everything.

Start-up failures (Redis or the broker unreachable, the input topic missing,
no current model version) raise a :class:`~seismo.stream.errors.SeismoError` with one
clear line, which the CLI prints without a traceback.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

from confluent_kafka import Consumer

from seismo.stream.config.retrain_settings import RetrainSettings
from seismo.stream.errors import ServiceError
from seismo.stream.io.kafka import STATS_INTERVAL_MS, BrokerErrors, check_topics, client_config
from seismo.stream.io.metrics import RetrainerMetrics
from seismo.stream.io.redis_stats import connect
from seismo.stream.registry.model_registry import ModelRegistry
from seismo.stream.retrain.retrainer import Retrainer

log = logging.getLogger(__name__)

#: Longest time ``--once`` reads the input topic before training.
ONCE_FILL_S = 300.0
#: ``--once`` starts training after the topic was quiet this long.
ONCE_IDLE_S = 2.0


@contextmanager
def open_retrainer(settings: RetrainSettings) -> Iterator[Retrainer]:
    """Connect Redis, the registry and a group-less consumer of the input topic."""
    with ExitStack() as stack:
        client = connect(settings.redis_url.get_secret_value())
        stack.callback(client.close)
        registry = ModelRegistry(
            settings.model_store, client, settings.redis_prefix, cache_dir=settings.model_cache_dir
        )
        errors = BrokerErrors()
        metrics = RetrainerMetrics()
        config = client_config(
            settings.bootstrap_servers,
            {
                "group.id": f"seismo-retrainer-{settings.model_name}",
                "enable.auto.commit": False,
                "enable.partition.eof": False,
            },
            settings.kafka_config,
        )
        config.setdefault("statistics.interval.ms", STATS_INTERVAL_MS)
        consumer = Consumer({**config, "error_cb": errors, "stats_cb": metrics.on_kafka_stats})
        stack.callback(consumer.close)
        check_topics(consumer, {settings.input_topic: "--input-topic"}, errors=errors)
        retrainer = Retrainer(
            settings=settings, registry=registry, client=client, consumer=consumer,
            metrics=metrics,
        )  # fmt: skip
        if settings.metrics_port:
            metrics.serve(settings.metrics_port, settings.metrics_host)
        retrainer.assign()
        yield retrainer


def run_retrain(
    settings: RetrainSettings, stop: threading.Event, *, once: bool, echo: Callable[[str], None]
) -> None:
    """Run the sidecar until ``stop``; with ``once``, one round whose summary goes to ``echo``."""
    log.info("starting retrainer of model %s", settings.model_name)
    with open_retrainer(settings) as retrainer:
        log.info("retrainer started with settings %s", settings.redacted())
        if not once:
            retrainer.run(stop)
            log.info("retrainer stopped cleanly")
            return
        if not retrainer.lease.acquire():
            raise ServiceError(
                f"another retrainer of {settings.model_name} is active (lease held); "
                "try again when it stops"
            )
        try:
            retrainer.fill(max_s=ONCE_FILL_S, idle_s=ONCE_IDLE_S)
            result = retrainer.attempt("once")
        finally:
            retrainer.lease.release()
        echo(json.dumps(result.summary(), sort_keys=True, allow_nan=False))
