"""Start-up and shutdown of a scorer process: open every client, check, close.

Every start-up failure (broker or Redis unreachable, topic or model missing,
model unusable or of another dimension than the newest input events) raises a
:class:`~seismo.stream.errors.SeismoError` with one clear line, which the CLI prints
without a traceback.
"""

from __future__ import annotations

import gc
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import redis
from confluent_kafka import Consumer, Message, TopicPartition

from seismo.models.artifact import Artifact, load_artifact
from seismo.models.errors import ArtifactError
from seismo.stream.config.settings import ScorerSettings
from seismo.stream.errors import RegistryError
from seismo.stream.io.kafka import (
    CONSUMER_DEFAULTS,
    PINNED_CONSUMER,
    PRODUCER_DEFAULTS,
    STATS_INTERVAL_MS,
    BrokerErrors,
    ConfirmingProducer,
    check_topics,
    client_config,
    fetch_wait_ms,
    split_errors,
)
from seismo.stream.io.log_throttle import Throttle
from seismo.stream.io.metrics import ScorerMetrics
from seismo.stream.io.preflight import (
    DEEP_PER_PARTITION,
    dimension_mismatch,
    group_has_committed,
    latest_values,
)
from seismo.stream.io.redis_stats import RedisStats, SharedStats, connect, stats_key
from seismo.stream.registry.model_registry import ModelRegistry
from seismo.stream.registry.model_watch import ModelWatcher
from seismo.stream.retrain.requests import request_retrain
from seismo.stream.scoring.devices.states import DeviceStates
from seismo.stream.scoring.scorer import DriftCallback, Scorer, StatsFactory, TailReader
from seismo.stream.scoring.window_buffer import (
    reading_channels,
    window_doubt,
    window_mismatch,
)

log = logging.getLogger(__name__)

def _log_assignment(verb: str) -> Any:
    def callback(_consumer: Consumer, partitions: list[TopicPartition]) -> None:
        names = ", ".join(f"{p.topic}[{p.partition}]" for p in partitions) or "nothing"
        log.info("partitions %s: %s", verb, names)

    return callback


def check_model_fits(
    settings: ScorerSettings, n_features: int, consumer: Consumer,
    channels: Sequence[str] | None = None,
) -> None:  # fmt: skip
    """Refuse to start when no recent input event fits the model (see
    :mod:`seismo.stream.io.preflight`).

    ``consumer`` is the scorer's, of its group, not subscribed yet. A group that has
    committed on the topic looks further back and starts, with a WARNING, if most
    events there fit; ``--no-width-check`` starts anyway. ``channels`` are the names
    a named event must carry (one reading's, with windows).
    """
    config = client_config(settings.bootstrap_servers, {}, settings.kafka_config)
    mismatch = dimension_mismatch(latest_values(config, settings.input_topic), n_features,
                                  channels)  # fmt: skip
    if not mismatch:
        return
    what = (f"model {settings.model or settings.model_name} does not fit topic "
            f"{settings.input_topic}: {mismatch}")  # fmt: skip
    known = group_has_committed(consumer, settings.input_topic)
    if known:
        deep = latest_values(config, settings.input_topic, per_partition=DEEP_PER_PARTITION)
        if dimension_mismatch(deep, n_features, channels, most=True) is None:
            log.warning("%s in the newest events; most older ones fit it, so the scorer "
                        "starts: the events of another width are dead-lettered with their "
                        "reason", what)  # fmt: skip
            return
    if not settings.width_check:
        log.warning("%s; starting anyway (--no-width-check): every event of another width "
                    "is dead-lettered", what)  # fmt: skip
        return
    group = {None: f" (could not learn whether group {settings.group_id} has scored it)",
             False: "", True: f" (nor most of the last {DEEP_PER_PARTITION} per partition)"}
    raise ArtifactError(f"{what}{group[known]}; if the model is right and these are stray "
                        "events, start with --no-width-check")


def _arch_window(artifact: Artifact) -> int | None:
    """The window a sequence architecture (conv1d, lstm) holds in its config, else ``None``."""
    window = getattr(artifact.detector.config, "window", None)
    return window if isinstance(window, int) else None


