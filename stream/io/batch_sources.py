"""Where each message of a consumed batch came from, read from the messages only when needed.

Alerts and dead letters name their source message (topic, partition, offset),
and the commit needs the highest offset of each partition. Building a
:class:`~seismo.stream.scoring.alerts.Source` for every message of every batch costs more than
decoding it, while only the alerts (a small share) need one: so a
:class:`MessageSources` builds them on access, and computes the commit offsets
in one pass.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import overload

import numpy as np
from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Message, TopicPartition

from seismo.stream.scoring.alerts import Source
from seismo.stream.scoring.fast_decode import MAX_TS_MS


def source_of(message: Message) -> Source:
    """Where a consumed message came from (topic, partition, offset)."""
    topic, partition, offset = message.topic(), message.partition(), message.offset()
    if topic is None or partition is None or offset is None:
        raise ValueError("a consumed message without topic, partition or offset")
    return Source(topic, partition, offset)


def kafka_times(messages: Sequence[Message], now_ms: int) -> tuple[list[int], int, bool]:
    """Each message's Kafka timestamp, or ``now_ms`` where it has none or one outside the
    event times an event's own ``ts`` may take (``[0, MAX_TS_MS)``: a producer clock in
    microseconds, say), so no alert carries a time that downstream refuses; how many
    were out of that range; and whether ``now_ms`` stood in for any.

    >>> kafka_times([], now_ms=5)
    ([], 0, False)
    """
    out, odd, missing = [], 0, False
    for m in messages:
        kind, ts = m.timestamp()
        if kind == TIMESTAMP_NOT_AVAILABLE:
            out.append(now_ms)
            missing = True
        elif 0 <= ts < MAX_TS_MS:
            out.append(ts)
        else:
            out.append(now_ms)
            odd += 1
    return out, odd, missing or odd > 0


def commit_offsets(sources: Sequence[Source]) -> list[TopicPartition]:
    """The offsets that commit a batch: the highest offset + 1 of each partition."""
    top: dict[tuple[str, int], int] = {}
    for src in sources:
        key = (src.topic, src.partition)
        top[key] = max(top.get(key, -1), src.offset)
    return [TopicPartition(t, p, o + 1) for (t, p), o in sorted(top.items())]


class MessageSources(Sequence[Source]):
    """The :class:`Source` of each message of ``messages``, made on access."""

    def __init__(self, messages: Sequence[Message]) -> None:
        self._messages = messages
        self._positions: tuple[np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self._messages)

    @overload
    def __getitem__(self, index: int) -> Source: ...

    @overload
    def __getitem__(self, index: slice) -> list[Source]: ...

    def __getitem__(self, index: int | slice) -> Source | list[Source]:
        if isinstance(index, slice):
            return [source_of(m) for m in self._messages[index]]
        return source_of(self._messages[index])

    def __iter__(self) -> Iterator[Source]:
        return (source_of(m) for m in self._messages)

    def commit_offsets(self) -> list[TopicPartition]:
        """Highest offset + 1 per partition, in one pass over the messages (from the
        :meth:`positions` arrays when they were built and the batch holds one topic)."""
        if self._positions is not None and self._messages:
            topics = {m.topic() for m in self._messages}
            if len(topics) == 1 and None not in topics:
                return _highest(topics.pop(), *self._positions)  # type: ignore[arg-type]
        top: dict[tuple[str, int], int] = {}
        for m in self._messages:
            topic, partition, offset = m.topic(), m.partition(), m.offset()
            if topic is None or partition is None or offset is None:
                raise ValueError("a consumed message without topic, partition or offset")
            key = (topic, partition)
            if offset > top.get(key, -1):
                top[key] = offset
        return [TopicPartition(t, p, o + 1) for (t, p), o in sorted(top.items())]

    def positions(self) -> tuple[np.ndarray, np.ndarray]:
        """Every message's partition and offset as two ``int64`` arrays (built once)."""
        if self._positions is None:
            n, messages = len(self._messages), self._messages
            try:
                self._positions = (
                    np.fromiter((m.partition() for m in messages), dtype=np.int64, count=n),
                    np.fromiter((m.offset() for m in messages), dtype=np.int64, count=n),
                )
            except TypeError:  # a None among them
                raise ValueError("a consumed message without partition or offset") from None
        return self._positions


def _highest(topic: str, partitions: np.ndarray, offsets: np.ndarray) -> list[TopicPartition]:
    """Highest offset + 1 of each partition of one topic, partitions in order.

    >>> [(tp.partition, tp.offset) for tp in
    ...  _highest("t", np.array([2, 0, 2, 0]), np.array([7, 4, 9, 3]))]
    [(0, 5), (2, 10)]
    """
    order = np.lexsort((offsets, partitions))  # by partition, then offset
    last = np.flatnonzero(np.r_[partitions[order][1:] != partitions[order][:-1], True])
    return [TopicPartition(topic, p, o + 1) for p, o in
            zip(partitions[order][last].tolist(), offsets[order][last].tolist(), strict=True)]


def positions_of(sources: Sequence[Source]) -> tuple[np.ndarray, np.ndarray]:
    """The partitions and offsets of ``sources`` as two ``int64`` arrays.

    >>> parts, offsets = positions_of([Source("t", 1, 7), Source("t", 0, 9)])
    >>> parts.tolist(), offsets.tolist()
    ([1, 0], [7, 9])
    """
    if isinstance(sources, MessageSources):
        return sources.positions()
    return (np.array([s.partition for s in sources], dtype=np.int64),
            np.array([s.offset for s in sources], dtype=np.int64))  # fmt: skip
