"""A series through the real thing: Kafka, Redis, the model registry and the scorer.

:class:`ThroughScorer` is a :class:`~seismo.stream.bench.series_detector.Backend` for
:func:`~seismo.stream.bench.series_detector.detect`: instead of judging windows in-process
it publishes each model version to a registry, produces the series' readings
as events to a Kafka topic, lets a real scorer (``open_scorer`` + ``run``, as
``seismo score --threshold-scope device --window P --window-step S`` runs it)
consume, score, judge and publish them, and reads the verdicts back from the
scores topic. Nothing of the scorer is simulated:

1. the first version is published to a registry of its own, and the device's
   state at the end of probation (window statistics from the calibration,
   the level check warmed with the probation readings) is written to Redis
   where the scorer reads device states;
2. the probation readings are produced and the group's offset committed after
   them, so the scorer rebuilds the first windows from the partition's tail
   and judges from the first reading after probation, as a scorer that takes
   over a partition does;
3. for every chunk, a new version is published first (the scorer hot-swaps it
   between two batches; the chunk waits until it serves it), then the chunk's
   readings are produced, and their score records are awaited.

The retraining between chunks is the benchmark's (the driver trains on the
rows the scorer's window check left unflagged); the retraining sidecar is
not involved.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from seismo.models.artifact import Artifact
from seismo.stream.bench.series_detector import SeriesPlan, SeriesRules, Verdicts
from seismo.stream.config.loader import load_settings
from seismo.stream.config.settings import ScorerSettings
from seismo.stream.errors import ServiceError
from seismo.stream.io.kafka import split_errors
from seismo.stream.io.metrics import ScorerMetrics
from seismo.stream.io.redis_stats import connect
from seismo.stream.local.embedded import create_topics
from seismo.stream.registry.model_registry import ModelRegistry
from seismo.stream.scoring.codec import encode_event
from seismo.stream.scoring.devices.rule import DeviceState
from seismo.stream.scoring.devices.states import DeviceStates
from seismo.stream.scoring.scorer import Scorer
from seismo.stream.scoring.service import open_scorer

log = logging.getLogger(__name__)

#: The series' device id (its message key).
DEVICE = "series"
#: Longest wait for the scorer to serve a new version, or to score a chunk.
WAIT_S = 300.0


class _ConsumerPropertyNotice(logging.Filter):
    """Drop librdkafka's notice that the producers ignore ``session.timeout.ms``: the
    replay gives every client of its scorer that consumer setting (Tansu makes a
    group's first join take half of it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "is a consumer property and will be ignored" not in record.getMessage()


@dataclass(frozen=True)
class Services:
    """Where the replay runs: a Kafka bootstrap and a Redis URL."""

    bootstrap: str
    redis_url: str


class ThroughScorer:
    """Judge a series' chunks with a real scorer (see the module docstring).

    Parameters
    ----------
    services : Services
    x : numpy.ndarray
        ``(n,)`` the series' readings.
    stamps_ms : numpy.ndarray
        ``(n,)`` their epoch milliseconds.
    rules : SeriesRules
        The driver's rules (the scorer's settings).
    workdir : Path
        Where the model registry's versions are stored.
    """

    def __init__(
        self, services: Services, x: np.ndarray, stamps_ms: np.ndarray, rules: SeriesRules,
        workdir: Path,
    ) -> None:  # fmt: skip
        self.services, self.x, self.stamps_ms, self.rules = services, x, stamps_ms, rules
        tag = uuid.uuid4().hex[:10]
        self.prefix = f"nab-{tag}"
        self.topics = {k: f"nab-{tag}-{k}" for k in ("events", "alerts", "scores", "dlq")}
        self.group = f"nab-{tag}"
        self.store = workdir / self.prefix
        self._stack = ExitStack()
        notice, rdkafka = _ConsumerPropertyNotice(), logging.getLogger("seismo.librdkafka")
        rdkafka.addFilter(notice)
        self._stack.callback(rdkafka.removeFilter, notice)
        self._stop = threading.Event()
        self._failure: list[BaseException] = []
        self._thread: threading.Thread | None = None
        self.scorer: Scorer | None = None
        self._verdicts: dict[int, dict[str, Any]] = {}
        self._client = connect(services.redis_url)
        self._stack.callback(self._client.close)
        self.registry = ModelRegistry(self.store, self._client, self.prefix)
        self._producer = Producer({"bootstrap.servers": services.bootstrap,
                                   "enable.idempotence": True, "linger.ms": 20})  # fmt: skip
        self._scores = Consumer({"bootstrap.servers": services.bootstrap,
                                 "group.id": f"{self.group}-reader", "enable.auto.commit": False})
        self._stack.callback(self._scores.close)

    def __enter__(self) -> ThroughScorer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def begin(self, plan: SeriesPlan, artifact: Artifact, state: DeviceState) -> None:
        create_topics(self.services.bootstrap, {t: 1 for t in self.topics.values()})
        self.registry.publish(artifact, keep=None)
        states = DeviceStates(self._client, self.prefix, artifact.name, self.topics["events"],
                              self.group)
        states.put(DEVICE, state)
        if not states.save():
            raise ServiceError("could not write the device's state to Redis")
        self._produce(0, plan.probation)
        self._commit_group(plan.probation)
        self._scores.assign([TopicPartition(self.topics["scores"], 0, 0)])
        settings = self._settings(plan)
        self.scorer = self._stack.enter_context(open_scorer(settings, ScorerMetrics()))
        self._thread = threading.Thread(target=self._run, name="nab-scorer", daemon=True)
        self._thread.start()

    def judge(self, artifact: Artifact, start: int, stop: int) -> Verdicts:
        assert self.scorer is not None, "begin() first"
        if artifact.version != self.scorer.artifact.version:
            self.registry.publish(artifact, keep=None)
            self._wait(lambda: self.scorer is not None
                       and self.scorer.artifact.version == artifact.version,
                       f"the scorer to serve {artifact.version}")  # fmt: skip
        self._produce(start, stop)
        self._wait(lambda: self._read_scores(start, stop),
                   f"the scores of rows {start}..{stop - 1}")  # fmt: skip
        rows = [self._verdicts[i] for i in range(start, stop)]
        return Verdicts(np.array([r["zscore"] for r in rows]),
                        np.array([r["level_z"] for r in rows]),
                        np.array(["window" in r["checks"] for r in rows]),
                        np.array(["level" in r["checks"] for r in rows]))  # fmt: skip

    def close(self) -> None:
        """Stop the scorer, close every client, remove the topics and Redis keys."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        self._producer.flush(10)
        try:
            for key in self._client.scan_iter(match=f"{self.prefix}:*", count=1000):
                self._client.delete(key)
        except Exception as exc:  # noqa: BLE001 (tidying up must not hide the result)
            log.warning("could not remove the replay's Redis keys: %s", exc)
        self._stack.close()
        admin = AdminClient({"bootstrap.servers": self.services.bootstrap})
        deleting = admin.delete_topics(list(self.topics.values()), operation_timeout=10)
        for future in deleting.values():
            try:
                future.result(10)
            except Exception as exc:  # noqa: BLE001
                log.warning("could not delete a replay topic: %s", exc)

    def _settings(self, plan: SeriesPlan) -> ScorerSettings:
        r = self.rules
        return load_settings({
            "model_store": str(self.store), "model_name": "seismo", "model_poll_s": 0.5,
            "bootstrap_servers": self.services.bootstrap, "redis_url": self.services.redis_url,
            "redis_prefix": self.prefix, "input_topic": self.topics["events"],
            "alerts_topic": self.topics["alerts"], "scores_topic": self.topics["scores"],
            "dlq_topic": self.topics["dlq"], "group_id": self.group, "device": "cpu",
            "window": r.points, "window_step": plan.stride, "window_tail": plan.span,
            "threshold_scope": "device", "k": r.k, "smooth": r.smooth,
            "device_history": r.history, "level_history": r.level_history if r.level else 0,
            "level_warmup": r.level_warmup, "level_mode": r.level_mode,
            "level_smooth": r.level_smooth, "level_k": r.level_k,
            "level_tolerance": r.level_tolerance, "learn_anomalies": r.learn_anomalies,
            "level_clip": r.level_clip,
            "drift_m": 0, "metrics_port": 0, "linger_ms": 20,
            "max_batch": 2048, "kafka_config": {"session.timeout.ms": "6000"},
            "log_level": "WARNING",
        }, env={})  # fmt: skip

    def _run(self) -> None:
        assert self.scorer is not None
        try:
            self.scorer.run(self._stop)
        except BaseException as exc:  # reported by the next wait
            self._failure.append(exc)

    def _produce(self, start: int, stop: int) -> None:
        for i in range(start, stop):
            value = encode_event(DEVICE, [float(self.x[i])], ts=int(self.stamps_ms[i]),
                                 event_id=str(i))  # fmt: skip
            while True:
                try:
                    self._producer.produce(self.topics["events"], value, DEVICE.encode())
                    break
                except BufferError:
                    self._producer.poll(0.1)
        if self._producer.flush(60):
            raise ServiceError("the broker did not confirm the series' readings")

    def _commit_group(self, offset: int) -> None:
        """Commit the group's offset without joining it: the scorer starts there."""
        committer = Consumer({"bootstrap.servers": self.services.bootstrap,
                              "group.id": self.group, "enable.auto.commit": False})  # fmt: skip
        try:
            committer.commit(offsets=[TopicPartition(self.topics["events"], 0, offset)],
                             asynchronous=False)  # fmt: skip
        finally:
            committer.close()

    def _read_scores(self, start: int, stop: int) -> bool:
        for m in split_errors(self._scores.consume(1000, 0.2))[0]:
            if m.value():
                record = orjson.loads(m.value() or b"{}")
                self._verdicts[int(record["event_id"])] = record
        return all(i in self._verdicts for i in range(start, stop))

    def _wait(self, done: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + WAIT_S
        while not done():
            if self._failure:
                raise ServiceError(f"the scorer stopped: {self._failure[0]}") from self._failure[0]
            if time.monotonic() > deadline:
                raise ServiceError(f"timed out waiting for {what}")
            time.sleep(0.05)