def window_unfit(artifact: Artifact, settings: ScorerSettings) -> str | None:
    """Why ``artifact`` cannot be scored under the scorer's ``--window`` and
    ``--window-step`` (:func:`~seismo.stream.scoring.window_buffer.window_mismatch`): at
    start, and for each version a hot swap would bring."""
    return window_mismatch(artifact.feature_names, settings.window, settings.window_step,
                           _arch_window(artifact))  # fmt: skip


#: Longest a window rebuild reads the tail of newly owned partitions.
TAIL_READ_S = 30.0
#: Most message bytes a window rebuild holds (values, keys): the tail is read whole
#: before it is decoded.
TAIL_MAX_BYTES = 256 * 1024 * 1024


def tail_reader(config: dict[str, Any]) -> TailReader:
    """Read the messages just before the group's committed offsets (window rebuilds).

    A separate consumer of the same group that never subscribes: it only
    asks the committed offsets and reads with ``assign``, so the group is
    untouched.

    A partition whose tail is not read to its committed offset within
    :data:`TAIL_READ_S`, or once :data:`TAIL_MAX_BYTES` are held, gives none of
    it, and a WARNING says so: its windows start empty, as with no tail. A tail
    cut short lacks the readings just before the committed offset, and the
    first windows joined older readings to live ones across that gap, silently;
    and a tail of large messages (10 000 of 900 KB per partition) was held whole
    until the memory ran out (red-team findings).
    """

    def read(partitions: list[TopicPartition], n: int) -> list[Message]:
        consumer = Consumer({**config, "enable.auto.commit": False})
        try:
            ends: dict[tuple[str, int], int] = {}
            starts = []
            for tp in consumer.committed(partitions, timeout=10):
                if tp.offset is None or tp.offset <= 0:
                    continue  # nothing scored before: nothing to rebuild from
                low, _high = consumer.get_watermark_offsets(tp, timeout=5)
                start = max(low, tp.offset - n)
                if start < tp.offset:
                    ends[(tp.topic, tp.partition)] = tp.offset
                    starts.append(TopicPartition(tp.topic, tp.partition, start))
            consumer.assign(starts)
            out: list[Message] = []
            held = 0
            deadline = time.monotonic() + TAIL_READ_S
            while ends and time.monotonic() < deadline and held <= TAIL_MAX_BYTES:
                for m in split_errors(consumer.consume(1000, 0.2))[0]:
                    if held > TAIL_MAX_BYTES:
                        break
                    key = (m.topic() or "", m.partition() or 0)
                    end = ends.get(key)
                    if end is None:
                        continue
                    if (m.offset() or 0) < end:
                        out.append(m)
                        held += len(m.value() or b"") + len(m.key() or b"")
                    if (m.offset() or 0) >= end - 1:
                        del ends[key]
                if ends and held <= TAIL_MAX_BYTES:  # every message consumed was looked at:
                    # the offset before a committed one may be a transaction marker, never
                    # delivered, and the position says the partition is read to its end
                    for tp in consumer.position([TopicPartition(t, p) for t, p in ends]):
                        if tp.offset >= ends.get((tp.topic, tp.partition), tp.offset + 1):
                            del ends[(tp.topic, tp.partition)]
            if ends:
                cut = "; ".join(f"{t}:{p}" for t, p in sorted(ends))
                why = (f"{TAIL_MAX_BYTES:,} bytes of messages" if held > TAIL_MAX_BYTES
                       else f"{TAIL_READ_S:g} s")  # fmt: skip
                log.warning("window rebuild: the tails of %s were not read to their committed "
                            "offsets within %s; their device windows start empty",
                            cut, why)  # fmt: skip
                out = [m for m in out if (m.topic() or "", m.partition() or 0) not in ends]
            return out
        finally:
            consumer.close()

    return read


def topic_options(settings: ScorerSettings) -> dict[str, str]:
    """Every topic the scorer reads or writes, with the option that names it."""
    named = {settings.input_topic: "--input-topic", settings.alerts_topic: "--alerts-topic",
             settings.dlq_topic: "--dlq-topic"}  # fmt: skip
    if settings.scores_topic:
        named.setdefault(settings.scores_topic, "--scores-topic")
    return named


