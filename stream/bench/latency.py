"""Event-to-alert latency of the scorer at a given, steady input rate (``seismo bench``).

A paced producer in its own process (so that it does not compete with the
scorer for the interpreter lock) publishes events stamped with their send time
(``ts``, epoch ms) at ``rate`` events/s; 1 % of them are far off normal, so
each of those becomes an alert. The scorer runs in this process with its own
settings (``linger_ms`` included); a watcher reads the alerts topic and takes
``detected_at - ts`` of every alert. Percentiles are over those alerts.

:func:`run_delivery` measures the same paced stream read by a bare consumer,
so each level also shows how much of the latency the broker, the producer and
the machine account for before the scorer sees an event.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from multiprocessing.queues import Queue
from typing import Any

import numpy as np
import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from seismo.stream.config.settings import ScorerSettings
from seismo.stream.io.kafka import RDKAFKA_LOG
from seismo.stream.io.metrics import ScorerMetrics
from seismo.stream.io.topic_watch import TopicWatcher

ANOMALY_SHARE = 0.01
"""Share of the paced events shifted far off normal (each becomes an alert)."""


@dataclass(frozen=True)
class LatencyResult:
    """Latency percentiles (ms) at an offered and an achieved input rate."""

    offered_rate: float
    achieved_rate: float
    alerts: int
    p50_ms: float | None
    p99_ms: float | None


def percentiles(latencies_ms: list[float]) -> tuple[float | None, float | None]:
    """p50 and p99 of ``latencies_ms`` (``None`` when empty).

    >>> percentiles([10.0, 20.0, 30.0]), percentiles([])
    ((20.0, 29.8), (None, None))
    """
    if not latencies_ms:
        return None, None
    values = np.asarray(latencies_ms, dtype=np.float64)
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


def paced_publish(
    bootstrap: str, topic: str, rows: np.ndarray, rate: float,
    extra: Mapping[str, Any] | None = None,
) -> tuple[int, float]:  # fmt: skip
    """Publish ``rows`` at ``rate`` events/s, stamped at send time; (sent, seconds)."""
    producer = Producer({"logger": RDKAFKA_LOG, **(extra or {}), "bootstrap.servers": bootstrap,
                         "linger.ms": 1, "queue.buffering.max.messages": 1_000_000})  # fmt: skip
    step = 200  # events per pacing slice
    started = time.perf_counter()
    sent = 0
    for start in range(0, len(rows), step):
        due = started + start / rate
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        now_ms = time.time_ns() // 1_000_000
        for i, row in enumerate(rows[start : start + step].tolist(), start):
            key = f"dev-{i % 100}".encode()
            event = {"device_id": key.decode(), "values": row, "ts": now_ms, "id": str(i)}
            producer.produce(topic, orjson.dumps(event), key)
        producer.poll(0)
        sent = min(start + step, len(rows))
    producer.flush(60)
    return sent, time.perf_counter() - started


def _publisher_main(
    bootstrap: str, topic: str, rows: np.ndarray, rate: float, results: Queue[tuple[int, float]],
    extra: dict[str, Any],
) -> None:  # fmt: skip
    results.put(paced_publish(bootstrap, topic, rows, rate, extra))


def publish_in_a_process(
    bootstrap: str, topic: str, rows: np.ndarray, rate: float, timeout_s: float = 600.0,
    extra: Mapping[str, Any] | None = None,
) -> tuple[int, float]:  # fmt: skip
    """:func:`paced_publish` in a spawned process; its (sent, seconds)."""
    context = multiprocessing.get_context("spawn")
    results: Queue[tuple[int, float]] = context.Queue()
    args = (bootstrap, topic, rows, rate, results, dict(extra or {}))
    process = context.Process(target=_publisher_main, args=args, name="bench-producer",
                              daemon=True)  # fmt: skip
    process.start()
    try:
        return results.get(timeout=timeout_s)
    finally:
        process.join(10)
        if process.is_alive():
            process.kill()


def run_latency(
    settings: ScorerSettings, rows: np.ndarray, rate: float, partitions: int
) -> LatencyResult:
    """The scorer of ``settings`` fed ``rows`` at ``rate``; alert latency percentiles."""
    from seismo.stream.scoring.service import open_scorer

    latencies: list[float] = []

    def on_alert(record: dict[str, object]) -> None:
        latencies.append(float(record["detected_at"]) - float(record["ts"]))  # type: ignore[arg-type]

    stop = threading.Event()
    watcher = TopicWatcher(settings.bootstrap_servers, {settings.alerts_topic: 1},
                           {settings.alerts_topic: on_alert}, threading.Lock(),
                           settings.kafka_config)  # fmt: skip
    from seismo.stream.scoring.service import tune_gc

    with open_scorer(settings, ScorerMetrics()) as scorer:
        tune_gc()  # as run_scorer does
        thread = threading.Thread(target=scorer.run, args=(stop,), name="bench-latency")
        thread.start()
        watcher.start()
        try:
            wait_assigned(scorer.consumer, partitions)
            sent, seconds = publish_in_a_process(settings.bootstrap_servers,
                                                 settings.input_topic, rows, rate,
                                                 extra=settings.kafka_config)  # fmt: skip
            _wait_for_count(latencies, int(round(sent * ANOMALY_SHARE * 0.9)))
            time.sleep(0.5)
        finally:
            stop.set()
            thread.join()
            watcher.stop()
    return _result(rate, sent, seconds, latencies)


def run_delivery(
    bootstrap: str, topic: str, rows: np.ndarray, rate: float, partitions: int,
    extra: Mapping[str, Any] | None = None, producer_extra: Mapping[str, Any] | None = None,
) -> LatencyResult:  # fmt: skip
    """The broker's own share: a bare consumer's ``now - timestamp`` for every paced event.

    The same paced producer as :func:`run_latency`, read by a consumer that
    decodes nothing (it reads each message's Kafka timestamp, set by the
    producer at send time): what any consumer of this broker waits, at this
    rate, on this machine, before it can do anything with an event.
    """
    consumer = Consumer({
        "logger": RDKAFKA_LOG, **(extra or {}), "bootstrap.servers": bootstrap,
        "group.id": f"seismo-bench-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False,
    })  # fmt: skip
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    latencies: list[float] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            messages = consumer.consume(num_messages=4096, timeout=0.02)
            now_ms = time.time_ns() // 1_000_000
            # The Kafka timestamp: the producer's clock at produce(), as ``ts`` is.
            latencies.extend(now_ms - m.timestamp()[1] for m in messages if m.error() is None)

    thread = threading.Thread(target=read, name="bench-delivery")
    thread.start()
    try:
        sent, seconds = publish_in_a_process(bootstrap, topic, rows, rate, extra=producer_extra)
        _wait_for_count(latencies, sent)
    finally:
        stop.set()
        thread.join()
        consumer.close()
    return _result(rate, sent, seconds, latencies)


def _wait_for_count(latencies: list[float], expected: int, timeout_s: float = 30.0) -> None:
    """Until ``expected`` latencies were recorded (by another thread), or ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while len(latencies) < expected and time.monotonic() < deadline:
        time.sleep(0.1)


