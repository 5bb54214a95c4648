"""`seismo tail` on the test broker: every kind of record, --max, --json, --timeout, --from-end.

Run through the typer app in this process (``CliRunner``); only the signal
handlers are replaced by a plain event, so that the test process keeps its own
Ctrl-C.
"""

from __future__ import annotations

import json
import threading
import time

import orjson
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from typer.testing import CliRunner

from seismo.stream.cli.app import app
from seismo.stream.errors import ServiceError
from seismo.stream.offline.tail import TailOptions, run_tail
from tests.kafka_tools import create_topics, produce_values
from tests.services import embedded_kafka

ALERT = {
    "alert_id": "sensor-events:2:41", "device_id": "room-3", "ts": 1732350000000,
    "detected_at": 1732350000050, "score": 0.8123, "threshold": 0.4567, "zscore": 5.21,
    "model_version": "4", "top_features": [{"index": 1, "name": "humidity", "error": 0.5}],
}  # fmt: skip
DLQ_HEADERS = [("seismo-error", b"expected 6 values, got 7"), ("seismo-source-topic", b"rooms"),
               ("seismo-source-partition", b"0"), ("seismo-source-offset", b"12")]  # fmt: skip


@pytest.fixture(autouse=True)
def no_signal_handlers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("seismo.stream.cli.common.install_stop_handlers", threading.Event)


@pytest.fixture
def topic(kafka_bootstrap: str, topic_name: str) -> str:
    """A one-partition topic holding an alert, plain JSON, a dead letter and text, in order."""
    create_topics(kafka_bootstrap, {topic_name: 1})
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    producer.produce(topic_name, value=orjson.dumps(ALERT), key=b"room-3")
    producer.produce(topic_name, value=b'{"device_id": "room-1", "values": [1.5, 2]}')
    producer.produce(topic_name, value=b'{"ts": 1, "values": [1, 2, 3, 4, 5, 6, 7]}',
                     headers=DLQ_HEADERS)  # fmt: skip
    producer.produce(topic_name, value=b"plain text\n")
    producer.produce(topic_name, value=b"[5]")
    assert producer.flush(10) == 0
    return topic_name


def tail(*args: str) -> tuple[int, list[str], BaseException | None]:
    result = CliRunner().invoke(app, ["tail", *args])
    return result.exit_code, result.stdout.splitlines(), result.exception


def test_tail_shows_each_kind_of_record_and_stops_at_max(kafka_bootstrap: str, topic: str) -> None:
    code, lines, exc = tail(topic, "--bootstrap-servers", kafka_bootstrap, "--max", "4")
    assert code == 0, exc
    assert lines == [
        "2024-11-23T08:20:00.000Z room-3 score 0.8123 > threshold 0.4567 (z 5.21) model 4 "
        "top humidity [sensor-events:2:41]",
        '{"device_id":"room-1","values":[1.5,2]}',
        "DLQ rooms:0:12 reason: expected 6 values, got 7 | value: "
        '{"ts": 1, "values": [1, 2, 3, 4, 5, 6, 7]}',
        "plain text\\n",
    ]


def test_tail_json_prints_one_valid_json_object_per_record(
    kafka_bootstrap: str, topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEISMO_BOOTSTRAP_SERVERS", kafka_bootstrap)  # as `dev up` exports it
    code, lines, exc = tail(topic, "--json", "--max", "5")
    assert code == 0, exc

    def no_constants(name: str) -> None:
        raise AssertionError(f"{name} is not JSON")

    records = [json.loads(line, parse_constant=no_constants) for line in lines]
    assert [r["kind"] for r in records] == ["alert", "json", "dead_letter", "text", "json"]
    assert [r["offset"] for r in records] == [0, 1, 2, 3, 4]
    assert records[0]["value"] == ALERT and records[0]["key"] == "room-3"
    letter = records[2]
    assert letter["reason"] == "expected 6 values, got 7"
    assert letter["headers"] == {k: v.decode() for k, v in DLQ_HEADERS}
    assert letter["value"] == {"ts": 1, "values": [1, 2, 3, 4, 5, 6, 7]}
    assert records[3]["value"] == "plain text\n"


def test_tail_timeout_stops_after_seconds_without_a_record(
    kafka_bootstrap: str, topic: str
) -> None:
    started = time.monotonic()
    code, lines, exc = tail(topic, "--bootstrap-servers", kafka_bootstrap, "--timeout", "1")
    took = time.monotonic() - started
    assert code == 0, exc
    assert len(lines) == 5  # every record, then 1 s of nothing
    assert took < 8


def test_tail_of_an_empty_topic_says_so_on_stderr(kafka_bootstrap: str, topic_name: str) -> None:
    create_topics(kafka_bootstrap, {topic_name: 1})
    result = CliRunner().invoke(app, ["tail", topic_name, "--bootstrap-servers", kafka_bootstrap,
                                      "--timeout", "1"])  # fmt: skip
    assert result.exit_code == 0, result.exception
    assert result.stdout == ""
    assert result.stderr == f"seismo tail: no record in {topic_name} within 1 s\n"


def test_tail_of_a_missing_topic_is_one_line_error(kafka_bootstrap: str, topic_name: str) -> None:
    code, lines, exc = tail(topic_name, "--bootstrap-servers", kafka_bootstrap, "--timeout", "1")
    assert code == 1 and lines == []
    assert isinstance(exc, ServiceError)
    assert str(exc) == f"topic {topic_name!r} does not exist on {kafka_bootstrap}"


def test_tail_from_end_shows_only_new_records_although_tansu_misreports_the_end(
    kafka_bootstrap: str, topic_name: str
) -> None:
    """Five old records in one batch: Tansu's end offset is 1, yet none of them is shown."""
    create_topics(kafka_bootstrap, {topic_name: 1})
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "linger.ms": 200})
    for i in range(5):
        producer.produce(topic_name, value=b'{"old": %d}' % i)
    assert producer.flush(10) == 0
    if embedded_kafka():  # the quirk this test is about (docs/kafka-compat.md)
        consumer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": "unused"})
        assert consumer.get_watermark_offsets(TopicPartition(topic_name, 0), timeout=10)[1] < 5
        consumer.close()
    time.sleep(0.05)  # the old records' timestamps are before the tail starts
    lines: list[str] = []
    options = TailOptions(topic_name, kafka_bootstrap, from_end=True, max_records=3, idle_s=15)
    thread = threading.Thread(target=run_tail, args=(options, threading.Event(), lines.append))
    thread.start()
    time.sleep(1.5)  # assigned by then
    produce_values(kafka_bootstrap, topic_name, [(None, b'{"new": %d}' % i) for i in range(3)])
    thread.join(20)
    assert not thread.is_alive()
    assert lines == ['{"new":0}', '{"new":1}', '{"new":2}']
