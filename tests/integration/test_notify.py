"""``seismo notify`` against real local HTTP servers and the real broker.

Each sink gets the request it documents (signature, idempotency key, Slack
text, Alertmanager's v2 body); a failing sink is retried with doubling delays
through the retry topic while the other sinks and the stream go on; a sink
that refuses for good sends the delivery to the dead topic. A message that is
no incident change goes to the dead topic with its reason, and the next one is
delivered; sink URLs never reach the logs.
"""

from __future__ import annotations

import hashlib
import hmac
import ssl
import threading
import time

import orjson
import pytest
from confluent_kafka import Producer

from seismo.stream.config.incident_settings import NotifySettings
from seismo.stream.config.loader import load
from seismo.stream.incidents.notify import H_ATTEMPT, H_ERROR, H_SINK, run_notify
from seismo.stream.local.embedded import free_port
from seismo.stream.scoring.alerts import H_OFFSET, H_PARTITION, H_TOPIC
from tests.http_sinks import Sink
from tests.kafka_tools import committed, create_topics, read_topic
from tests.pipes import metric, wait_for


def metric_by_sink(port: int, name: str) -> dict[str, float]:
    """``{sink: value}`` of a labelled counter on a notifier's /metrics."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as page:
        text = page.read().decode()
    return {s.labels["sink"]: s.value for f in text_string_to_metric_families(text)
            for s in f.samples if s.name == name}  # fmt: skip

pytestmark = pytest.mark.kafka

SECRET = "hook-secret"


def change(status: str, seq: int, **extra) -> dict:
    return {"incident_id": "inc-abc", "device_id": "pump-3", "status": status, "seq": seq,
            "severity": "warning", "alert_count": 3 + seq, "max_zscore": 7.0,
            "opened_at": 1_764_547_200_000, "resolved_at": None, "updated_at": 0,
            "channels": ["rpm"], "top_features": [{"name": "rpm", "error": 2.0}],
            "model_version": "v1", "silenced": False, "silence_reason": None,
            "severity_changed": False, **extra}  # fmt: skip


@pytest.fixture
def topics(kafka_bootstrap: str, topic_name: str) -> dict[str, str]:
    names = {k: f"{topic_name}-{k}" for k in ("incidents", "retry", "dead")}
    create_topics(kafka_bootstrap, {name: 1 for name in names.values()})
    return names


def publish(bootstrap: str, topic: str, changes: list[dict]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for c in changes:
        producer.produce(topic, orjson.dumps(c), c["device_id"].encode())
    assert producer.flush(10) == 0


@pytest.fixture
def notifier(kafka_bootstrap, topics, group_id):
    """Start ``run_notify`` in a thread with the given sinks; stopped after the test."""
    started: list[tuple[threading.Thread, threading.Event]] = []

    def start(**sinks) -> int:
        """Start a notifier; return its metrics port."""
        port = free_port()
        settings = load(NotifySettings, {
            "bootstrap_servers": kafka_bootstrap, "incidents_topic": topics["incidents"],
            "retry_topic": topics["retry"], "dead_topic": topics["dead"],
            "notify_group_id": group_id, "backoff_s": 0.5, "max_attempts": 4,
            "timeout_s": 2, "kafka_config": {"session.timeout.ms": "6000"},
            "metrics_port": port, **sinks}, env={})  # fmt: skip
        halt = threading.Event()
        thread = threading.Thread(target=run_notify, args=(settings, halt), daemon=True)
        thread.start()
        started.append((thread, halt))
        return port

    yield start
    for thread, halt in started:
        halt.set()
        thread.join(30)
        assert not thread.is_alive()


def test_each_sink_gets_its_request_and_a_failing_one_is_retried_with_backoff(
    kafka_bootstrap, topics, notifier
):
    def fails_twice(request, earlier) -> int:
        """The opening change is refused twice; the stream must not wait for it."""
        key = request.headers["Idempotency-Key"]
        tries = sum(r.headers["Idempotency-Key"] == key for r in earlier)
        return 503 if key == "inc-abc:0" and tries < 2 else 200

    with Sink(fails_twice) as hook, Sink() as slack, Sink() as manager:
        port = notifier(webhook_url=hook.url + "/in", webhook_secret=SECRET,
                        slack_url=slack.url, alertmanager_url=manager.url)  # fmt: skip
        publish(kafka_bootstrap, topics["incidents"], [
            change("open", 0), change("update", 1),  # no severity change: not delivered
            change("update", 2, severity="critical", severity_changed=True),
            change("update", 3, silenced=True, silence_reason="maintenance"),
            change("resolved", 4, resolved_at=1_764_547_500_000)])  # fmt: skip
        assert wait_for(lambda: len(hook.received) >= 5 and len(manager.received) >= 3, 60), (
            len(hook.received), len(manager.received))
        expected = {"webhook": 3, "slack": 3, "alertmanager": 3}

        def counters() -> dict[str, dict[str, float]]:
            return {name: metric_by_sink(port, name) for name in (
                "seismo_notify_delivered_total", "seismo_notify_failed_total")}  # fmt: skip

        # the counters follow the deliveries a moment later
        wait_for(lambda: counters()["seismo_notify_delivered_total"] == expected, 10)
        counted = counters()

    assert counted["seismo_notify_delivered_total"] == {"webhook": 3, "slack": 3,
                                                        "alertmanager": 3}  # fmt: skip
    assert counted["seismo_notify_failed_total"] == {"webhook": 2}
    # The webhook: the open change three times (two 503s), the other two once each,
    # delivered while the first one waited for its retries.
    keys = [r.headers["Idempotency-Key"] for r in hook.received]
    assert sorted(keys) == ["inc-abc:0"] * 3 + ["inc-abc:2", "inc-abc:4"], keys
    assert keys.index("inc-abc:4") < len(keys) - 1, "the stream did not wait for the retries"
    opens = [r for r in hook.received if r.headers["Idempotency-Key"] == "inc-abc:0"]
    gaps = [b.at - a.at for a, b in zip(opens, opens[1:], strict=False)]
    assert gaps[0] >= 0.5 and gaps[1] >= 1.0, gaps  # doubling from backoff_s
    for request in hook.received:
        stamp, body = request.headers["X-Seismo-Timestamp"], request.body
        expected = hmac.new(SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256)
        assert request.headers["X-Seismo-Signature"] == "sha256=" + expected.hexdigest()
        assert request.path == "/in" and request.json()["incident_id"] == "inc-abc"
    # Slack and Alertmanager: each change once, in order, never the silenced one.
    assert [r.json()["text"].split()[1] for r in slack.received] == [
        "[WARNING]", "[CRITICAL]", "[WARNING]"]  # fmt: skip
    assert {r.path for r in manager.received} == {"/api/v2/alerts"}
    alerts = [r.json()[0] for r in manager.received]
    assert [a["labels"]["severity"] for a in alerts] == ["warning", "critical", "warning"]
    assert [("endsAt" in a) for a in alerts] == [False, False, True]
    assert alerts[2]["endsAt"] == "2025-12-01T00:05:00Z"
    retries = read_topic(kafka_bootstrap, topics["retry"], until=lambda r: len(r) >= 2)
    assert [r.headers[H_ATTEMPT] for r in retries] == [b"1", b"2"]
    print(f"\nwebhook: {len(hook.received)} requests, retry gaps {gaps[0]:.2f} s and"
          f" {gaps[1]:.2f} s; slack {len(slack.received)}, alertmanager {len(manager.received)}")


def test_a_sink_that_refuses_for_good_sends_the_delivery_to_the_dead_topic(
    kafka_bootstrap, topics, notifier
):
    with Sink(lambda _r, _earlier: 400) as hook:
        notifier(webhook_url=hook.url)
        publish(kafka_bootstrap, topics["incidents"], [change("open", 0)])
        dead = read_topic(kafka_bootstrap, topics["dead"], until=lambda r: len(r) >= 1)
    assert len(hook.received) == 1, "a 400 is not retried"
    assert dead[0].headers[H_SINK] == b"webhook" and dead[0].headers[H_ERROR] == b"HTTP 400"
    assert orjson.loads(dead[0].value)["incident_id"] == "inc-abc"


def test_an_unreachable_sink_is_given_up_after_max_attempts(kafka_bootstrap, topics, notifier):
    with Sink() as closed:
        url = closed.url
    notifier(webhook_url=url)  # nothing listens there any more
    publish(kafka_bootstrap, topics["incidents"], [change("open", 0)])
    dead = read_topic(kafka_bootstrap, topics["dead"], until=lambda r: len(r) >= 1, timeout_s=60)
    assert dead[0].headers[H_ATTEMPT] == b"4"
    retries = read_topic(kafka_bootstrap, topics["retry"], until=lambda r: len(r) >= 3)
    assert [r.headers[H_ATTEMPT] for r in retries] == [b"1", b"2", b"3"]


def test_a_malformed_change_is_dead_lettered_with_its_reason_and_the_next_is_delivered(
    kafka_bootstrap, topics, notifier, group_id
):
    """Poison pills on both topics: the loops carry on, each bad message in the dead topic."""
    no_status = {k: v for k, v in change("open", 0).items() if k != "status"}
    with Sink() as hook:
        port = notifier(webhook_url=hook.url)
        producer = Producer({"bootstrap.servers": kafka_bootstrap})
        producer.produce(topics["incidents"], b"\xffnot json", b"pump-3")
        producer.produce(topics["incidents"], orjson.dumps(no_status), b"pump-3")
        producer.produce(topics["incidents"], orjson.dumps({**change("open", 0), "seq": "0"}))
        producer.produce(topics["retry"], orjson.dumps(change("open", 0)),
                         headers=[(H_SINK, b"\xff\xfe"), (H_ATTEMPT, b"1")])  # fmt: skip
        producer.produce(topics["incidents"], orjson.dumps(change("open", 7)), b"pump-3")
        assert producer.flush(10) == 0
        assert wait_for(lambda: len(hook.received) >= 1, 30), "the valid change after them"
        dead = read_topic(kafka_bootstrap, topics["dead"], until=lambda r: len(r) >= 4)
        assert wait_for(lambda: committed(kafka_bootstrap, group_id, topics["incidents"])
                        == {0: 4}, 15), "every message committed, the bad ones included"
        malformed = metric(port, "seismo_notify_malformed_total")
    assert [r.headers["Idempotency-Key"] for r in hook.received] == ["inc-abc:7"]
    reasons = {(r.headers[H_TOPIC].decode(), int(r.headers[H_OFFSET])): r.headers[H_ERROR]
               for r in dead}  # fmt: skip
    assert reasons == {
        (topics["incidents"], 0): b"invalid JSON",
        (topics["incidents"], 1): b"missing field status",
        (topics["incidents"], 2): b"field seq is not int",
        (topics["retry"], 0): b"unreadable retry: UnicodeDecodeError: 'utf-8' codec can't "
                              b"decode byte 0xff in position 0: invalid start byte",
    }, reasons  # fmt: skip
    assert all(r.headers[H_PARTITION] == b"0" for r in dead)
    by_offset = {int(r.headers[H_OFFSET]): r for r in dead
                 if r.headers[H_TOPIC] == topics["incidents"].encode()}  # fmt: skip
    assert by_offset[0].value == b"\xffnot json" and by_offset[0].key == b"pump-3"
    assert malformed == 4


def test_sink_urls_never_reach_the_logs_and_slack_text_is_escaped(
    kafka_bootstrap, topics, notifier, caplog
):
    token = "T0SECRET/B0SECRET/xoxb-" + topics["dead"]
    evil = "<!channel> <https://evil.example|click>\n:white_check_mark: & fine"
    with caplog.at_level("DEBUG"), Sink() as slack, Sink(lambda _r, _e: 500) as hook:
        notifier(slack_url=f"{slack.url}/services/{token}",
                 webhook_url=f"http://user:pa55word@127.0.0.1:{hook.url.rsplit(':', 1)[1]}"
                             f"/hook/{token}?token={token}")  # fmt: skip
        publish(kafka_bootstrap, topics["incidents"], [change("open", 0, device_id=evil)])
        assert wait_for(lambda: len(slack.received) >= 1 and len(hook.received) >= 2, 30)
    assert slack.received[0].path == f"/services/{token}"
    # The user part of a URL becomes basic authentication (and a failure is logged).
    assert hook.received[0].headers["Authorization"] == "Basic dXNlcjpwYTU1d29yZA=="
    assert hook.received[0].path == f"/hook/{token}?token={token}"
    text = slack.received[0].json()["text"]
    assert "<" not in text and ">" not in text and "\n" not in text, text
    assert "&lt;!channel&gt; &lt;https://evil.example|click&gt;\\n:white_check_mark: &amp;" in text
    logged = caplog.text
    assert "starting notifier" in logged and "http://127.0.0.1:" in logged
    assert "webhook: delivery of inc-abc:0 failed (HTTP 500)" in logged
    assert token not in logged and "pa55word" not in logged, logged


class _TricklingSink:
    """A TCP server (TLS with ``context``) that answers one request with ``head``
    at once, then ``drip`` every 0.5 s for a minute: each socket read of the
    client stays well inside its timeout."""

    def __init__(self, head: bytes, drip: bytes, context: ssl.SSLContext | None = None) -> None:
        import socket

        self.head, self.drip, self.context = head, drip, context
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        scheme = "http" if self.context is None else "https"
        return f"{scheme}://127.0.0.1:{self.listener.getsockname()[1]}/hook"

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        try:
            if self.context is not None:
                conn = self.context.wrap_socket(conn, server_side=True)
            with conn:
                conn.recv(65536)
                conn.sendall(self.head)
                for _ in range(120):
                    if self.stop.wait(0.5):
                        return
                    conn.sendall(self.drip)
        except OSError:
            return

    def __enter__(self) -> _TricklingSink:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.listener.close()


def _timed_post(url: str, timeout_s: float) -> tuple[float, str | None]:
    """Seconds ``post`` took, and its SinkError's reason (None: delivered)."""
    from seismo.stream.incidents.notify import Request, SinkError, post

    started = time.monotonic()
    try:
        post(Request(url, b"{}", {"Content-Type": "application/json"}), timeout_s=timeout_s)
    except SinkError as exc:
        return time.monotonic() - started, str(exc)
    return time.monotonic() - started, None