def _result(rate: float, sent: int, seconds: float, latencies: list[float]) -> LatencyResult:
    p50, p99 = percentiles(latencies)
    return LatencyResult(rate, sent / seconds if seconds > 0 else 0.0, len(latencies), p50, p99)


def wait_assigned(consumer: object, partitions: int, timeout_s: float = 60.0) -> None:
    """Until ``consumer`` owns at least ``partitions`` partitions."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if len(consumer.assignment()) >= partitions:  # type: ignore[attr-defined]
            return
        time.sleep(0.1)
    raise TimeoutError(f"the scorer had no partitions after {timeout_s:g} s")


def latency_rows(n: int, d: int, seed: int) -> np.ndarray:
    """``n`` rows like the throughput topic's, ``ANOMALY_SHARE`` of them shifted far off.

    >>> x = latency_rows(2000, 4, seed=0)
    >>> x.shape, int((np.abs(x) > 25).any(axis=1).sum()) in range(8, 40)
    ((2000, 4), True)
    """
    from seismo.stream.sim.factors import factor_rows

    x = factor_rows(n, d, seed)
    rng = np.random.default_rng(seed + 99)
    odd = rng.random(n) < ANOMALY_SHARE
    x[odd, 0] += 40.0
    return x.astype(float).round(5)
