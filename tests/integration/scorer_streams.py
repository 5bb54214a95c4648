"""The scorer's integration tests' streams: generated rows, a test's topics, group and
Redis prefix with the settings over them, and helpers to run and feed a scorer."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from confluent_kafka import Consumer, Message, Producer, TopicPartition

from seismo.stream.config.loader import load_settings
from seismo.stream.config.settings import ScorerSettings
from seismo.stream.scoring.codec import encode_event
from seismo.stream.scoring.f32_codec import f32_headers
from seismo.stream.scoring.scorer import BatchResult, Scorer
from tests.kafka_tools import Record, create_topics, read_topic

FEATURES = ["temp", "pressure", "flow", "vibration"]
_BASIS = np.random.default_rng(1234).normal(size=(2, len(FEATURES)))
#: Longest wait for ``run()`` to return once its stop event is set.
STOP_BOUND_S = 10.0

Headers = list[tuple[str, bytes | None]]
Outgoing = tuple[bytes | None, bytes | None, Headers]
F32 = f32_headers()


def normal_rows(n: int, seed: int) -> np.ndarray:
    """Rows near a 2-dimensional subspace of R^4: the model's idea of normal."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 2)) @ _BASIS + 0.1 * rng.normal(size=(n, len(FEATURES)))


def anomalous_rows(n: int, seed: int) -> np.ndarray:
    """Normal rows pushed 50 standard deviations off, in alternating directions."""
    std = normal_rows(1000, seed=0).std(axis=0)
    return normal_rows(n, seed) + 50 * std * np.array([1, -1, 1, -1])


def events(rows: np.ndarray, tag: str) -> list[Outgoing]:
    """One event per row, keyed by device, with ids ``{tag}-{i}``."""
    return [
        (f"dev-{i % 10}".encode(), encode_event(f"dev-{i % 10}", row, event_id=f"{tag}-{i}"), [])
        for i, row in enumerate(rows)
    ]


@dataclass(frozen=True)
class Streams:
    """One test's topics, consumer group and Redis prefix, and the settings over them."""

    bootstrap: str
    redis_url: str
    topic: str
    group_id: str
    redis_prefix: str
    model: Path

    @property
    def alerts(self) -> str:
        return f"{self.topic}.alerts"

    @property
    def scores(self) -> str:
        return f"{self.topic}.scores"

    @property
    def dlq(self) -> str:
        return f"{self.topic}.dlq"

    def create(self, partitions: int = 1) -> None:
        create_topics(
            self.bootstrap,
            {self.topic: partitions, self.alerts: partitions, self.scores: partitions, self.dlq: 1},
        )

    def settings(self, **overrides: object) -> ScorerSettings:
        given = dict(
            model=self.model, device="cpu", bootstrap_servers=self.bootstrap,
            input_topic=self.topic, alerts_topic=self.alerts, scores_topic=self.scores,
            dlq_topic=self.dlq, group_id=self.group_id, redis_url=self.redis_url,
            redis_prefix=self.redis_prefix, metrics_port=0,
            kafka_config={"session.timeout.ms": "6000"},
        )
        return load_settings({**given, **overrides}, env={})

    def produce(self, messages: list[Outgoing], **config: object) -> list[tuple[int, int]]:
        """Produce (key, value, headers) in order; return each one's (partition, offset).

        librdkafka keys contain dots: pass ``config`` as ``**{"message.max.bytes": n}``.
        """
        producer = Producer({"bootstrap.servers": self.bootstrap, "enable.idempotence": True,
                             **config})  # fmt: skip
        where: dict[int, tuple[int, int]] = {}

        def delivered(i: int):
            def on_delivery(err, msg: Message) -> None:
                assert err is None, err
                where[i] = (msg.partition(), msg.offset())

            return on_delivery

        for i, (key, value, headers) in enumerate(messages):
            producer.produce(self.topic, value, key, headers=headers, on_delivery=delivered(i))
        assert producer.flush(30) == 0
        return [where[i] for i in range(len(messages))]

    def rewind(self, partitions: int = 1, group_id: str | None = None) -> None:
        """Commit offset 0 for every partition of the input topic: the group reads it all
        again (as after a crash between the Redis write and the commit)."""
        consumer = Consumer({"bootstrap.servers": self.bootstrap,
                             "group.id": group_id or self.group_id})  # fmt: skip
        try:
            consumer.commit(offsets=[TopicPartition(self.topic, p, 0) for p in range(partitions)],
                            asynchronous=False)  # fmt: skip
        finally:
            consumer.close()

    def read(self, topic: str, count: int) -> list[Record]:
        """All records of ``topic``, which must be ``count`` (half a second idle checks)."""
        records = read_topic(
            self.bootstrap, topic, until=lambda r: len(r) >= count, timeout_s=30, idle_s=0.5
        )
        assert len(records) == count, f"{topic}: {len(records)} records, expected {count}"
        return records


@contextmanager
def running(scorer: Scorer) -> Iterator[list[BatchResult]]:
    """Run the scorer in a thread, recording what each ``process()`` call did.

    On leaving, stop it and wait (bounded) for ``run()`` to return.
    """
    results: list[BatchResult] = []
    failures: list[BaseException] = []
    process, stop = scorer.process, threading.Event()

    def record(raw):
        results.append(process(raw))
        return results[-1]

    def target() -> None:
        try:
            scorer.run(stop)
        except BaseException as exc:
            failures.append(exc)

    scorer.process = record  # type: ignore[method-assign]
    thread = threading.Thread(target=target, name="scorer", daemon=True)
    thread.start()
    try:
        yield results
    finally:
        stop.set()
        thread.join(STOP_BOUND_S)
        if failures:
            raise failures[0]
    assert not thread.is_alive(), f"run() still running {STOP_BOUND_S} s after stop was set"


def consume(scorer: Scorer, count: int, timeout_s: float = 30.0) -> list[Message]:
    """Exactly the next ``count`` messages from the scorer's own consumer."""
    messages: list[Message] = []
    deadline = time.monotonic() + timeout_s
    while len(messages) < count and time.monotonic() < deadline:
        batch = scorer.consumer.consume(num_messages=count - len(messages), timeout=0.5)
        messages += [m for m in batch if m.error() is None]
    assert len(messages) == count, f"consumed {len(messages)} of {count} messages"
    return messages


