"""The window rebuild's tail reader (``service.tail_reader``) against a real broker.

It reads the messages just before a group's committed offsets of each partition.
A partition whose tail is not read whole (the time or the byte budget ran out)
gives none of it, with a WARNING: a tail cut short lacked the readings just
before the committed offset, and windows joined older readings to live ones
across that gap without a word (a red-team finding).
"""

from __future__ import annotations

import logging

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from seismo.stream.scoring import service
from tests.kafka_tools import create_topics

pytestmark = [pytest.mark.kafka]


def committed_group(bootstrap: str, topic: str, group: str, offsets: dict[int, int]) -> dict:
    """Commit ``offsets`` (partition -> next offset) for ``group``; the reader's config."""
    config = {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
    consumer = Consumer(config)
    try:
        consumer.commit(offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()],
                        asynchronous=False)  # fmt: skip
    finally:
        consumer.close()
    return config


@pytest.fixture
def tails(kafka_bootstrap: str, topic_name: str, group_id: str) -> tuple[dict, list]:
    """40 messages on each of 2 partitions, 30 of each committed by the group."""
    create_topics(kafka_bootstrap, {topic_name: 2})
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for partition in (0, 1):
        for i in range(40):
            producer.produce(topic_name, value=f"{partition}-{i}".encode() + b"." * 1000,
                             partition=partition)  # fmt: skip
    assert producer.flush(30) == 0
    config = committed_group(kafka_bootstrap, topic_name, group_id, {0: 30, 1: 30})
    return config, [TopicPartition(topic_name, 0), TopicPartition(topic_name, 1)]


def values(messages) -> set[bytes]:
    return {(m.value() or b"").split(b".")[0] for m in messages}


def test_the_tail_before_the_committed_offsets_is_read(tails) -> None:
    config, partitions = tails
    got = service.tail_reader(config)(partitions, 10)
    assert values(got) == {f"{p}-{i}".encode() for p in (0, 1) for i in range(20, 30)}


def test_a_tail_cut_by_the_byte_budget_gives_none_of_its_partition_and_says_so(
    tails, monkeypatch, caplog
) -> None:
    config, partitions = tails
    monkeypatch.setattr(service, "TAIL_MAX_BYTES", 5_000)  # half a partition's tail
    with caplog.at_level(logging.WARNING, logger=service.log.name):
        got = service.tail_reader(config)(partitions, 10)
    assert got == []
    assert "window rebuild: the tails of" in caplog.text
    assert "within 5,000 bytes of messages" in caplog.text


def test_a_tail_cut_by_the_deadline_gives_none_and_says_so(tails, monkeypatch, caplog) -> None:
    config, partitions = tails
    monkeypatch.setattr(service, "TAIL_READ_S", 0.0)
    with caplog.at_level(logging.WARNING, logger=service.log.name):
        got = service.tail_reader(config)(partitions, 10)
    assert got == []
    assert "their device windows start empty" in caplog.text and "within 0 s" in caplog.text


def test_a_cut_keeps_every_tail_read_whole_and_no_partial_one(tails, monkeypatch) -> None:
    """With a budget that holds one partition's tail and not both, whatever order the
    broker serves them in, each partition's tail comes whole or not at all."""
    config, partitions = tails
    monkeypatch.setattr(service, "TAIL_MAX_BYTES", 15_000)  # a tail is about 10 KB
    got = values(service.tail_reader(config)(partitions, 10))
    for p in (0, 1):
        whole = {f"{p}-{i}".encode() for i in range(20, 30)}
        mine = {v for v in got if v.startswith(f"{p}-".encode())}
        assert mine in (set(), whole), sorted(mine)