def test_a_sink_that_trickles_its_answer_cannot_hold_the_notifier():
    """A 200 whose body comes a byte every 0.5 s for a minute: every socket read is within
    the timeout, so only a deadline on the whole answer lets the next change (and a stop)
    through. The change counts as delivered: the status said so."""
    with _TricklingSink(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                        b"1\r\nx\r\n") as sink:  # fmt: skip
        took, failure = _timed_post(sink.url, timeout_s=1.5)
    assert took < 5, f"post() waited {took:.1f} s on a trickling answer (timeout 1.5 s)"
    assert failure is None


@pytest.mark.parametrize("secure", [False, True], ids=["http", "https"])
def test_a_sink_that_trickles_its_headers_cannot_hold_the_notifier(secure, tmp_path, monkeypatch):
    """The status line at once, then one header byte every 0.5 s: the answer never
    begins its body, so the delivery fails after the whole request's timeout (and is
    retried later), over plain HTTP and TLS alike."""
    context = None
    if secure:
        from tests.tls_tools import make_ca

        tls = make_ca(tmp_path)
        context = tls.server_context()
        monkeypatch.setenv("SSL_CERT_FILE", str(tls.ca))  # the client trusts the test CA
    with _TricklingSink(b"HTTP/1.1 200 OK\r\nX-Slow: ", b"x", context) as sink:
        took, failure = _timed_post(sink.url, timeout_s=1.5)
    assert took < 5, f"post() waited {took:.1f} s on trickling headers (timeout 1.5 s)"
    assert failure == "no complete answer within 1.5 s"


