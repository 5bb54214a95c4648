"""``seismo notify``: deliver incident changes to webhooks, Slack and Alertmanager.

At least once, never blocking the stream:

1. The main loop reads the incidents topic; each change that
   :func:`~seismo.stream.incidents.sinks.should_deliver` passes is tried once per sink.
2. A failed delivery goes to the retry topic (headers: sink, attempt,
   not-before, last error), confirmed by the broker before the change's
   offset is committed.
3. A second consumer reads the retry topic, waits until each delivery is
   due (the delay doubles from ``backoff_s`` to ``max_backoff_s``), tries
   again, and after ``max_attempts`` (or at once on a 4xx other than 408/429,
   which no retry would fix) sends it to the dead topic.

Every delivery of one change carries the same idempotency key.

One message never stops either loop: a change that is no JSON object or
lacks a field the sinks need (:func:`seismo.stream.incidents.sinks.change_problem`), a retry
whose headers are unreadable, or any other error while handling one message,
sends that message to the dead topic with the scorer's dead-letter headers
(``seismo-error``: the reason; ``seismo-source-topic``, ``-partition``,
``-offset``: where it was read), confirmed by the broker, then its offset is
committed; it is counted (``seismo_notify_malformed_total``) and logged once.
Errors of the broker itself (a delivery not confirmed within :data:`FLUSH_S`:
a broker away, or one that restarted empty, whose answers an idempotent
producer never gets past) stop both loops and the process with an ERROR
line; started again, it resumes from the last committed offset.
"""

from __future__ import annotations

import base64
import http.client
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import orjson
from confluent_kafka import Consumer, KafkaException, Message
from prometheus_client import Counter

from seismo.stream.config.incident_settings import NotifySettings
from seismo.stream.errors import SeismoError
from seismo.stream.incidents.sinks import (
    Change,
    alertmanager_alerts,
    change_problem,
    idempotency_key,
    should_deliver,
    sign,
    slack_message,
)
from seismo.stream.io.http_deadline import open_within
from seismo.stream.io.kafka import (
    PRODUCER_DEFAULTS,
    BrokerErrors,
    ConfirmingProducer,
    check_topics,
    client_config,
    split_errors,
)
from seismo.stream.io.metrics import NotifyMetrics
from seismo.stream.scoring.alerts import Source, dead_letter_headers
from seismo.stream.scoring.codec import header_pairs, message_headers

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

    def __repr__(self) -> str:
        """Without the URL: it is a secret (a Slack or webhook token in its path)."""
        return f"Request(<{len(self.body)} bytes>)"


def split_credentials(url: str) -> tuple[str, dict[str, str]]:
    """A URL's user and password moved into an ``Authorization: Basic`` header.

    urllib does not send the user part of a URL; Alertmanager behind basic
    authentication (``https://user:password@host``) needs the header.

    >>> split_credentials("https://bob:s3cr%40t@am.example:9093/x")
    ('https://am.example:9093/x', {'Authorization': 'Basic Ym9iOnMzY3JAdA=='})
    >>> split_credentials("http://h/x")
    ('http://h/x', {})
    """
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, {}
    user, password = unquote(parts.username or ""), unquote(parts.password or "")
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    bare = parts._replace(netloc=parts.netloc.rpartition("@")[2])
    return urlunsplit(bare), {"Authorization": f"Basic {token}"}


def build_request(sink: str, change: Change, settings: NotifySettings) -> Request:
    """The HTTP request that delivers ``change`` to ``sink`` (a configured one)."""
    url, auth = split_credentials(settings.sink_url(sink))
    key = {"Content-Type": "application/json", "Idempotency-Key": idempotency_key(change), **auth}
    if sink == "webhook":
        body = orjson.dumps(change, option=orjson.OPT_SORT_KEYS)
        stamp = str(int(time.time()))
        headers = {**key, "X-Seismo-Timestamp": stamp}
        if settings.webhook_secret is not None:
            secret = settings.webhook_secret.get_secret_value().encode()
            headers["X-Seismo-Signature"] = sign(secret, stamp, body)
        return Request(url, body, headers)
    if sink == "slack":
        return Request(url, orjson.dumps(slack_message(change)), key)
    return Request(url.rstrip("/") + "/api/v2/alerts", orjson.dumps(alertmanager_alerts(change)),
                   key)  # fmt: skip


