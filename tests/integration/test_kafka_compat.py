"""Where the Tansu broker behind ``EmbeddedKafka`` differs from Apache Kafka.

Each test pins one behaviour recorded in ``docs/kafka-compat.md``. They run
against their own ``EmbeddedKafka`` whatever ``SEISMO_TEST_KAFKA`` says: when
one fails, Tansu changed, and the document (and the workarounds it explains)
need a look.
"""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewPartitions

from seismo.stream.local.embedded import EmbeddedKafka, create_topics
from tests.services import consumer_config

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def tansu() -> Iterator[str]:
    with EmbeddedKafka() as kafka:
        yield kafka.bootstrap_servers


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def produce(bootstrap: str, topic: str, values: list[bytes], **config: object) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, **config})
    for value in values:
        producer.produce(topic, value=value)
    assert producer.flush(10) == 0


def read_assigned(consumer: Consumer, topic: str, count: int) -> list[bytes]:
    """Read partition 0 from the beginning without a group join; then 0.5 s for extras."""
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    values: list[bytes] = []
    deadline = time.monotonic() + 10
    while len(values) < count and time.monotonic() < deadline:
        values += [m.value() for m in consumer.consume(100, 0.2) if m.error() is None]
    values += [m.value() for m in consumer.consume(100, 0.5) if m.error() is None]
    return values


def seconds_to_first_message(consumer: Consumer, limit: float = 15.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < limit:
        for message in consumer.consume(1, 0.1):
            assert message.error() is None, message.error()
            return time.monotonic() - started
    raise AssertionError(f"no message within {limit} s")


def test_first_group_join_takes_half_the_session_timeout(tansu):
    topic = unique("t")
    create_topics(tansu, {topic: 1})
    produce(tansu, topic, [b"x"])
    waits = {}
    for session_ms in (6000, 10000):
        consumer = Consumer(
            consumer_config(tansu, unique("g"), **{"session.timeout.ms": session_ms})
        )
        consumer.subscribe([topic])
        try:
            waits[session_ms] = seconds_to_first_message(consumer)
        finally:
            consumer.close()
    assert waits[6000] >= 3.0
    assert waits[10000] >= 5.0
    assert 1.5 <= waits[10000] - waits[6000] <= 3.0  # grows with the session timeout


def test_high_watermark_is_last_batch_base_offset_plus_one(tansu):
    topic = unique("t")
    create_topics(tansu, {topic: 1})
    for size in (5, 1, 4):  # batches at offsets 0-4, 5, 6-9
        produce(tansu, topic, [b"%d" % i for i in range(size)], **{"linger.ms": 100})

    consumer = Consumer(
        {"bootstrap.servers": tansu, "group.id": unique("g"), "enable.auto.commit": False}
    )
    try:
        assert len(read_assigned(consumer, topic, 10)) == 10
        committed = consumer.commit(asynchronous=False)
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=5)
    finally:
        consumer.close()
    assert committed is not None and committed[0].offset == 10
    assert (low, high) == (0, 7)  # Apache Kafka: (0, 10)


def test_auto_created_topic_gets_four_partitions(tansu):
    topic = unique("auto")
    produce(tansu, topic, [b"x"])
    metadata = AdminClient({"bootstrap.servers": tansu}).list_topics(topic, timeout=5)
    assert len(metadata.topics[topic].partitions) == 4


def test_create_partitions_is_unsupported(tansu):
    topic = unique("t")
    create_topics(tansu, {topic: 1})
    admin = AdminClient({"bootstrap.servers": tansu})
    future = admin.create_partitions([NewPartitions(topic, 3)])[topic]
    with pytest.raises(KafkaException) as raised:
        future.result(timeout=10)
    assert raised.value.args[0].code() == KafkaError._UNSUPPORTED_FEATURE
    assert len(admin.list_topics(topic, timeout=5).topics[topic].partitions) == 1