def test_a_proxy_that_trickles_its_tunnel_answer_cannot_hold_the_notifier(monkeypatch):
    """With ``https_proxy`` set, the proxy's answer to CONNECT comes before any TLS; the
    socket is watched from its creation, so that answer is bounded too (found by a
    reviewer helper: 2 s against a 0.3 s timeout, for as long as the proxy liked)."""
    with _TricklingSink(b"HTTP/1.1 200 Connection established\r\nX-Slow: ", b"x") as proxy:
        monkeypatch.setenv("https_proxy", proxy.url.removesuffix("/hook"))
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.delenv("NO_PROXY", raising=False)
        took, failure = _timed_post("https://sink.example/hook", timeout_s=1.5)
    assert took < 5, f"post() waited {took:.1f} s on a trickling proxy (timeout 1.5 s)"
    assert failure == "no complete answer within 1.5 s"


def test_an_https_sink_that_answers_is_delivered_through_the_watched_connection(
    tmp_path, monkeypatch
):
    from tests.tls_tools import make_ca

    tls = make_ca(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.ca))
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    with _TricklingSink(answer, b"", tls.server_context()) as sink:
        took, failure = _timed_post(sink.url, timeout_s=5)
    assert failure is None and took < 5


def test_a_redirect_is_not_followed_and_fails_for_good():
    """urllib followed a 302 with a GET without the change, sending the credentials and the
    signature to the host it named, and a 2xx there counted as delivered (a reviewer
    helper). Now the redirect is the delivery's final failure."""
    from seismo.stream.incidents.notify import Request, SinkError, post

    moved = (b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/elsewhere\r\n"
             b"Content-Length: 0\r\n\r\n")  # fmt: skip
    with _TricklingSink(moved, b"") as sink:
        with pytest.raises(SinkError) as refused:
            post(Request(sink.url, b"{}", {"Authorization": "Basic eDp5"}), timeout_s=5)
    assert refused.value.final
    assert str(refused.value) == "HTTP 302: redirect not followed; configure the URL it points to"


