"""The contenders of ``seismo bench``, each reading the same prepared topic.

- :func:`run_raw`: a plain confluent-kafka consumer in a process of its own
  (:mod:`~seismo.stream.bench.raw_consumer`: library defaults, ``subscribe``,
  ``consume(10000, 1.0)``, discard): the ceiling.
- :func:`run_seismo`: the full scorer (:class:`~seismo.stream.scoring.scorer.Scorer`: decode,
  validate, score, threshold in Redis, produce alerts, commit) from a fresh
  consumer group until every event is scored and committed.
- :func:`run_per_message`: the tutorials' way, one message at a time: decode
  it, score it with its own forward pass.
- :func:`run_river`: River's ``HalfSpaceTrees``, score and learn per event.

Every consumer gets the same pass-through settings (``--kafka-config``).
The in-process consumers below also get the scorer's fetch wait; the raw one
runs on librdkafka's defaults. Each
returns a :class:`RunResult`: the events handled after the first batch
(or message) and the seconds from the end of that first batch to the last
event, so start-up, group join and model loading count for no contender.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from seismo.models.artifact import Artifact
from seismo.stream.config.settings import ScorerSettings
from seismo.stream.io.kafka import RDKAFKA_LOG
from seismo.stream.io.metrics import ScorerMetrics

POLL_S = 0.01


@dataclass(frozen=True)
class RunResult:
    """What one contender did: ``events`` in ``seconds`` (first to last event)."""

    name: str
    events: int
    seconds: float

    @property
    def per_second(self) -> float:
        """Events per second (0 for an empty run).

        >>> RunResult("raw", 1000, 0.5).per_second
        2000.0
        """
        return self.events / self.seconds if self.seconds > 0 else 0.0


def _assigned_consumer(
    bootstrap: str, topic: str, partitions: int, extra: Mapping[str, Any] | None = None
) -> Consumer:
    consumer = Consumer(
        {
            "logger": RDKAFKA_LOG,
            **(extra or {}),
            "bootstrap.servers": bootstrap,
            "group.id": f"seismo-bench-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
        }
    )
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    return consumer


def run_raw(
    bootstrap: str, topic: str, total: int, timeout_s: float = 300.0,
    extra: Mapping[str, Any] | None = None,
) -> RunResult:  # fmt: skip
    """The ceiling: :mod:`~seismo.stream.bench.raw_consumer` in a process of its own.

    ``extra`` (``--kafka-config``: SASL, TLS) is passed through; nothing else
    is set, so the consumer runs on librdkafka's defaults.
    """
    pairs = [f"{k}={v}" for k, v in (extra or {}).items()]
    command = [sys.executable, "-m", "seismo.stream.bench.raw_consumer", bootstrap, topic,
               str(total), *pairs]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s + 60,
                          check=False)  # fmt: skip  # noqa: S603 (our own module)
    if done.returncode != 0:
        raise RuntimeError(f"the raw consumer failed ({done.returncode}): {done.stderr[-500:]}")
    result = orjson.loads(done.stdout.strip().splitlines()[-1])
    return RunResult("raw", int(result["events"]), float(result["seconds"]))


def _per_event(
    name: str, handle: Callable[[bytes], object], bootstrap: str, topic: str, partitions: int,
    limit: int, timeout_s: float, extra: Mapping[str, Any] | None,
) -> RunResult:  # fmt: skip
    """Poll one message at a time and ``handle`` its value, ``limit`` times."""
    consumer = _assigned_consumer(bootstrap, topic, partitions, extra)
    seen, first, last = 0, 0.0, 0.0
    deadline = time.monotonic() + timeout_s
    try:
        while seen < limit and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error() is not None:
                continue
            handle(msg.value() or b"")
            seen += 1
            last = time.perf_counter()
            if seen == 1:
                first = last
    finally:
        consumer.close()
    return RunResult(name, seen - 1, last - first)


def run_per_message(
    bootstrap: str, topic: str, partitions: int, artifact: Artifact, limit: int,
    timeout_s: float = 300.0, extra: Mapping[str, Any] | None = None,
) -> RunResult:  # fmt: skip
    """Decode and score each message on its own (one ``poll``, one forward pass)."""
    detector = artifact.detector

    def score_one(value: bytes) -> None:
        row = np.asarray(orjson.loads(value)["values"], dtype=np.float32)[None, :]
        detector.score_batch(row)

    return _per_event("per-message", score_one, bootstrap, topic, partitions, limit,
                      timeout_s, extra)  # fmt: skip


def run_river(
    bootstrap: str, topic: str, partitions: int, limit: int, timeout_s: float = 300.0,
    extra: Mapping[str, Any] | None = None,
) -> RunResult:  # fmt: skip
    """River's HalfSpaceTrees on the same events: ``score_one`` then ``learn_one``."""
    from river import anomaly, preprocessing

    model = preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(seed=0)

    def learn_one(value: bytes) -> None:
        x = dict(enumerate(orjson.loads(value)["values"]))
        model.score_one(x)
        model.learn_one(x)

    return _per_event("river-hst", learn_one, bootstrap, topic, partitions, limit,
                      timeout_s, extra)  # fmt: skip


def run_seismo(settings: ScorerSettings, total: int, timeout_s: float = 300.0) -> RunResult:
    """The full scorer in this process, from a fresh group until ``total`` events are done.

    The clock starts when the first batch has been processed (after the group
    join) and stops when the batch holding the last event is: scored (or
    dead-lettered), published, merged into Redis and committed.
    """
    from seismo.stream.scoring.service import open_scorer, tune_gc

    stop = threading.Event()
    with open_scorer(settings, ScorerMetrics()) as scorer:
        tune_gc()  # as run_scorer does
        marks = _BatchMarks(scorer.process, total, stop)
        scorer.process = marks  # type: ignore[method-assign]
        thread = threading.Thread(target=scorer.run, args=(stop,), name="bench-scorer")
        thread.start()
        try:
            if not stop.wait(timeout_s):
                raise TimeoutError(f"the scorer did not finish {total} events in {timeout_s:g} s")
        finally:
            stop.set()
            thread.join()
    return RunResult("seismo", marks.done - marks.first_batch, marks.last - marks.first)


class _BatchMarks:
    """Wraps :meth:`Scorer.process`: when each batch ended, and how many events it held."""

    def __init__(self, process: Callable[[Any], Any], total: int, finished: threading.Event):
        self._process, self._total, self._finished = process, total, finished
        self.done, self.first_batch, self.first, self.last = 0, 0, 0.0, 0.0

    def __call__(self, raw: Any) -> Any:
        result = self._process(raw)
        self.done += result.consumed
        self.last = time.perf_counter()
        if not self.first_batch:
            self.first_batch, self.first = self.done, self.last
        if self.done >= self._total:
            self._finished.set()
        return result
