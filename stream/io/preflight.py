"""Start-up check that the model fits the data on the input topic.

A model trained on ``d`` features cannot score events with another number of
values: every one of them would go to the dead-letter topic. Before joining
its group, the scorer reads the newest few events of each partition (with a
group-less consumer, so nothing is committed) and refuses to start when none
of them has the model's dimension. Any producer can write a few events of
another width at the end of every partition, and they must not keep a
running deployment from restarting (a stranger's finding): when its group
has committed on the topic before (:func:`group_has_committed`), the scorer
looks :data:`DEEP_PER_PARTITION` events back and starts, with a WARNING, if
some of them fit. A wrong model fits none of them and is still refused.
Mixed data, an empty topic, or events that are not JSON at all pass: those
are the dead-letter topic's business.

Examples
--------
>>> dimension_mismatch([b'{"device_id": "a", "values": [1, 2, 3]}'], n_features=3) is None
True
>>> dimension_mismatch([b'{"device_id": "a", "values": [1, 2]}', b"junk"], n_features=3)
'events carry 2 values, the model expects 3'
>>> dimension_mismatch([b"junk", None], n_features=3) is None
True
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaException, TopicPartition

from seismo.stream.io.kafka import split_errors


def value_count(value: bytes | None) -> int | None:
    """Length of the ``values`` array of an event, or ``None`` if it has none.

    >>> value_count(b'{"values": [1.0, 2.0]}'), value_count(b'[1, 2]'), value_count(None)
    (2, None, None)
    """
    if not value:
        return None
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    values = obj.get("values") if isinstance(obj, dict) else None
    return len(values) if isinstance(values, list) else None


def dimension_mismatch(values: Sequence[bytes | None], n_features: int) -> str | None:
    """Why the sampled events cannot fit the model, or ``None`` when they can.

    Only a sample in which *no* event has ``n_features`` values is a mismatch;
    the most common length found is named in the message.
    """
    counts = Counter(c for c in map(value_count, values) if c is not None)
    if not counts or n_features in counts:
        return None
    found = counts.most_common(1)[0][0]
    return f"events carry {found} values, the model expects {n_features}"


def latest_values(
    config: dict[str, Any], topic: str, per_partition: int = 5, timeout_s: float = 5.0
) -> list[bytes | None]:
    """The newest ``per_partition`` message values of each partition of ``topic``.

    Uses ``assign`` (no group, no commit). Waits at most about ``timeout_s``
    in all; returns what arrived by then. A partition counts as read once the
    message before its high watermark arrived (docs/kafka-compat.md: Tansu
    reports the start of the last record batch + 1, so fewer may be read).
    """
    consumer = Consumer({**config, "group.id": "seismo-preflight", "enable.auto.commit": False})
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_s)
        assignment, last = [], {}
        for partition in metadata.topics[topic].partitions:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=timeout_s
            )
            if high > low:
                assignment.append(TopicPartition(topic, partition, max(low, high - per_partition)))
                last[partition] = high - 1
        consumer.assign(assignment)
        seen: dict[int, list[bytes | None]] = {p: [] for p in last}
        deadline = time.monotonic() + timeout_s
        while last and time.monotonic() < deadline:
            for m in split_errors(consumer.consume(num_messages=100, timeout=0.2))[0]:
                partition, offset = m.partition() or 0, m.offset() or 0
                seen[partition].append(m.value())
                if offset >= last.get(partition, offset + 1):
                    del last[partition]
        # A broker may hand over a whole record batch from before `start`.
        return [v for values in seen.values() for v in values[-per_partition:]]
    finally:
        consumer.close()


#: Events per partition a group that has committed before looks back at start-up.
DEEP_PER_PARTITION = 1000


def group_has_committed(consumer: Consumer, topic: str, timeout_s: float = 5.0) -> bool | None:
    """Whether ``consumer``'s group has committed an offset on any partition of ``topic``;
    ``None`` when the broker does not say in time."""
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_s)
        partitions = [TopicPartition(topic, p) for p in metadata.topics[topic].partitions]
        committed = consumer.committed(partitions, timeout=timeout_s)
    except KafkaException:
        return None
    return any(tp.offset >= 0 for tp in committed)