def test_a_delivery_the_broker_never_confirms_stops_the_notifier_instead_of_hanging(
    tmp_path, monkeypatch, group_id
):
    """The broker goes away while a failed delivery is being sent to the retry topic: the
    flush gives up (FLUSH_S) and the notifier must stop, to resume from its last
    committed change once restarted. It hung for good instead, silently: closing the
    retry loop's consumer while that thread still polled it never returned (an operator
    helper's finding, after a broker restart)."""
    import seismo.stream.incidents.notify as notify
    from seismo.stream.errors import DeliveryError
    from seismo.stream.local.embedded import EmbeddedKafka

    monkeypatch.setattr(notify, "FLUSH_S", 3.0)
    with EmbeddedKafka() as kafka:
        bootstrap = kafka.bootstrap_servers
        names = {k: f"gone-{k}" for k in ("incidents", "retry", "dead")}
        create_topics(bootstrap, {name: 1 for name in names.values()})

        def broker_gone(_request, _earlier) -> int:
            kafka.stop()
            return 503

        with Sink(broker_gone) as hook:
            settings = load(NotifySettings, {
                "bootstrap_servers": bootstrap, "incidents_topic": names["incidents"],
                "retry_topic": names["retry"], "dead_topic": names["dead"],
                "notify_group_id": group_id, "timeout_s": 5, "metrics_port": 0,
                "webhook_url": hook.url, "kafka_config": {"session.timeout.ms": "6000"}},
                env={})  # fmt: skip
            ended: list[BaseException | None] = []

            def run() -> None:
                try:
                    run_notify(settings, threading.Event())
                    ended.append(None)
                except BaseException as exc:  # noqa: BLE001 - the test reads it
                    ended.append(exc)

            thread = threading.Thread(target=run, daemon=True)
            thread.start()
            publish(bootstrap, names["incidents"], [change("open", 0)])
            assert wait_for(lambda: bool(hook.received), 60), "the change was delivered once"
            thread.join(timeout=3.0 + 5 + 20)
            assert not thread.is_alive(), "the notifier hung after the unconfirmed delivery"
    assert len(ended) == 1 and isinstance(ended[0], DeliveryError), ended
