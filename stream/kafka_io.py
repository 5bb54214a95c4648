"""Thin confluent-kafka wrappers: configs, a confirming producer, broker checks.

Every client seismo creates goes through :func:`client_config`, so the
user's ``--kafka-config`` settings (SASL, TLS, timeouts...) reach all of them.
``msg.error()`` is checked in one place: :func:`split_errors`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer

from stream.errors import DeliveryError, ServiceError

log = logging.getLogger(__name__)

#: Consumer settings seismo relies on for at-least-once delivery.
CONSUMER_DEFAULTS: dict[str, Any] = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "auto.offset.reset": "earliest",
    "session.timeout.ms": 10_000,
    "enable.partition.eof": False,
}
#: Producer settings: idempotent, fully acknowledged.
PRODUCER_DEFAULTS: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "linger.ms": 5,
}
#: Settings the scorer will not let a user override (they carry its guarantees).
PINNED_CONSUMER = ("enable.auto.commit", "enable.auto.offset.store")


def client_config(
    bootstrap_servers: str,
    defaults: Mapping[str, Any],
    extra: Mapping[str, Any],
    pinned: Sequence[str] = (),
) -> dict[str, Any]:
    """Merge defaults, the user's pass-through settings, and pinned settings.

    >>> client_config("b:9092", {"acks": "all", "linger.ms": 5}, {"linger.ms": "20"})
    {'acks': 'all', 'linger.ms': '20', 'bootstrap.servers': 'b:9092'}
    >>> client_config("b:9092", CONSUMER_DEFAULTS, {"enable.auto.commit": "true"},
    ...               PINNED_CONSUMER)["enable.auto.commit"]
    False
    """
    config = {**defaults, **extra, "bootstrap.servers": bootstrap_servers}
    for key in pinned:
        config[key] = defaults[key]
    return config


def split_errors(messages: Sequence[Message]) -> tuple[list[Message], list[KafkaError]]:
    """Separate data messages from error events; raise on fatal errors."""
    good: list[Message] = []
    errors: list[KafkaError] = []
    for msg in messages:
        err = msg.error()
        if err is None:
            good.append(msg)
        elif err.fatal():
            raise ServiceError(f"fatal Kafka error: {err.str()}")
        else:
            errors.append(err)
    return good, errors


def check_topics(consumer: Consumer, topics: Sequence[str], timeout_s: float = 10.0) -> None:
    """Fail fast, with one clear line, when the broker or a topic is missing."""
    try:
        metadata = consumer.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise ServiceError(f"Kafka broker unreachable: {exc.args[0].str()}") from exc
    missing = [t for t in topics if t not in metadata.topics]
    if missing:
        raise ServiceError(
            f"topic(s) {', '.join(missing)} do not exist on the broker; create them first"
        )


class ConfirmingProducer:
    """An idempotent producer whose :meth:`flush` confirms every delivery.

    Parameters
    ----------
    config : dict
        librdkafka producer settings (see :func:`client_config`).
    """

    def __init__(self, config: dict[str, Any]) -> None:
        self._producer = Producer(config)
        self._failures: list[str] = []

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            where = f"{msg.topic()}[{msg.partition()}]"
            log.error("delivery to %s failed: %s", where, err.str())
            self._failures.append(f"{where}: {err.str()}")

    def send(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: list[tuple[str, str | bytes | None]] | None = None,
        retries: int = 100,
    ) -> None:
        """Queue one message; on a full local queue, serve callbacks and retry (bounded)."""
        for _ in range(retries):
            try:
                self._producer.produce(
                    topic, value=value, key=key, headers=headers, on_delivery=self._on_delivery
                )
                break
            except BufferError:
                self._producer.poll(0.05)
        else:
            raise DeliveryError(f"local produce queue stayed full for topic {topic}")
        self._producer.poll(0)

    def flush(self, timeout_s: float) -> None:
        """Wait until the broker acknowledged everything queued so far.

        Raises
        ------
        DeliveryError
            If anything is still queued after ``timeout_s`` or a delivery failed;
            the caller must then not commit the input offsets.
        """
        deadline = time.monotonic() + timeout_s
        left = self._producer.flush(timeout_s)
        while left and time.monotonic() < deadline:
            left = self._producer.flush(max(deadline - time.monotonic(), 0.0))
        if left or self._failures:
            failures, self._failures = self._failures, []
            detail = failures[0] if failures else f"{left} message(s) unconfirmed"
            raise DeliveryError(f"broker did not confirm the batch's output: {detail}")

    def poll(self) -> None:
        """Serve delivery callbacks without blocking."""
        self._producer.poll(0)
