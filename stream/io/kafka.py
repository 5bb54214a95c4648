"""Thin confluent-kafka wrappers: configs, a confirming producer, broker checks.

Every client seismo creates goes through :func:`client_config`, so the
user's ``--kafka-config`` settings (SASL, TLS, timeouts...) reach all of them,
and librdkafka's own log lines go through Python logging (logger
``seismo.librdkafka``) instead of raw to stderr, each kind of line at most
once per 10 s with a count of the repeats (:mod:`seismo.stream.io.log_throttle`).
``msg.error()`` is checked in one place: :func:`split_errors`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, libversion
from confluent_kafka.admin import ClusterMetadata

from seismo.stream.errors import DeliveryError, ServiceError
from seismo.stream.io.log_throttle import RdkafkaLog

log = logging.getLogger(__name__)
#: Where librdkafka's log lines go (served by the clients' poll/consume calls): to the
#: logger ``seismo.librdkafka``, repeats held back and counted.
RDKAFKA_LOG = RdkafkaLog(logging.getLogger("seismo.librdkafka"))
#: Longest single metadata request while :func:`check_topics` waits for a broker.
METADATA_SLICE_S = 0.25

#: librdkafka 2.4.0, the first with ``fetch.queue.backoff.ms``
#: (numbered as :func:`confluent_kafka.libversion` does).
FETCH_QUEUE_BACKOFF_SINCE = 0x02040000
#: seismo's ``fetch.queue.backoff.ms`` (librdkafka's default is 1 000).
FETCH_QUEUE_BACKOFF_MS = 10


def fetch_queue_defaults(libversion: int) -> dict[str, Any]:
    """``fetch.queue.backoff.ms`` 10 where librdkafka has the setting (else nothing).

    Once a partition's prefetched messages pass ``queued.min.messages`` (or
    ``queued.max.messages.kbytes``), librdkafka postpones its next fetch by
    ``fetch.queue.backoff.ms``, 1 000 ms by default. A consumer that reads
    slower than the fetcher, as a scorer does, passes that threshold again and
    again and waits a second each time (measured: +65 % events/s for JSON, +90 %
    for binary events with 0; ``docs/benchmarks.md``). With a short backoff the
    fetcher refills the queue soon after it drops below the threshold: memory
    stays bounded by the same thresholds, at the cost of more fetch requests.
    10 ms, not 0: 0 kept the throughput but raised the event-to-alert latency
    at half load (the fetcher and the scorer then contend for the two cores of
    the measuring machine); 10 ms kept both (``docs/benchmarks.md``, "The
    scorer's fetch queue backoff").

    >>> fetch_queue_defaults(0x020400FF), fetch_queue_defaults(0x020300FF)
    ({'fetch.queue.backoff.ms': 10}, {})
    """
    if libversion < FETCH_QUEUE_BACKOFF_SINCE:
        return {}
    return {"fetch.queue.backoff.ms": FETCH_QUEUE_BACKOFF_MS}


#: Consumer settings seismo relies on for at-least-once delivery, and the fetch backoff's.
CONSUMER_DEFAULTS: dict[str, Any] = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "auto.offset.reset": "earliest",
    "session.timeout.ms": 10_000,
    "enable.partition.eof": False,
    **fetch_queue_defaults(libversion()[1]),
}


def fetch_wait_ms(linger_ms: int) -> int:
    """The scorer's ``fetch.wait.max.ms``: never longer than it waits for a batch.

    A fetch that finds no new record is parked at the broker for up to
    ``fetch.wait.max.ms`` (librdkafka's default: 500 ms). Apache Kafka answers
    it as soon as a record arrives; Tansu answers it up to a fifth of the
    wait later (docs/kafka-compat.md). Capping the wait at the batch linger
    bounds that delay on any broker, for a few more empty fetches while a
    partition is idle.

    >>> fetch_wait_ms(50), fetch_wait_ms(2000), fetch_wait_ms(1)
    (50, 500, 10)
    """
    return max(10, min(linger_ms, 500))


#: Producer settings: idempotent, fully acknowledged.
PRODUCER_DEFAULTS: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "linger.ms": 5,
    # Java's (and Faust's) key hashing: a device's alerts and the incidents app's
    # table entry for it share a partition number (seismo.stream.incidents.app).
    "partitioner": "murmur2_random",
}
#: Errors of one record that sending it again cannot mend (too large, invalid).
REFUSED_FOR_GOOD = frozenset({
    KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.INVALID_MSG_SIZE, KafkaError.INVALID_RECORD,
    KafkaError.INVALID_MSG, KafkaError.RECORD_LIST_TOO_LARGE, KafkaError.INVALID_TIMESTAMP,
    KafkaError._INVALID_ARG, KafkaError._INVALID_TYPE,
})  # fmt: skip
#: Settings the scorer will not let a user override (they carry its guarantees).
PINNED_CONSUMER = ("enable.auto.commit", "enable.auto.offset.store")
#: How often librdkafka reports broker states to the health endpoints (ms).
STATS_INTERVAL_MS = 1000


def client_config(
    bootstrap_servers: str,
    defaults: Mapping[str, Any],
    extra: Mapping[str, Any],
    pinned: Sequence[str] = (),
) -> dict[str, Any]:
    """Merge defaults, the user's pass-through settings, and pinned settings.

    The ``logger`` entry sends librdkafka's log lines to :data:`RDKAFKA_LOG`.

    >>> config = client_config("b:9092", {"acks": "all", "linger.ms": 5}, {"linger.ms": "20"})
    >>> {k: v for k, v in config.items() if k != "logger"}
    {'acks': 'all', 'linger.ms': '20', 'bootstrap.servers': 'b:9092'}
    >>> client_config("b:9092", CONSUMER_DEFAULTS, {"enable.auto.commit": "true"},
    ...               PINNED_CONSUMER)["enable.auto.commit"]
    False
    """
    config = {"logger": RDKAFKA_LOG, **defaults, **extra, "bootstrap.servers": bootstrap_servers}
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


class BrokerErrors:
    """An ``error_cb`` that remembers whether librdkafka gave up on every broker.

    librdkafka retries unreachable brokers forever; the only early sign that
    none will answer is an ``_ALL_BROKERS_DOWN`` (or authentication, or fatal)
    error. Only the latest cause is kept, so a long-running client does not
    accumulate errors. Pass an instance as ``config["error_cb"]``.

    >>> errors = BrokerErrors()
    >>> errors(KafkaError(KafkaError._TRANSPORT, "b:1/bootstrap: Connection refused"))
    >>> errors.reason() is None
    True
    >>> errors(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))
    >>> errors.reason()
    'b:1/bootstrap: Connection refused'
    """

    DECISIVE = (KafkaError._ALL_BROKERS_DOWN, KafkaError._AUTHENTICATION)

    def __init__(self) -> None:
        self.cause: str | None = None
        self.decided = False

    def __call__(self, err: KafkaError) -> None:
        """Record one error event."""
        if err.code() != KafkaError._ALL_BROKERS_DOWN or self.cause is None:
            self.cause = err.str()
        self.decided = self.decided or err.code() in self.DECISIVE or err.fatal()

    def reason(self) -> str | None:
        """Why no broker can be used, once librdkafka is sure of it; else ``None``."""
        return self.cause if self.decided else None


def cluster_metadata(
    client: Consumer | Producer, timeout_s: float, errors: BrokerErrors | None = None
) -> ClusterMetadata:
    """The cluster's metadata, waiting at most ``timeout_s``.

    The wait is cut into short requests; between them the client's callbacks
    are served, so with ``errors`` (the client's ``error_cb``) an unreachable
    cluster is reported as soon as librdkafka finds every broker down, not
    only when the time is up. Call it before a consumer subscribes: serving
    callbacks polls the client.

    Raises
    ------
    ServiceError
        No broker answered: every one is down, or ``timeout_s`` passed.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        left = deadline - time.monotonic()
        try:
            return client.list_topics(timeout=max(min(left, METADATA_SLICE_S), 0.001))
        except KafkaException as exc:
            client.poll(0)  # serves error_cb and the log lines
            reason = errors.reason() if errors is not None else None
            if reason is None and time.monotonic() < deadline:
                continue
            detail = reason or f"no metadata within {timeout_s:g} s ({exc.args[0].str()})"
            RDKAFKA_LOG.flush()  # the counts of the lines held back, before the one error
            raise ServiceError(f"Kafka broker unreachable: {detail}") from exc


def check_topics(
    consumer: Consumer | Producer,
    topics: Sequence[str] | Mapping[str, str],
    timeout_s: float = 10.0,
    errors: BrokerErrors | None = None,
) -> None:
    """Fail fast, with one clear line, when the broker or a topic is missing.

    ``topics`` may map each topic to the option that named it, which the line then
    names. Waits at most ``timeout_s`` for the broker (see :func:`cluster_metadata`).
    """
    metadata = cluster_metadata(consumer, timeout_s, errors)
    missing = [t for t in topics if t not in metadata.topics]
    if missing:
        raise ServiceError(missing_topics(missing, topics))


def missing_topics(missing: Sequence[str], topics: Sequence[str] | Mapping[str, str]) -> str:
    """The line for topics the broker does not have, each with its option when known.

    >>> print(missing_topics(["anomalies"], {"events": "--input-topic",
    ...                                      "anomalies": "--alerts-topic"}))
    topic(s) anomalies (--alerts-topic) do not exist on the broker; create them first \
(kafka-topics.sh --create; the local stack creates its topics at seismo dev up, named by \
its --*-topic options)
    """
    named = [f"{t} ({topics[t]})" if isinstance(topics, Mapping) else t for t in missing]
    return (f"topic(s) {', '.join(named)} do not exist on the broker; create them first "
            "(kafka-topics.sh --create; the local stack creates its topics at seismo dev up, "
            "named by its --*-topic options)")


class ConfirmingProducer:
    """An idempotent producer whose :meth:`flush` confirms every delivery.

    Parameters
    ----------
    config : dict
        librdkafka producer settings (see :func:`client_config`).
    """

    def __init__(self, config: dict[str, Any]) -> None:
        self.errors = BrokerErrors()
        self._producer = Producer({**config, "error_cb": self.errors})
        self._failures: list[str] = []
        self._refused: list[tuple[object, str]] = []
        self._abandoned = False

    def check_broker(
        self, topics: Sequence[str] | Mapping[str, str] = (), timeout_s: float = 10.0
    ) -> None:
        """Fail fast, with one clear line, when no broker answers or a topic is missing."""
        check_topics(self._producer, topics, timeout_s, self.errors)

    def close(self, timeout_s: float = 5.0) -> int:
        """Deliver what is still queued, for at most ``timeout_s``; this producer is not
        used again. Returns the number of messages left undelivered (0 after a
        confirmed batch: the scorer only commits what the broker confirmed)."""
        if self._abandoned:
            return 0
        left = int(self._producer.flush(timeout_s))
        self._abandoned = True
        return left

    def abandon(self) -> None:
        """Drop everything queued or in flight: this producer will not be used again.

        For a producer that could not confirm a batch (a fatal idempotence
        error, a broker that came back without its state): the caller makes a
        new one and publishes the batch again.
        """
        self._abandoned = True
        self._producer.purge(in_queue=True, in_flight=True)
        self._producer.flush(0)
        self._failures = []
        self._refused = []

    def _failed(self, where: str, err: KafkaError, tag: object) -> None:
        if not self._failures:  # the first of a batch; flush() reports how many
            log.error("delivery to %s failed: %s", where, err.str())
        self._failures.append(f"{where}: {err.str()}")
        if tag is not None and err.code() in REFUSED_FOR_GOOD:
            self._refused.append((tag, err.str()))

    def _on_delivery(self, err: KafkaError | None, msg: Message, tag: object = None) -> None:
        if err is not None and not self._abandoned:
            self._failed(f"{msg.topic()}[{msg.partition()}]", err, tag)

    def send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        headers: list[tuple[str, str | bytes | None]] | None = None,
        retries: int = 100,
        tag: object = None,
        timestamp: int | None = None,
    ) -> None:
        """Queue one message; on a full local queue, serve callbacks and retry (bounded).

        ``timestamp`` (epoch ms) sets the message's Kafka timestamp (default: now).

        A record the client refuses at once (larger than ``message.max.bytes``,
        an unknown topic...) is not raised here: like a failed delivery, it
        makes :meth:`flush` raise, and with a ``tag`` a refusal for good is
        named in :attr:`DeliveryError.refused` as ``(tag, error)``.
        """
        on_delivery = self._on_delivery if tag is None else partial(self._on_delivery, tag=tag)
        for _ in range(retries):
            try:
                self._producer.produce(
                    topic, value=value, key=key, headers=headers, on_delivery=on_delivery,
                    timestamp=timestamp or 0,
                )
                break
            except BufferError:
                self._producer.poll(0.05)
            except KafkaException as exc:
                self._failed(topic, exc.args[0], tag)
                break
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
        try:
            left = self._producer.flush(timeout_s)
            while left and time.monotonic() < deadline:
                left = self._producer.flush(max(deadline - time.monotonic(), 0.0))
        except (KafkaException, SystemError, RuntimeError) as exc:
            # A fatal producer error (an idempotent producer after its broker lost its
            # state: "out of order sequence number") can surface from flush as a bare
            # SystemError of confluent-kafka: this producer is done, the caller makes a
            # new one and publishes the batch again, as for any unconfirmed output.
            self._failures, self._refused = [], []
            raise DeliveryError(f"broker did not confirm the batch's output: the producer "
                                f"failed ({type(exc).__name__}: {exc})") from exc
        if left or self._failures:
            failures, self._failures = self._failures, []
            refused, self._refused = tuple(self._refused), []
            if failures:
                more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
                detail = failures[0] + more
            else:
                detail = f"{left} message(s) unconfirmed"
            raise DeliveryError(f"broker did not confirm the batch's output: {detail}", refused)

    def poll(self) -> None:
        """Serve delivery callbacks without blocking."""
        self._producer.poll(0)
