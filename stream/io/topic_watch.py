"""Read JSON records of a few topics from their beginning, in a background thread.

``seismo demo`` watches its scores and alerts topics with this: partitions are
assigned (no consumer group to join), every record goes to the handler of its
topic under a lock shared with the reader of the state it builds.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from seismo.stream.io.kafka import RDKAFKA_LOG, split_errors

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], object]


class TopicWatcher:
    """Feeds ``handlers[topic](record)`` from ``topics`` (name -> partitions) until stopped."""

    def __init__(
        self,
        bootstrap_servers: str,
        topics: Mapping[str, int],
        handlers: Mapping[str, Handler],
        lock: threading.Lock,
        kafka_config: Mapping[str, Any] | None = None,
    ) -> None:
        self._consumer = Consumer(
            {
                "logger": RDKAFKA_LOG,
                **(kafka_config or {}),
                "bootstrap.servers": bootstrap_servers,
                "group.id": f"seismo-watch-{uuid.uuid4().hex[:12]}",  # never joined: assign()
                "enable.auto.commit": False,
                "enable.partition.eof": False,
            }
        )
        self._consumer.assign(
            [TopicPartition(t, p, OFFSET_BEGINNING) for t, n in topics.items() for p in range(n)]
        )
        self._handlers = dict(handlers)
        self._lock = lock
        self._stop = threading.Event()
        self.undecodable = 0
        self._thread = threading.Thread(target=self._run, name="topic-watch", daemon=True)

    def start(self) -> TopicWatcher:
        """Start reading in the background."""
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                messages, errors = split_errors(
                    self._consumer.consume(num_messages=2000, timeout=0.2)
                )
                if errors:
                    log.debug("watch: %s", errors[0].str())
                records = []
                for msg in messages:
                    try:
                        records.append((str(msg.topic()), orjson.loads(msg.value() or b"")))
                    except orjson.JSONDecodeError:
                        self.undecodable += 1
                with self._lock:
                    for topic, record in records:
                        self._handlers[topic](record)
        finally:
            self._consumer.close()

    def stop(self) -> None:
        """Stop reading and close the consumer."""
        self._stop.set()
        if self._thread.ident is None:
            self._consumer.close()  # never started
        elif self._thread.is_alive():
            self._thread.join(10.0)