def test_consumer_closed_mid_join_leaves_its_group_stuck(tansu):
    topic = unique("t")
    create_topics(tansu, {topic: 1})
    produce(tansu, topic, [b"x"])
    stuck_group = unique("g")
    quitter = Consumer(consumer_config(tansu, stuck_group))
    quitter.subscribe([topic])
    quitter.poll(0.5)  # the join (3 s with a 6 s session timeout) is under way
    quitter.close()

    stuck = Consumer(consumer_config(tansu, stuck_group))
    control = Consumer(consumer_config(tansu, unique("g")))
    received = {"stuck": 0, "control": 0}
    try:
        stuck.subscribe([topic])
        control.subscribe([topic])
        deadline = time.monotonic() + 8.0  # more than twice a normal first join
        while time.monotonic() < deadline:
            received["stuck"] += len(stuck.consume(10, 0.1))
            received["control"] += len(control.consume(10, 0.1))
    finally:
        stuck.close()
        control.close()
    assert received == {"stuck": 0, "control": 1}


def test_read_committed_consumers_see_aborted_records(tansu):
    topic = unique("t")
    create_topics(tansu, {topic: 1})
    producer = Producer({"bootstrap.servers": tansu, "transactional.id": unique("tx")})
    producer.init_transactions(10)
    producer.begin_transaction()
    producer.produce(topic, value=b"aborted")
    producer.flush(10)
    producer.abort_transaction(10)
    producer.begin_transaction()
    producer.produce(topic, value=b"committed")
    producer.commit_transaction(10)

    consumer = Consumer(
        {
            "bootstrap.servers": tansu,
            "group.id": unique("g"),
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    try:
        values = read_assigned(consumer, topic, 2)
    finally:
        consumer.close()
    assert values == [b"aborted", b"committed"]  # Apache Kafka: [b"committed"]


@pytest.mark.parametrize(
    ("stop_signal", "at_least", "at_most"),
    [
        pytest.param(signal.SIGTERM, 4.0, 8.0, id="sigterm-drains"),
        pytest.param(signal.SIGINT, 0.0, 1.0, id="sigint-exits"),
    ],
)
def test_sigterm_waits_for_connected_clients_and_sigint_does_not(stop_signal, at_least, at_most):
    kafka = EmbeddedKafka(stop_grace=at_most + 2)
    kafka.stop_signal = stop_signal
    with kafka:
        producer = Producer({"bootstrap.servers": kafka.bootstrap_servers})
        producer.produce("anything", value=b"x")  # keeps a connection open
        assert producer.flush(10) == 0
        started = time.monotonic()
        kafka.stop()
        elapsed = time.monotonic() - started
    assert at_least <= elapsed <= at_most


def delivery_seconds(bootstrap: str, topic: str, fetch_wait_ms: int, rounds: int = 4) -> float:
    """Median seconds from the broker's ack of a record to its arrival at an idle consumer."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("g"),
                         "fetch.wait.max.ms": fetch_wait_ms})  # fmt: skip
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    took = []
    try:
        for i in range(rounds):
            idle_until = time.monotonic() + 1.2  # a fetch is parked at the broker now
            while time.monotonic() < idle_until:
                assert consumer.poll(0.05) is None
            producer.produce(topic, value=b"%d" % i)
            assert producer.flush(5) == 0
            acked = time.monotonic()
            message = None
            while message is None and time.monotonic() - acked < 10:
                message = consumer.poll(0.001)
            assert message is not None and message.value() == b"%d" % i
            took.append(time.monotonic() - acked)
    finally:
        consumer.close()
    return sorted(took)[len(took) // 2]


def test_a_parked_fetch_is_answered_late_when_a_record_arrives(tansu):
    """Apache Kafka answers a parked fetch as soon as ``fetch.min.bytes`` (1) arrive.

    Tansu answers it up to about a fifth of ``fetch.wait.max.ms`` later: with
    5000 ms a record reaches an idle consumer ~1.2 s after the broker acked
    it. seismo's scorer caps the wait at its linger (``fetch_wait_ms``).
    """
    topic = unique("parked")
    create_topics(tansu, {topic: 1})
    slow = delivery_seconds(tansu, topic, fetch_wait_ms=5000)
    print(f"\nparked fetch, fetch.wait.max.ms=5000: median {slow * 1000:.0f} ms after the ack")
    assert slow > 0.5


class _CertifiedTansu(EmbeddedKafka):
    """Tansu given a certificate (and its key, in the same PEM) with ``--cert``."""

    def __init__(self, pem: str) -> None:
        super().__init__()
        self.pem = pem

    def _command(self, binary: str) -> list[str]:
        return [*super()._command(binary), "--cert", self.pem]


def test_a_listener_given_a_certificate_still_speaks_plaintext(tmp_path):
    """Apache Kafka serves TLS on an SSL listener; Tansu 0.6.0's ``--cert`` changes nothing.

    (Its CLI refuses ``--cert`` together with ``--key``.) seismo's TLS tests
    terminate TLS in front of the broker (``tests/tls_tools.py``).
    """
    from tests.tls_tools import make_ca

    tls = make_ca(tmp_path)
    pem = tmp_path / "cert-and-key.pem"
    pem.write_text(tls.cert.read_text() + tls.key.read_text())
    with _CertifiedTansu(str(pem)) as kafka:
        plain = AdminClient({"bootstrap.servers": kafka.bootstrap_servers})
        assert kafka.bootstrap_servers.split(":")[0] in str(plain.list_topics(timeout=5).brokers)
        secure = AdminClient({"bootstrap.servers": kafka.bootstrap_servers,
                              "security.protocol": "SSL", "ssl.ca.location": str(tls.ca)})
        with pytest.raises(KafkaException):
            secure.list_topics(timeout=3)


def test_a_topic_max_message_bytes_is_ignored(tansu):
    from confluent_kafka.admin import NewTopic

    topic = unique("small")
    admin = AdminClient({"bootstrap.servers": tansu})
    for future in admin.create_topics([NewTopic(topic, 1, 1,
                                                config={"max.message.bytes": "1000"})]).values():
        future.result(10)  # accepted...
    produce(tansu, topic, [b"x" * 5000])  # ...and not enforced: Apache Kafka refuses this
    consumer = Consumer(consumer_config(tansu, unique("g")))
    try:
        assert read_assigned(consumer, topic, 1) == [b"x" * 5000]
    finally:
        consumer.close()


def test_a_produce_to_a_topic_lost_in_a_restart_is_acknowledged_and_lost():
    """A producer that knew a topic before the broker restarted (empty, as memory storage
    does) sends to it again: Tansu acknowledges the record at offset 0, without the topic
    existing, and the record is never read. Faust's changelog after a restart is such a
    producer: an incidents app that outlived its broker wrote its table into nothing, and
    a new one with the same app id waits in recovery for records it cannot fetch (an
    operator helper's finding; docs/kafka-compat.md)."""
    import asyncio

    from aiokafka import AIOKafkaProducer

    topic = unique("lost")

    async def scenario() -> tuple[int, bool, list[str]]:
        with EmbeddedKafka() as first:
            port = int(first.bootstrap_servers.rsplit(":", 1)[1])
            create_topics(first.bootstrap_servers, {topic: 2})
            producer = AIOKafkaProducer(bootstrap_servers=first.bootstrap_servers)
            await producer.start()
            try:
                await producer.send_and_wait(topic, b"before", partition=1)
                first.stop()
                time.sleep(1.0)
                with EmbeddedKafka(port=port) as second:
                    sent = await asyncio.wait_for(
                        producer.send_and_wait(topic, b"after", partition=1), 30
                    )
                    known = topic in AdminClient({"bootstrap.servers": second.bootstrap_servers}
                                                 ).list_topics(timeout=10).topics  # fmt: skip
                    create_topics(second.bootstrap_servers, {topic: 2})
                    consumer = Consumer(consumer_config(second.bootstrap_servers, unique("g")))
                    consumer.assign([TopicPartition(topic, 1, OFFSET_BEGINNING)])
                    got = [m.value().decode() for m in iter(lambda: consumer.poll(2), None)
                           if m.error() is None]  # fmt: skip
                    consumer.close()
            finally:
                await producer.stop()
        return sent.offset, known, got

    offset, known, got = asyncio.run(scenario())
    assert offset == 0 and not known, "acknowledged, with no such topic"
    assert got == [], "and never read"
