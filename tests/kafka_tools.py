"""Small helpers the integration and pipe tests share: read topics, produce, offsets."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from seismo.stream.local.embedded import create_topics

__all__ = ["Record", "committed", "create_topics", "partitions", "produce_raw_header_name",
           "produce_values", "read_topic"]


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


#: Publishes one message whose header name is not UTF-8, which librdkafka refuses to send
#: and other clients send: aiokafka's pure-Python encoder with a name that encodes to
#: raw bytes (a red-team finding, 2026-12-07).
_RAW_HEADER_PRODUCER = textwrap.dedent("""
    import asyncio, os, sys
    os.environ["AIOKAFKA_NO_EXTENSIONS"] = "1"
    from aiokafka import AIOKafkaProducer

    class RawName(str):
        def encode(self, *args, **kwargs):
            return b"\\xff\\xfe"

    async def main():
        producer = AIOKafkaProducer(bootstrap_servers=sys.argv[1], enable_idempotence=False)
        await producer.start()
        try:
            await producer.send_and_wait(sys.argv[2], key=b"dev-0", partition=0,
                value=b'{"device_id":"dev-0","values":[1,2,3,4]}',
                headers=[(RawName("x"), b"v")])
        finally:
            await producer.stop()

    asyncio.run(main())
""")


def produce_raw_header_name(bootstrap: str, topic: str) -> None:
    """Publish ``{"device_id":"dev-0","values":[1,2,3,4]}`` (key ``dev-0``, partition 0)
    with one header whose name is the bytes ``ff fe``, from a subprocess."""
    done = subprocess.run([sys.executable, "-c", _RAW_HEADER_PRODUCER, bootstrap, topic],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
