"""Small helpers the integration and pipe tests share: read topics, produce, offsets."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from seismo.stream.local.embedded import create_topics

__all__ = ["Record", "committed", "create_topics", "partitions", "produce_values", "read_topic"]


@dataclass(frozen=True)
class Record:
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]
    partition: int
    offset: int
    #: the headers as the broker returned them, in order, names repeated (``headers``
    #: keeps the last value of each name)
    header_list: list[tuple[str, bytes]] = field(default_factory=list)

    def json(self) -> dict:
        return orjson.loads(self.value)


def partitions(bootstrap: str, topic: str) -> list[int]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    return sorted(admin.list_topics(topic, timeout=10).topics[topic].partitions)


def read_topic(
    bootstrap: str,
    topic: str,
    *,
    until: Callable[[list[Record]], bool],
    timeout_s: float = 60.0,
    idle_s: float = 0.0,
) -> list[Record]:
    """Read a topic from the beginning (no group) until ``until(records)`` or timeout.

    With ``idle_s`` it keeps reading until nothing new arrived for that long
    after ``until`` held (to catch unexpected extra records).
    """
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False}
    )
    consumer.assign(
        [TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions(bootstrap, topic)]
    )
    records: list[Record] = []
    deadline = time.monotonic() + timeout_s
    last_new = time.monotonic()
    try:
        while time.monotonic() < deadline:
            batch = consumer.consume(1000, 0.2)
            for m in batch:
                if m.error():
                    continue
                records.append(
                    Record(m.key(), m.value(), dict(m.headers() or []), m.partition(), m.offset(),
                           list(m.headers() or []))
                )
                last_new = time.monotonic()
            if until(records) and time.monotonic() - last_new >= idle_s:
                break
    finally:
        consumer.close()
    return records


def produce_values(
    bootstrap: str, topic: str, messages: list[tuple[bytes | None, bytes | None]]
) -> dict[int, int]:
    """Produce (key, value) pairs; return the end offset (last + 1) of each partition written."""
    producer = Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5}
    )
    ends: dict[int, int] = {}
    failures: list[str] = []

    def on_delivery(err, msg) -> None:
        if err is not None:
            failures.append(str(err))
        else:
            ends[msg.partition()] = max(ends.get(msg.partition(), 0), msg.offset() + 1)

    for key, value in messages:
        while True:
            try:
                producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    assert producer.flush(30) == 0, "producer did not flush"
    assert not failures, failures[:3]
    return ends


def committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """The group's committed offset per partition (-1001 = none)."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
    )
    try:
        tps = consumer.committed(
            [TopicPartition(topic, p) for p in partitions(bootstrap, topic)], timeout=10
        )
    finally:
        consumer.close()
    return {tp.partition: tp.offset for tp in tps}