def output_topics(settings: ScorerSettings) -> list[str]:
    """Every topic the scorer writes to."""
    topics = [settings.alerts_topic, settings.dlq_topic]
    return topics + ([settings.scores_topic] if settings.scores_topic else [])


def _stats_factory(settings: ScorerSettings, client: redis.Redis) -> StatsFactory:
    def stats_for(artifact: Artifact) -> SharedStats:
        key = stats_key(
            settings.redis_prefix, artifact.name, artifact.version, settings.threshold_space
        )
        return SharedStats(RedisStats(client, key, settings.stats_window), settings.redis_retry_s)

    return stats_for


def _drift_reporter(
    settings: ScorerSettings, client: redis.Redis, metrics: ScorerMetrics
) -> DriftCallback:
    """Ask the retrainer for a retrain, once per cool-down across every scorer."""
    by = f"{socket.gethostname()}:{os.getpid()}"
    throttle = Throttle()  # Redis away: every drifted batch would log it

    def report(artifact: Artifact) -> None:
        try:
            made = request_retrain(
                client, settings.redis_prefix, artifact.name,
                reason=f"drift of {artifact.version}", by=by,
                cooldown_s=settings.drift_cooldown_s, kind="drift", version=artifact.version,
            )  # fmt: skip
        except redis.RedisError as exc:
            held = throttle.admit("request")
            if held is not None:
                log.warning("could not request a retrain after drift: %s%s", exc,
                            throttle.note(held))  # fmt: skip
            return
        if made:
            metrics.drift_requests.inc()
            log.info("requested a retrain of %s (drift)", artifact.name)

    return report


def _serving_model(
    settings: ScorerSettings, client: redis.Redis, stack: ExitStack, metrics: ScorerMetrics
) -> tuple[Artifact, ModelWatcher | None]:
    """The model to serve, and with a registry the watcher that brings new versions."""
    if settings.model is not None:
        return load_artifact(settings.model, device=settings.device), None
    registry = ModelRegistry(
        settings.model_store or ".", client, settings.redis_prefix,
        cache_dir=settings.model_cache_dir,
    )
    version = registry.current(settings.model_name)
    if version is None:
        raise RegistryError(
            f"{settings.model_name} has no current version in {registry.location}; "
            "publish one first (seismo models publish)"
        )
    artifact = registry.verify(settings.model_name, version, device=settings.device)
    watcher = ModelWatcher(
        registry, settings.model_name, serving=version, channels=artifact.feature_names,
        poll_s=settings.model_poll_s, device=settings.device,
        on_refused=lambda _v, _r: metrics.model_swap_failures.inc(),
        on_error=lambda _exc: metrics.model_watch_errors.inc(),
        fits=lambda new: window_unfit(new, settings),
    )  # fmt: skip
    stack.callback(watcher.stop)
    watcher.start()
    metrics.health.watch(watcher.status)
    return artifact, watcher


