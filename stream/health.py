"""Health of the scorer and of the retrainer: what each knows about Kafka, Redis and its loop.

``GET /health`` on the metrics port answers with :meth:`Health.report`: HTTP
200 while the scorer can do its job (``"ok"``, or ``"degraded"`` while Redis
is away and batches are judged on local statistics), 503 when it cannot
(``"down"``: no Kafka broker reachable, or the scoring loop stalled).

Kafka's state comes from librdkafka's own statistics (``statistics.interval.ms``,
delivered to a ``stats_cb``): the state of every broker connection. The rest is
set by the scorer loop. The logic is pure; :func:`serve` wires it to HTTP next
to ``/metrics``. :class:`RetrainerHealth` is the sidecar's counterpart (its
role, active or standby, and the current training round).

Examples
--------
>>> health = Health(clock=lambda: 100.0)
>>> health.report()[0], health.report()[1]["status"]
(503, 'down')
>>> health.kafka(brokers_up('{"brokers": {"b:1/1": {"nodeid": 1, "state": "UP"}}}'))
>>> health.loop_alive(partitions=2)
>>> code, body = health.report()
>>> code, body["status"], body["kafka"], body["partitions"]
(200, 'ok', 'up', 2)
>>> health.redis(local=True)
>>> health.report()[1]["status"], health.report()[1]["redis"]
('degraded', 'local')
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any, Protocol

import orjson
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import MetricsHandler

#: The scoring loop is stalled when it has not come round for this long.
STALL_S = 60.0


def brokers_up(stats_json: str) -> tuple[int, int]:
    """``(up, known)`` broker connections in one librdkafka statistics document.

    Bootstrap entries (``nodeid`` -1) and the logical coordinator are left out:
    they say nothing about whether a real broker answers.

    >>> brokers_up('{"brokers": {"a/1": {"nodeid": 1, "state": "UP"},'
    ...            ' "b/2": {"nodeid": 2, "state": "TRY_CONNECT"},'
    ...            ' "a:9/bootstrap": {"nodeid": -1, "state": "INIT"}}}')
    (1, 2)
    >>> brokers_up("not json")
    (0, 0)
    """
    try:
        brokers = orjson.loads(stats_json).get("brokers", {})
    except (orjson.JSONDecodeError, AttributeError):
        return 0, 0
    real = [b for b in brokers.values() if isinstance(b, dict) and b.get("nodeid", -1) >= 0]
    return sum(1 for b in real if b.get("state") == "UP"), len(real)


def kafka_state(brokers: tuple[int, int], seen: bool) -> str:
    """``up`` when a broker connection is up, ``unknown`` before the first statistics.

    >>> kafka_state((1, 2), True), kafka_state((0, 1), True), kafka_state((0, 0), False)
    ('up', 'down', 'unknown')
    """
    if brokers[0]:
        return "up"
    return "down" if seen else "unknown"


class Reporter(Protocol):
    """Anything that answers ``/health``: an HTTP status and a JSON body."""

    def report(self) -> tuple[int, dict[str, Any]]: ...


@dataclass
class _ProcessHealth:
    """What every process reports: broker connections, its loop, the model in service.

    Every setter is cheap and thread-safe.
    """

    clock: Callable[[], float] = time.monotonic
    stall_s: float = STALL_S
    _brokers: tuple[int, int] = (0, 0)
    _kafka_seen: bool = False
    _loop_at: float | None = None
    _model: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def kafka(self, brokers: tuple[int, int]) -> None:
        """Record ``(up, known)`` broker connections (from :func:`brokers_up`)."""
        with self._lock:
            self._brokers, self._kafka_seen = brokers, True

    def model(self, version: str) -> None:
        """The model version in service."""
        with self._lock:
            self._model = version


@dataclass
class Health(_ProcessHealth):
    """What the scorer reports at ``/health``."""

    _redis_local: bool = False
    _partitions: int = 0

    def redis(self, *, local: bool) -> None:
        """Record whether the last batch was judged on local statistics."""
        with self._lock:
            self._redis_local = local

    def loop_alive(self, partitions: int) -> None:
        """The scoring loop came round, owning ``partitions`` partitions."""
        with self._lock:
            self._loop_at, self._partitions = self.clock(), partitions

    def report(self) -> tuple[int, dict[str, Any]]:
        """HTTP status and the JSON body of ``/health``."""
        with self._lock:
            up, known = self._brokers
            kafka = kafka_state(self._brokers, self._kafka_seen)
            idle = None if self._loop_at is None else self.clock() - self._loop_at
            stalled = idle is None or idle > self.stall_s
            body: dict[str, Any] = {
                "kafka": kafka, "brokers_up": up, "brokers_known": known,
                "redis": "local" if self._redis_local else "ok",
                "loop_idle_s": None if idle is None else round(idle, 3),
                "partitions": self._partitions, "model_version": self._model,
            }  # fmt: skip
        if kafka != "up" or stalled:
            body["status"] = "down"
            return 503, body
        body["status"] = "degraded" if self._redis_local else "ok"
        return 200, body


@dataclass
class RetrainerHealth(_ProcessHealth):
    """What the retraining sidecar reports at ``/health``.

    ``role`` is ``active`` while this process holds the retrainer lease,
    ``standby`` while another one does. The loop comes round about every
    second except during a training round, so only outside a round does a
    silence longer than ``stall_s`` count as a stall.

    >>> now = [0.0]
    >>> health = RetrainerHealth(clock=lambda: now[0])
    >>> health.kafka((1, 1)); health.loop_alive(active=False)
    >>> code, body = health.report()
    >>> code, body["status"], body["role"], body["round"]
    (200, 'ok', 'standby', None)
    >>> health.loop_alive(active=True); health.round_started("interval")
    >>> now[0] = 600.0  # a long round is no stall
    >>> health.report()[1]["round"]
    {'trigger': 'interval', 'running_s': 600.0}
    >>> health.round_ended({"promoted": True, "reason": "better"})
    >>> code, body = health.report()
    >>> code, body["status"], body["last_round"]["reason"]
    (200, 'ok', 'better')
    >>> now[0] = 700.0  # the loop has not come round for 100 s outside a round
    >>> health.report()[:1], health.report()[1]["status"]
    ((503,), 'down')
    """

    _active: bool = False
    _round: tuple[str, float] | None = None
    _last_round: dict[str, Any] | None = None

    def loop_alive(self, *, active: bool) -> None:
        """The loop came round; ``active``: this process holds the lease."""
        with self._lock:
            self._loop_at, self._active = self.clock(), active

    def round_started(self, trigger: str) -> None:
        with self._lock:
            self._round = (trigger, self.clock())

    def round_ended(self, summary: dict[str, Any]) -> None:
        """The round is over; ``summary`` (:meth:`RoundResult.summary`) is kept to show."""
        with self._lock:
            self._round, self._last_round, self._loop_at = None, summary, self.clock()

    def report(self) -> tuple[int, dict[str, Any]]:
        """HTTP status and the JSON body of ``/health``."""
        with self._lock:
            now = self.clock()
            up, known = self._brokers
            kafka = kafka_state(self._brokers, self._kafka_seen)
            idle = None if self._loop_at is None else now - self._loop_at
            running = (
                None
                if self._round is None
                else {"trigger": self._round[0], "running_s": round(now - self._round[1], 3)}
            )
            stalled = running is None and (idle is None or idle > self.stall_s)
            body: dict[str, Any] = {
                "kafka": kafka, "brokers_up": up, "brokers_known": known,
                "role": "active" if self._active else "standby",
                "loop_idle_s": None if idle is None else round(idle, 3),
                "round": running, "last_round": self._last_round, "model_version": self._model,
            }  # fmt: skip
        if kafka != "up" or stalled:
            body["status"] = "down"
            return 503, body
        body["status"] = "ok"
        return 200, body


def serve(
    registry: CollectorRegistry, health: Reporter, port: int, host: str
) -> ThreadingHTTPServer:
    """``/metrics`` (Prometheus text) and ``/health`` (JSON) in a daemon thread."""
    base = MetricsHandler.factory(registry)

    class Handler(base):  # type: ignore[valid-type, misc]
        def do_GET(self) -> None:  # noqa: N802 (the http.server name)
            if self.path.split("?")[0].rstrip("/") != "/health":
                return super().do_GET()
            code, body = health.report()
            payload = orjson.dumps(body)
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return None

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return None

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="seismo-http", daemon=True).start()
    return server
