"""Start-up check that the model fits the data on the input topic.

A model trained on ``d`` features cannot score events with another number of
values: every one of them would go to the dead-letter topic. Before joining
its group, the scorer reads the newest few events of each partition (with a
group-less consumer, so nothing is committed) and refuses to start when none
of them fits: ``d`` positional values, or named values whose names are exactly
the model's channels (as the decoder takes them). Any producer can write a few events of
another width at the end of every partition, and they must not keep a
running deployment from restarting (a stranger's finding): when its group
has committed on the topic before (:func:`group_has_committed`), the scorer
looks :data:`DEEP_PER_PARTITION` events back and starts, with a WARNING, if
most of them fit. A wrong model fits none of them, or a few strays, and is
still refused.
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


def event_shape(value: bytes | None) -> int | frozenset[str] | None:
    """An event's positional ``values`` count, or the names of its named ``values``;
    ``None`` if it has neither.

    >>> event_shape(b'{"values": [1.0, 2.0]}'), event_shape(b'[1, 2]'), event_shape(None)
    (2, None, None)
    >>> sorted(event_shape(b'{"values": {"rpm": 1, "temp": 2}}'))
    ['rpm', 'temp']
    """
    if not value:
        return None
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    values = obj.get("values") if isinstance(obj, dict) else None
    if isinstance(values, list):
        return len(values)
    return frozenset(values) if isinstance(values, dict) else None


def dimension_mismatch(
    values: Sequence[bytes | None], n_features: int, channels: Sequence[str] | None = None,
    *, most: bool = False,
) -> str | None:  # fmt: skip
    """Why the sampled events cannot fit the model, or ``None`` when they can.

    An event fits with ``n_features`` positional values, or with named values
    whose names are exactly ``channels`` (the model's, in any order), as the
    scorer decodes them. Only a sample in which *no* event fits is a mismatch;
    with ``most``, a sample in which no more than half the events fit is one too
    (the deep look of a group that scored the topic before: one stray event that
    fits among thousands that do not no longer lets a wrong model start, a
    stranger's finding). The most common shape that does not fit is named.

    >>> stray = [b'{"values": [1, 2, 3]}'] + [b'{"values": [1, 2]}'] * 5
    >>> dimension_mismatch(stray, 3) is None, dimension_mismatch(stray, 3, most=True)
    (True, 'events carry 2 values, the model expects 3')
    >>> fit, two, one = b'{"values": [1, 2, 3]}', b'{"values": [1, 2]}', b'{"values": [1]}'
    >>> mixed = [fit] * 4 + [two] * 3 + [one] * 3
    >>> print(dimension_mismatch(mixed, 3, most=True))  # 4 in 10 fit, though the most common shape
    events carry 2 values, the model expects 3

    >>> named = [b'{"values": {"temp": 1, "rpm": 2}}']
    >>> dimension_mismatch(named, 2, ["rpm", "temp"]) is None
    True
    >>> print(dimension_mismatch(named, 3, ["rpm", "temp", "time"]))
    events name the channels 'rpm', 'temp'; the model's are 'rpm', 'temp', 'time' (missing: 'time')
    """
    shapes = [s for s in map(event_shape, values) if s is not None]
    names = frozenset(channels) if channels is not None else None
    if not shapes:
        return None
    fits = sum(s in (n_features, names) for s in shapes)
    if (2 * fits > len(shapes)) if most else fits:
        return None
    found = Counter(s for s in shapes if s not in (n_features, names)).most_common(1)[0][0]
    if isinstance(found, int):
        return f"events carry {found} values, the model expects {n_features}"
    if names is None:
        return f"events name their values, the model has no channel names ({n_features} values)"
    gaps = [f"{what}: {_listed(sorted(group))}" for what, group in
            (("missing", names - found), ("unknown", found - names)) if group]  # fmt: skip
    return (f"events name the channels {_listed(sorted(found))}; the model's are "
            f"{_listed(sorted(names))} ({'; '.join(gaps)})")  # fmt: skip


def _listed(names: Sequence[str], most: int = 8) -> str:
    """Names for a message, the first ``most`` of them; names a producer chose are
    quoted and cut to 40 characters, as the dead-letter reasons quote them.

    >>> print(_listed(["a", "b"]), _listed([str(i) for i in range(10)], most=3))
    'a', 'b' '0', '1', '2' and 7 more
    >>> _listed(["x" * 100])[-7:]
    "xxx...'"
    """
    shown = ", ".join(repr(n if len(n) <= 40 else n[:40] + "...") for n in names[:most])
    return shown if len(names) <= most else f"{shown} and {len(names) - most} more"


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