def post(request: Request, timeout_s: float) -> None:
    """POST; raise :class:`SinkError` unless the sink answers 2xx within ``timeout_s``.

    A redirect (3xx) is not followed and fails for good: urllib would send
    the change on as a GET without its body, with its credentials and
    signature, to whatever host the sink names.

    ``timeout_s`` bounds the whole request, however slowly the sink sends
    its answer (:func:`~seismo.stream.io.http_deadline.open_within`). Once a
    2xx status is in, the change counts as delivered: the rest of the answer
    is read and dropped (at most :data:`MAX_ANSWER_BYTES`, until the time is
    up), and an error while reading it changes nothing.

    The reason never holds the URL (a secret): an HTTP status, or the
    network error (refused, timed out, TLS...).
    """
    outgoing = urllib.request.Request(  # noqa: S310 (settings allow http(s) URLs only)
        request.url, data=request.body, headers=request.headers, method="POST"
    )
    try:
        with open_within(outgoing, timeout_s) as answer:
            drain(answer)
    except urllib.error.HTTPError as exc:
        if 300 <= exc.code < 400:  # not followed (open_within): no retry would change that
            raise SinkError(f"HTTP {exc.code}: redirect not followed; configure the URL it "
                            "points to", final=True) from None  # fmt: skip
        final = 400 <= exc.code < 500 and exc.code not in RETRYABLE_4XX
        raise SinkError(f"HTTP {exc.code}", final=final) from None
    except (urllib.error.URLError, OSError) as exc:
        raise SinkError(str(getattr(exc, "reason", exc))) from None
    except http.client.HTTPException as exc:  # a sink that answers no HTTP
        raise SinkError(f"bad answer: {type(exc).__name__}") from None


#: Most bytes of a sink's answer read (and dropped) after its 2xx status.
MAX_ANSWER_BYTES = 1 << 20

#: Seconds the broker has to confirm what one change or retry produced (the retry or dead
#: topic) before the notifier stops unconfirmed, to resume from the last committed change.
FLUSH_S = 30.0


def drain(answer: Any, limit: int = MAX_ANSWER_BYTES) -> None:
    """Read and drop a 2xx answer's body until it ends, fails or ``limit`` bytes.

    The request's deadline ends a body that trickles (the read in progress
    fails or ends); the status already said the sink took the change.

    >>> import io
    >>> drain(io.BufferedReader(io.BytesIO(b"x" * 10)))
    """
    read = 0
    try:
        while read < limit:
            chunk = answer.read1(65536)
            if not chunk:
                return
            read += len(chunk)
    except (OSError, http.client.HTTPException):
        return


def retry_delay_s(attempt: int, settings: NotifySettings) -> float:
    """Delay before attempt ``attempt + 1``: ``backoff_s`` doubled each time, capped.

    >>> from seismo.stream.config.loader import load
    >>> s = load(NotifySettings, {"webhook_url": "http://h/", "backoff_s": 1}, env={})
    >>> [retry_delay_s(n, s) for n in (1, 2, 3, 12)]
    [1.0, 2.0, 4.0, 300.0]
    """
    return min(settings.backoff_s * 2 ** (attempt - 1), settings.max_backoff_s)


def parse_change(value: bytes | None) -> tuple[Change | None, str | None]:
    """The incident change in a message value, or why it is none.

    >>> parse_change(b'{"status": "open"}')
    (None, 'missing field incident_id')
    >>> parse_change(b"\\xff"), parse_change(None)
    ((None, 'invalid JSON'), (None, 'invalid JSON'))
    """
    try:
        change = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None, "invalid JSON"
    problem = change_problem(change)
    return (None, problem) if problem else (change, None)


