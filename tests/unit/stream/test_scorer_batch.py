"""The scorer's pure helpers over a consumed batch: sources, timestamps, commit offsets."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from confluent_kafka import (
    TIMESTAMP_CREATE_TIME,
    TIMESTAMP_LOG_APPEND_TIME,
    TIMESTAMP_NOT_AVAILABLE,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from seismo.stream.io.batch_sources import MessageSources, commit_offsets, kafka_times, source_of
from seismo.stream.scoring.alerts import Source


@dataclass(frozen=True)
class FakeMessage:
    """The few accessors of ``confluent_kafka.Message`` the helpers read."""

    _topic: str | None = "events"
    _partition: int | None = 0
    _offset: int | None = 0
    _timestamp: tuple[int, int] = (TIMESTAMP_CREATE_TIME, 0)

    def topic(self) -> str | None:
        return self._topic

    def partition(self) -> int | None:
        return self._partition

    def offset(self) -> int | None:
        return self._offset

    def timestamp(self) -> tuple[int, int]:
        return self._timestamp


def test_source_of_reads_topic_partition_offset():
    assert source_of(FakeMessage("events", 3, 41)) == Source("events", 3, 41)


@pytest.mark.parametrize(
    "message",
    [FakeMessage(_topic=None), FakeMessage(_partition=None), FakeMessage(_offset=None)],
)
def test_source_of_refuses_a_message_without_a_position(message):
    with pytest.raises(ValueError, match="without topic, partition or offset"):
        source_of(message)


def test_source_of_accepts_partition_and_offset_zero():
    assert source_of(FakeMessage("t", 0, 0)) == Source("t", 0, 0)


def test_commit_offsets_are_highest_offset_plus_one_per_partition_sorted():
    batch = [
        FakeMessage("b", 1, 7),
        FakeMessage("a", 0, 12),
        FakeMessage("b", 1, 5),
        FakeMessage("a", 2, 0),
        FakeMessage("a", 0, 10),
        FakeMessage("b", 0, 3),
    ]
    committed = commit_offsets([source_of(m) for m in batch])
    offsets = [(tp.topic, tp.partition, tp.offset) for tp in committed]
    assert offsets == [("a", 0, 13), ("a", 2, 1), ("b", 0, 4), ("b", 1, 8)]


def test_commit_offsets_of_an_empty_batch_is_empty():
    assert commit_offsets([]) == []


def test_commit_offsets_refuse_a_message_without_a_position():
    with pytest.raises(ValueError):
        commit_offsets([source_of(m) for m in (FakeMessage("a", 0, 1), FakeMessage(_offset=None))])


def test_timestamps_use_kafka_time_and_fall_back_to_now_when_unavailable():
    batch = [
        FakeMessage(_timestamp=(TIMESTAMP_CREATE_TIME, 1_000)),
        FakeMessage(_timestamp=(TIMESTAMP_NOT_AVAILABLE, -1)),
        FakeMessage(_timestamp=(TIMESTAMP_LOG_APPEND_TIME, 3_000)),
    ]
    assert kafka_times(batch, now_ms=99_000)[0] == [1_000, 99_000, 3_000]


def test_kafka_timestamps_outside_the_event_time_range_fall_back_to_now():
    # Red-team finding: a producer stamping microseconds gave alerts a ts of 1.7e15,
    # which an event's own ts may not take and the incidents service refuses.
    batch = [FakeMessage(_timestamp=(TIMESTAMP_CREATE_TIME, 1_732_350_000_000_000)),
             FakeMessage(_timestamp=(TIMESTAMP_CREATE_TIME, -5)),
             FakeMessage(_timestamp=(TIMESTAMP_CREATE_TIME, 1_732_350_000_000))]
    assert kafka_times(batch, now_ms=7)[0] == [7, 7, 1_732_350_000_000]


def test_timestamps_of_an_empty_batch_is_empty():
    assert kafka_times([], now_ms=5)[0] == []


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 3), st.integers(0, 10**6)),
                max_size=30))  # fmt: skip
def test_message_sources_match_the_eager_sources(positions):
    batch = [FakeMessage(t, p, o) for t, p, o in positions]
    lazy = MessageSources(batch)
    eager = [source_of(m) for m in batch]
    assert list(lazy) == eager and len(lazy) == len(eager)
    assert [lazy[i] for i in range(len(batch))] == eager and lazy[1:3] == eager[1:3]
    assert [(tp.topic, tp.partition, tp.offset) for tp in lazy.commit_offsets()] == [
        (tp.topic, tp.partition, tp.offset) for tp in commit_offsets(eager)
    ]
    arrays = MessageSources(batch)  # device scope reads the positions first
    arrays.positions()
    assert [(tp.topic, tp.partition, tp.offset) for tp in arrays.commit_offsets()] == [
        (tp.topic, tp.partition, tp.offset) for tp in commit_offsets(eager)
    ]
