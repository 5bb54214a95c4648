"""``seismo tail TOPIC``: print a topic's records, by assignment (no group, no commits).

The consumer is assigned every partition of the topic, so nothing waits for a
group join and no offset is ever committed; how each record is shown is
:mod:`seismo.stream.offline.tail_format`'s business. It stops after
``max_records`` printed records, after ``idle_s`` seconds without a new one, or
when ``stop`` is set (Ctrl-C); without these it follows the topic for good.

End offsets are not trusted (docs/kafka-compat.md: Tansu reports the base
offset of a partition's last *batch* + 1 as its end). So reading never stops
"at the end": ``--timeout`` is how a script says it has seen enough. And
``--from-end`` starts at the end offsets the broker reports at start-up *and*
skips records whose timestamp is older than the start of ``seismo tail``: on
Tansu those offsets can lie inside the last batch, whose older records would
otherwise be shown. A record stamped by a producer whose clock runs behind
this machine's may be skipped the same way.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaException,
    Message,
    TopicPartition,
)

from seismo.stream.errors import ConfigError, ServiceError
from seismo.stream.io.kafka import (
    CONSUMER_DEFAULTS,
    PINNED_CONSUMER,
    BrokerErrors,
    client_config,
    cluster_metadata,
    split_errors,
)
from seismo.stream.offline.tail_format import TailRecord, json_line, text_line
from seismo.stream.scoring.codec import Unreadable, header_pairs, message_headers

__all__ = ["TailOptions", "run_tail"]

log = logging.getLogger(__name__)

#: Never joined (``assign`` only), never committed: the id only satisfies librdkafka.
GROUP_ID = "seismo-tail"
#: Most records taken from the client at once, and the longest wait for them (s).
BATCH, POLL_S = 500, 0.2
#: Longest wait for the broker's metadata and end offsets at start-up (s).
START_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class TailOptions:
    """What to read, how to show it, when to stop (``None``: no limit)."""

    topic: str
    bootstrap_servers: str
    from_end: bool = False
    max_records: int | None = None
    idle_s: float | None = None
    as_json: bool = False
    kafka_config: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.max_records is not None and self.max_records < 1:
            raise ConfigError("--max must be at least 1")
        if self.idle_s is not None and self.idle_s <= 0:
            raise ConfigError("--timeout must be positive")


#: The one header ``seismo tail`` shows for a message whose headers cannot be read.
UNREADABLE_HEADER = "(unreadable headers)"


def to_record(msg: Message) -> TailRecord:
    """A consumed message as plain data."""
    kind, ts = msg.timestamp()
    raw = message_headers(msg)
    # shown, not a crash: a header name that is not UTF-8
    pairs = [(UNREADABLE_HEADER, raw.reason)] if isinstance(raw, Unreadable) else header_pairs(raw)
    headers = tuple((name, value.encode() if isinstance(value, str) else value)
                    for name, value in pairs)  # fmt: skip
    return TailRecord(
        topic=msg.topic() or "", partition=msg.partition() or 0, offset=msg.offset() or 0,
        timestamp=None if kind == TIMESTAMP_NOT_AVAILABLE else ts, key=msg.key(),
        value=msg.value(), headers=headers,
    )  # fmt: skip


def _start_offsets(consumer: Consumer, options: TailOptions, errors: BrokerErrors) -> list[Any]:
    """The topic's partitions, each at its first offset or at its end offset as reported now."""
    metadata = cluster_metadata(consumer, START_TIMEOUT_S, errors)
    topic = metadata.topics.get(options.topic)
    if topic is None or topic.error is not None:
        raise ServiceError(f"topic {options.topic!r} does not exist on {options.bootstrap_servers}")
    partitions = sorted(topic.partitions)
    if not options.from_end:
        return [TopicPartition(options.topic, p, OFFSET_BEGINNING) for p in partitions]
    starts = []
    for p in partitions:
        try:
            _low, high = consumer.get_watermark_offsets(
                TopicPartition(options.topic, p), timeout=START_TIMEOUT_S
            )
        except KafkaException as exc:
            raise ServiceError(f"no end offset for {options.topic}[{p}]: {exc}") from exc
        starts.append(TopicPartition(options.topic, p, high))
    return starts


def run_tail(options: TailOptions, stop: threading.Event, out: Callable[[str], None]) -> int:
    """Print the topic's records with ``out`` until a stop condition; the number printed.

    Raises
    ------
    ServiceError
        The broker cannot be reached (at start or for good later), or the topic
        does not exist.
    """
    errors = BrokerErrors()
    config = client_config(options.bootstrap_servers, CONSUMER_DEFAULTS, options.kafka_config,
                           PINNED_CONSUMER)  # fmt: skip
    config.update({"group.id": GROUP_ID, "error_cb": errors})
    show = json_line if options.as_json else text_line
    since_ms = time.time() * 1000 if options.from_end else None
    consumer = Consumer(config)
    printed = 0
    try:
        consumer.assign(_start_offsets(consumer, options, errors))
        last_new = time.monotonic()
        while not stop.is_set() and printed != options.max_records:
            if options.idle_s is not None and time.monotonic() - last_new >= options.idle_s:
                break
            good, failed = split_errors(consumer.consume(BATCH, POLL_S))
            for err in failed:
                log.debug("consumer error: %s", err.str())
            if errors.reason() is not None:
                raise ServiceError(f"Kafka broker unreachable: {errors.reason()}")
            for msg in good:
                record = to_record(msg)
                if since_ms is not None and record.timestamp is not None \
                        and record.timestamp < since_ms:  # fmt: skip
                    continue
                out(show(record))
                printed += 1
                last_new = time.monotonic()
                if printed == options.max_records:
                    break
    finally:
        consumer.close()
    return printed