def _header(message: Message, name: str) -> str | None:
    # read through message_headers: a header name that is not UTF-8 must not halt notify
    for key, value in header_pairs(message_headers(message)):
        if key == name and value is not None:
            return value.decode() if isinstance(value, bytes) else value
    return None


def retry_of(message: Message, sinks: list[str]) -> tuple[str, int, float]:
    """``(sink, attempt, due)`` of a retry-topic message; ``ValueError`` if unreadable."""
    sink = _header(message, H_SINK) or ""
    if sink not in sinks:
        raise ValueError(f"sink {sink[:40]!r} is not configured")
    attempt = int(_header(message, H_ATTEMPT) or "1")
    due = int(_header(message, H_NOT_BEFORE) or "0") / 1000
    return sink, attempt, due


def source_of(message: Message) -> Source:
    """Where a consumed message was read (for its dead-letter headers)."""
    return Source(message.topic() or "", message.partition() or 0, message.offset() or 0)


def failure_reason(exc: BaseException) -> str:
    """The dead-letter reason of an unexpected error while handling one message.

    >>> failure_reason(KeyError("status")), failure_reason(ValueError("bad\\nline"))
    ("cannot handle: KeyError: 'status'", 'cannot handle: ValueError: bad line')
    """
    return f"cannot handle: {_one_line(exc)}"


def _one_line(exc: BaseException) -> str:
    words = " ".join(str(exc).split())[:200]
    return f"{type(exc).__name__}: {words}" if words else type(exc).__name__


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
        self.malformed = Counter(
            "seismo_notify_malformed",
            "Messages that could not be handled (no incident change, unreadable retry), "
            "sent to the dead topic with their reason.",
            registry=self.metrics.registry,
        )  # fmt: skip
        self.delivered = 0
        self.failed = 0
        self.dead_lettered = 0
        self._lock = threading.Lock()  # one producer, two loops

    def handle_change(self, message: Message) -> None:
        """Try every sink once; failures go to the retry topic (confirmed).

        A message that is no deliverable change goes to the dead topic instead.
        """
        value = message.value() or b""
        change, problem = parse_change(value)
        if change is None:
            self.dead_letter(message, problem or "no incident change")
            return
        if not should_deliver(change, self.settings.updates):
            return
        for sink in self.settings.sinks:
            self._attempt(sink, change, value, attempt=1)
        self._confirm()

    def handle_retry(self, message: Message, stop: threading.Event) -> None:
        """Wait until the delivery is due (or ``stop``), then try again."""
        try:
            sink, attempt, due = retry_of(message, self.settings.sinks)
        except ValueError as exc:  # UnicodeDecodeError included
            self.dead_letter(message, f"unreadable retry: {_one_line(exc)}")
            return
        change, problem = parse_change(message.value())
        if change is None:
            self.dead_letter(message, problem or "no incident change")
            return
        if stop.wait(max(0.0, due - self.clock())):
            raise InterruptedError("stopping")  # not committed: retried after a restart
        self._attempt(sink, change, message.value() or b"", attempt=attempt + 1)
        self._confirm()

    def handle_safely(self, handle: Callable[[Message], None], message: Message) -> None:
        """``handle(message)``; any error of that message alone dead-letters it.

        Errors of the broker (:class:`~seismo.stream.errors.SeismoError`, such as a
        delivery not confirmed, and ``KafkaException``) are no fault of the
        message: they are raised, and the message is not committed.
        """
        try:
            handle(message)
        except (InterruptedError, SeismoError, KafkaException):
            raise
        except Exception as exc:  # noqa: BLE001 - one message must never stop the loop
            log.error("cannot handle %s:%d:%d", message.topic(), message.partition() or 0,
                      message.offset() or 0, exc_info=True)  # fmt: skip
            self.dead_letter(message, failure_reason(exc), logged=True)

    def dead_letter(self, message: Message, reason: str, *, logged: bool = False) -> None:
        """Send ``message`` to the dead topic with ``reason``, confirmed; count it, log it."""
        src = source_of(message)
        headers: list[tuple[str, str | bytes | None]] = list(dead_letter_headers(reason, src))
        with self._lock:
            self.producer.send(self.settings.dead_topic, message.value(), message.key(), headers)
            self.producer.flush(timeout_s=FLUSH_S)
        self.dead_lettered += 1
        self.malformed.inc()
        if not logged:
            log.warning("sent %s:%d:%d to %s: %s", src.topic, src.partition, src.offset,
                        self.settings.dead_topic, reason)  # fmt: skip

    def _attempt(self, sink: str, change: Change, value: bytes, attempt: int) -> None:
        s = self.settings
        try:
            try:
                request = build_request(sink, change, s)
            except Exception as exc:  # noqa: BLE001 - a change no check foresaw
                raise SinkError(failure_reason(exc), final=True) from exc
            self.send(request, s.timeout_s)
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
            self.producer.flush(timeout_s=FLUSH_S)