@contextmanager
def open_scorer(settings: ScorerSettings, metrics: ScorerMetrics | None = None) -> Iterator[Scorer]:
    """Open Redis, the model (a directory or the registry) and Kafka; close them all on exit.

    On exit the consumer leaves its group (``close``) without committing
    anything beyond what the scorer committed.
    """
    metrics = metrics or ScorerMetrics()
    with ExitStack() as stack:
        client = connect(settings.redis_url.get_secret_value(), settings.redis_timeout_s)
        stack.callback(client.close)
        artifact, watcher = _serving_model(settings, client, stack, metrics)
        log.info("model %s version %s (%d features) on %s", artifact.name, artifact.version,
                 artifact.n_features, artifact.detector.device)
        stats_for = _stats_factory(settings, client)
        config = client_config(
            settings.bootstrap_servers,
            {
                **CONSUMER_DEFAULTS,
                "fetch.wait.max.ms": fetch_wait_ms(settings.linger_ms),
                "group.id": settings.group_id,
            },
            settings.kafka_config,
            PINNED_CONSUMER,
        )
        errors = BrokerErrors()
        config.setdefault("statistics.interval.ms", STATS_INTERVAL_MS)
        consumer = Consumer({**config, "error_cb": errors, "stats_cb": metrics.on_kafka_stats})
        stack.callback(consumer.close)
        check_topics(consumer, topic_options(settings), errors=errors)
        model = settings.model or settings.model_name
        wrong_window = window_unfit(artifact, settings)
        if wrong_window is not None:
            raise ArtifactError(f"model {model}: {wrong_window}")
        if artifact.n_features % settings.window:
            raise ArtifactError(f"--window {settings.window} does not divide the model's "
                                f"{artifact.n_features} features (window x channels)")  # fmt: skip
        doubt = window_doubt(artifact.feature_names, settings.window, _arch_window(artifact))
        if doubt is not None:
            log.warning("model %s: %s", model, doubt)
        check_model_fits(settings, artifact.n_features // settings.window, consumer,
                         reading_channels(artifact.feature_names, settings.window))
        producer_config = client_config(
            settings.bootstrap_servers, PRODUCER_DEFAULTS, settings.kafka_config
        )
        producer = ConfirmingProducer(producer_config)
        if settings.metrics_port:
            metrics.serve(settings.metrics_port, settings.metrics_host)
        scorer = Scorer(
            settings=settings,
            artifact=artifact,
            consumer=consumer,
            producer=producer,
            stats=stats_for(artifact),
            metrics=metrics,
            watcher=watcher,
            stats_for=stats_for,
            on_drift=_drift_reporter(settings, client, metrics),
            new_producer=lambda: ConfirmingProducer(producer_config),
            read_tail=tail_reader(config) if settings.window > 1 else None,
            devices=DeviceStates(client, settings.redis_prefix, artifact.name,
                                 settings.input_topic, settings.group_id,
                                 settings.device_state_ttl_s, settings.max_devices)
            if settings.threshold_scope == "device" else None,
        )  # fmt: skip
        stack.callback(scorer.close)  # its producer may have been replaced since
        revoked = _log_assignment("revoked")

        def on_revoke(consumer: Consumer, partitions: list[TopicPartition]) -> None:
            scorer.settle()  # batches consumed ahead are finished while still owned
            revoked(consumer, partitions)

        consumer.subscribe([settings.input_topic], on_assign=_log_assignment("assigned"),
                           on_revoke=on_revoke)  # fmt: skip
        yield scorer


#: Garbage-collector thresholds of a scorer process (Python's default: 700, 10, 10).
GC_THRESHOLDS = (50_000, 50, 1_000)


def tune_gc() -> None:
    """Make the collector cheap for a process that decodes batches of thousands of events.

    Everything alive after start-up (torch, the model, the clients) is moved
    to the permanent generation (``gc.freeze``), so collections never walk it
    again, and a young collection runs after 50 000 allocations instead of
    700, so a batch's short-lived objects rarely trigger one. Reference
    counting still frees everything at once; only reference cycles wait
    longer. Measured in the scorer at 30 000 events/s: decoding took 26 ms per
    batch instead of 53 (docs/benchmarks.md).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def run_scorer(settings: ScorerSettings, stop: threading.Event) -> None:
    """Run a scorer until ``stop`` is set; the batch in flight is finished first.

    The full settings are logged once start-up has passed its checks, so a start-up
    error is not preceded by them (a stranger found the error line after 1 500
    characters of settings).
    """
    model = settings.model or f"{settings.model_name} from its store"
    log.info("starting scorer: model %s, input topic %s, group %s", model,
             settings.input_topic, settings.group_id)  # fmt: skip
    with open_scorer(settings) as scorer:
        log.info("scorer started with settings %s", settings.redacted())
        tune_gc()
        scorer.run(stop)
    if scorer.last_commit_failed:
        log.warning("scorer stopped; the offset commit of its last batch failed: that batch "
                    "will be scored again by the next owner of its partitions (duplicates, "
                    "none lost)")
    else:
        log.info("scorer stopped cleanly")
