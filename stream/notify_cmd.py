"""``seismo notify``: deliver incident changes to webhooks, Slack and Alertmanager.

At least once, never blocking the stream:

1. The main loop reads the incidents topic; each change that
   :func:`~stream.sinks.should_deliver` passes is tried once per sink.
2. A failed delivery goes to the retry topic (headers: sink, attempt,
   not-before, last error), confirmed by the broker before the change's
   offset is committed.
3. A second consumer reads the retry topic, waits until each delivery is
   due (the delay doubles from ``backoff_s`` to ``max_backoff_s``), tries
   again, and after ``max_attempts`` (or at once on a 4xx other than 408/429,
   which no retry would fix) sends it to the dead topic.

Every delivery of one change carries the same idempotency key.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from confluent_kafka import Consumer, Message

from stream.incident_settings import NotifySettings
from stream.kafka_io import (
    PRODUCER_DEFAULTS,
    BrokerErrors,
    ConfirmingProducer,
    check_topics,
    client_config,
)
from stream.metrics import NotifyMetrics
from stream.sinks import (
    alertmanager_alerts,
    idempotency_key,
    should_deliver,
    sign,
    slack_message,
)

log = logging.getLogger(__name__)

H_SINK, H_ATTEMPT, H_NOT_BEFORE, H_ERROR = (
    "seismo-sink", "seismo-attempt", "seismo-not-before", "seismo-error"
)  # fmt: skip
#: HTTP statuses worth retrying; any other 4xx is final.
RETRYABLE_4XX = (408, 425, 429)


class SinkError(Exception):
    """A sink did not accept a delivery; ``final`` when retrying cannot help."""

    def __init__(self, reason: str, *, final: bool = False) -> None:
        super().__init__(reason)
        self.final = final


@dataclass(frozen=True)
class Request:
    url: str
    body: bytes
    headers: dict[str, str]


def build_request(sink: str, change: dict[str, Any], settings: NotifySettings) -> Request:
    """The HTTP request that delivers ``change`` to ``sink``."""
    key = {"Content-Type": "application/json", "Idempotency-Key": idempotency_key(change)}
    if sink == "webhook":
        body = orjson.dumps(change, option=orjson.OPT_SORT_KEYS)
        stamp = str(int(time.time()))
        headers = {**key, "X-Seismo-Timestamp": stamp}
        if settings.webhook_secret is not None:
            secret = settings.webhook_secret.get_secret_value().encode()
            headers["X-Seismo-Signature"] = sign(secret, stamp, body)
        return Request(str(settings.webhook_url), body, headers)
    if sink == "slack":
        return Request(str(settings.slack_url), orjson.dumps(slack_message(change)), key)
    if sink == "alertmanager":
        url = str(settings.alertmanager_url).rstrip("/") + "/api/v2/alerts"
        return Request(url, orjson.dumps(alertmanager_alerts(change)), key)
    raise ValueError(f"unknown sink {sink!r}")


def post(request: Request, timeout_s: float) -> None:
    """POST; raise :class:`SinkError` unless the sink answers 2xx."""
    http = urllib.request.Request(  # noqa: S310 (settings allow http(s) URLs only)
        request.url, data=request.body, headers=request.headers, method="POST"
    )
    try:
        with urllib.request.urlopen(http, timeout=timeout_s) as answer:  # noqa: S310 (http(s) only)
            answer.read()
    except urllib.error.HTTPError as exc:
        final = 400 <= exc.code < 500 and exc.code not in RETRYABLE_4XX
        raise SinkError(f"HTTP {exc.code}", final=final) from None
    except (urllib.error.URLError, OSError) as exc:
        raise SinkError(str(getattr(exc, "reason", exc))) from None


def retry_delay_s(attempt: int, settings: NotifySettings) -> float:
    """Delay before attempt ``attempt + 1``: ``backoff_s`` doubled each time, capped.

    >>> from stream.incident_settings import load
    >>> s = load(NotifySettings, {"webhook_url": "http://h/", "backoff_s": 1}, env={})
    >>> [retry_delay_s(n, s) for n in (1, 2, 3, 12)]
    [1.0, 2.0, 4.0, 300.0]
    """
    return min(settings.backoff_s * 2 ** (attempt - 1), settings.max_backoff_s)


def _header(message: Message, name: str) -> str | None:
    headers: list[tuple[str, bytes | None]] = list(message.headers() or [])  # type: ignore[arg-type]
    for key, value in headers:
        if key == name and value is not None:
            return value.decode()
    return None


class Notifier:
    """Deliveries and their retries; the Kafka clients are given (see :func:`run_notify`)."""

    def __init__(
        self, settings: NotifySettings, producer: ConfirmingProducer,
        send: Callable[[Request, float], None] = post,
        clock: Callable[[], float] = time.time,
        metrics: NotifyMetrics | None = None,
    ) -> None:  # fmt: skip
        self.settings, self.producer, self.send, self.clock = settings, producer, send, clock
        self.metrics = metrics or NotifyMetrics()
        self.delivered = 0
        self.failed = 0
        self._lock = threading.Lock()  # one producer, two loops

    def handle_change(self, value: bytes) -> None:
        """Try every sink once; failures go to the retry topic (confirmed)."""
        try:
            change = orjson.loads(value)
        except orjson.JSONDecodeError:
            log.warning("skipped a message that is no incident change")
            return
        if not isinstance(change, dict) or not should_deliver(change, self.settings.updates):
            return
        for sink in self.settings.sinks:
            self._attempt(sink, change, value, attempt=1)
        self._confirm()

    def handle_retry(self, message: Message, stop: threading.Event) -> None:
        """Wait until the delivery is due (or ``stop``), then try again."""
        sink = _header(message, H_SINK) or ""
        attempt = int(_header(message, H_ATTEMPT) or "1")
        due = int(_header(message, H_NOT_BEFORE) or "0") / 1000
        if stop.wait(max(0.0, due - self.clock())):
            raise InterruptedError("stopping")  # not committed: retried after a restart
        change = orjson.loads(message.value() or b"{}")
        self._attempt(sink, change, message.value() or b"", attempt=attempt + 1)
        self._confirm()

    def _attempt(self, sink: str, change: dict[str, Any], value: bytes, attempt: int) -> None:
        s = self.settings
        try:
            self.send(build_request(sink, change, s), s.timeout_s)
        except SinkError as exc:
            self.failed += 1
            self.metrics.failed.labels(sink).inc()
            headers: list[tuple[str, str | bytes | None]] = [
                (H_SINK, sink), (H_ATTEMPT, str(attempt)), (H_ERROR, str(exc))]  # fmt: skip
            key = idempotency_key(change).encode()
            with self._lock:
                if exc.final or attempt >= s.max_attempts:
                    log.error("%s: giving up %s after %d attempts (%s)", sink,
                              idempotency_key(change), attempt, exc)
                    self.producer.send(s.dead_topic, value, key, headers)
                    self.metrics.given_up.labels(sink).inc()
                    return
                due_ms = int((self.clock() + retry_delay_s(attempt, s)) * 1000)
                log.warning("%s: delivery of %s failed (%s); attempt %d at %d", sink,
                            idempotency_key(change), exc, attempt + 1, due_ms)
                self.producer.send(s.retry_topic, value, key,
                                   [*headers, (H_NOT_BEFORE, str(due_ms))])  # fmt: skip
            return
        self.delivered += 1
        self.metrics.delivered.labels(sink).inc()
        log.info("%s: delivered %s (%s)", sink, idempotency_key(change), change.get("status"))

    def _confirm(self) -> None:
        with self._lock:
            self.producer.flush(timeout_s=30)


def _consumer(settings: NotifySettings, group: str, errors: BrokerErrors, **extra: Any) -> Consumer:
    config = client_config(
        settings.bootstrap_servers,
        {"group.id": group, "enable.auto.commit": False, "auto.offset.reset": "earliest", **extra},
        settings.kafka_config,
    )
    return Consumer({**config, "error_cb": errors})


def _loop(consumer: Consumer, handle: Callable[[Message], None], stop: threading.Event) -> None:
    """Handle each message, then commit it; stop between messages."""
    while not stop.is_set():
        message = consumer.poll(0.5)
        if message is None:
            continue
        if message.error():
            log.warning("consume error: %s", message.error())
            continue
        try:
            handle(message)
        except InterruptedError:
            return
        consumer.commit(message=message, asynchronous=False)


def run_notify(settings: NotifySettings, stop: threading.Event) -> None:
    """Run both loops until ``stop``; the retry loop in a thread."""
    log.info("starting notifier (sinks: %s) with settings %s", ", ".join(settings.sinks),
             settings.redacted())
    errors = BrokerErrors()
    producer = ConfirmingProducer(
        client_config(settings.bootstrap_servers, PRODUCER_DEFAULTS, settings.kafka_config)
    )
    metrics = NotifyMetrics()
    if settings.metrics_port:
        metrics.serve(settings.metrics_port, settings.metrics_host)
    notifier = Notifier(settings, producer, metrics=metrics)
    main = _consumer(settings, settings.notify_group_id, errors)
    # A retry may wait max_backoff_s for its turn while its message is held.
    retry = _consumer(settings, settings.notify_group_id + "-retry", errors,
                      **{"max.poll.interval.ms": int((settings.max_backoff_s + 60) * 1000)})
    try:
        check_topics(main, [settings.incidents_topic, settings.retry_topic, settings.dead_topic],
                     errors=errors)  # fmt: skip
        main.subscribe([settings.incidents_topic])
        retry.subscribe([settings.retry_topic])
        worker = threading.Thread(
            target=_loop, args=(retry, lambda m: notifier.handle_retry(m, stop), stop),
            name="seismo-notify-retry", daemon=True,
        )  # fmt: skip
        worker.start()
        _loop(main, lambda m: notifier.handle_change(m.value() or b""), stop)
        worker.join(timeout=30)
    finally:
        main.close()
        retry.close()
        log.info("notifier stopped: %d delivered, %d failed attempts", notifier.delivered,
                 notifier.failed)