def _consumer(settings: NotifySettings, group: str, errors: BrokerErrors, **extra: Any) -> Consumer:
    config = client_config(
        settings.bootstrap_servers,
        {"group.id": group, "enable.auto.commit": False, "auto.offset.reset": "earliest", **extra},
        settings.kafka_config,
    )
    return Consumer({**config, "error_cb": errors})


def _loop(consumer: Consumer, handle: Callable[[Message], None], stop: threading.Event) -> None:
    """Handle each message, then commit it; stop between messages.

    ``handle`` deals with the message's own errors (:meth:`Notifier.handle_safely`);
    what it raises stops the loop, uncommitted.
    """
    while not stop.is_set():
        polled = consumer.poll(0.5)
        if polled is None:
            continue
        good, errors = split_errors([polled])
        if errors:
            log.warning("consume error: %s", errors[0].str())
            continue
        message = good[0]
        try:
            handle(message)
        except InterruptedError:
            return
        consumer.commit(message=message, asynchronous=False)


def run_notify(settings: NotifySettings, stop: threading.Event) -> None:
    """Run both loops until ``stop``; the retry loop in a thread. Either loop's failure
    sets ``stop`` (ending the other) and is raised."""
    log.info("starting notifier (sinks: %s) on %s", ", ".join(settings.sinks),
             settings.incidents_topic)  # fmt: skip
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
    worker: threading.Thread | None = None
    failed: list[BaseException] = []

    def retry_loop() -> None:
        try:
            _loop(retry, on_retry, stop)
        except BaseException as exc:  # the broker did not confirm: the notifier stops
            failed.append(exc)
            stop.set()

    def on_retry(message: Message) -> None:
        notifier.handle_safely(lambda m: notifier.handle_retry(m, stop), message)

    try:
        check_topics(main, {settings.incidents_topic: "--incidents-topic",
                            settings.retry_topic: "--retry-topic",
                            settings.dead_topic: "--dead-topic"}, errors=errors)  # fmt: skip
        log.info("notifier started with settings %s", settings.redacted())
        main.subscribe([settings.incidents_topic])
        retry.subscribe([settings.retry_topic])
        worker = threading.Thread(target=retry_loop, name="seismo-notify-retry", daemon=True)
        worker.start()
        try:
            _loop(main, lambda m: notifier.handle_safely(notifier.handle_change, m), stop)
        except BaseException as exc:
            failed.insert(0, exc)
        finally:
            stop.set()  # either loop's end ends the other (a delivery may take FLUSH_S)
            worker.join(timeout=settings.timeout_s + FLUSH_S + 5)  # a delivery, then its flush
        if failed:
            if isinstance(failed[0], Exception):
                log.error("notifier stopping: %s; started again, it resumes from the last "
                          "committed change", _one_line(failed[0]))  # fmt: skip
            raise failed[0]
    finally:
        main.close()
        if worker is not None and worker.is_alive():  # closing it under a poll never returns
            log.warning("the retry loop did not stop within %.0f s; its consumer is left "
                        "to the process's exit", settings.timeout_s + FLUSH_S + 5)  # fmt: skip
        else:
            retry.close()
        log.info("notifier stopped: %d delivered, %d failed attempts, %d dead-lettered",
                 notifier.delivered, notifier.failed, notifier.dead_lettered)  # fmt: skip
