"""Health of the scorer and of the retrainer: what each knows about Kafka, Redis and its loop.

``GET /health`` on the metrics port answers with :meth:`Health.report`: HTTP
200 while the scorer can do its job (``"ok"``, or ``"degraded"`` while Redis
is away and batches are judged on local statistics), 503 when it cannot
(``"down"``: no Kafka broker reachable, the scoring loop stalled, or the
model watcher's thread dead).

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

A scorer that hot-swaps models reports its :class:`~seismo.stream.registry.model_watch.ModelWatcher`
too (``model_watcher``; ``null`` when the model comes from a directory):

>>> health.redis(local=False)
>>> health.watch(lambda: WatcherStatus(alive=True, stopping=False, errors=2,
...     last_error="UnicodeDecodeError: bad byte", failing_since=95.0, last_ok_at=90.0,
...     poll_s=30.0))
>>> code, body = health.report()
>>> code, body["status"], body["model_watcher"]["state"], body["model_watcher"]["last_ok_s_ago"]
(200, 'ok', 'retrying', 10.0)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any, Literal, Protocol

import orjson
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import MetricsHandler

from seismo.stream.errors import ServiceError

#: The scoring loop is stalled when it has not come round for this long.
STALL_S = 60.0
#: The model watcher is failing (not just retrying) once its checks failed for this long,
#: or for three of its poll periods when that is longer.
WATCH_FAILING_S = 60.0

WatcherState = Literal["ok", "retrying", "failing", "dead", "stopped"]

#: A scorer that has owned no partition this long (or this many session timeouts, if
#: longer: a join takes up to about one, half of one on Tansu) says so (`IdleNotice`).
UNOWNED_WARN_S = 60.0
UNOWNED_SESSIONS = 2.0
#: ... and again, at INFO, this often while it stays so (a standby is normal).
UNOWNED_REPEAT_S = 600.0


def unowned_after_s(session_timeout_ms: object) -> float:
    """How long a scorer owns no partition before it says so, for its consumer's
    ``session.timeout.ms`` (a number, or text as librdkafka settings come).

    >>> unowned_after_s(10_000), unowned_after_s("45000"), unowned_after_s("abc")
    (60.0, 90.0, 60.0)
    """
    try:
        return max(UNOWNED_WARN_S, UNOWNED_SESSIONS * float(session_timeout_ms) / 1000)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return UNOWNED_WARN_S


class IdleNotice:
    """When a scorer that owns no partition says so.

    Once it has owned none for ``after_s``, with a broker up for at least as
    long (after an outage the group's rejoin takes seconds, and must not read
    as a stuck group), a WARNING; then an INFO line every ``repeat_s`` while it
    stays so; once it owns partitions again, a later stretch starts afresh.
    Nothing while no broker is up: an outage has lines of its own. Without
    librdkafka's statistics the state is ``unknown`` and counts as up.

    >>> notice = IdleNotice(after_s=60, repeat_s=600)
    >>> up = ("up", 100.0)
    >>> [notice.check(unowned, kafka, now) for unowned, kafka, now in [
    ...     (None, up, 0), (59.0, up, 59), (61.0, up, 61), (70.0, up, 70),
    ...     (661.0, up, 661), (None, up, 700), (300.0, ("down", None), 1000),
    ...     (305.0, ("up", 5.0), 1005), (361.0, ("up", 61.0), 1061),
    ...     (None, up, 1100), (61.0, ("unknown", None), 1200)]]
    [None, None, 30, None, 20, None, None, None, 30, None, 30]
    >>> notice.told
    True
    """

    def __init__(self, after_s: float, repeat_s: float = UNOWNED_REPEAT_S) -> None:
        self.after_s, self.repeat_s = after_s, repeat_s
        self._told_at: float | None = None

    @property
    def told(self) -> bool:
        """Whether the current stretch without partitions has been told."""
        return self._told_at is not None

    def check(self, unowned_s: float | None, kafka: tuple[str, float | None],
              now: float) -> int | None:  # fmt: skip
        """The log level of the line due ``now`` (``logging.WARNING`` or ``INFO``), or
        ``None``; ``unowned_s`` from :meth:`Health.unowned_s`, ``kafka`` from
        :meth:`Health.kafka_for`."""
        if unowned_s is None:
            self._told_at = None
            return None
        state, up_s = kafka
        if state == "down" or unowned_s < self.after_s:
            return None
        if up_s is not None and up_s < self.after_s:
            return None
        if self._told_at is None:
            self._told_at = now
            return logging.WARNING
        if now - self._told_at >= self.repeat_s:
            self._told_at = now
            return logging.INFO
        return None


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


@dataclass(frozen=True)
class WatcherStatus:
    """What a model watcher says about itself (:meth:`ModelWatcher.status`).

    Times are of the watcher's clock, the same as the :class:`Health` clock
    (``time.monotonic`` for both by default).
    """

    alive: bool
    """Its thread runs."""
    stopping: bool
    """It was asked to stop (a dead thread is then no fault)."""
    errors: int
    """Every failed check since the start."""
    last_error: str | None
    """The latest error, one line."""
    failing_since: float | None
    """When the current run of failed checks began; ``None`` after a good check."""
    last_ok_at: float | None
    """When the pointer was last read and acted upon; ``None`` before the first time."""
    poll_s: float
    """Its poll period."""
    redis_down_since: float | None = None
    """When its checks began to fail for Redis itself (refused, timed out, ...);
    ``None`` while the latest did not."""


def watcher_state(status: WatcherStatus, now: float) -> WatcherState:
    """How the model watcher fares, and so how ``/health`` reports it.

    - ``ok``: its last check succeeded;
    - ``retrying``: its checks fail (an unreadable pointer, Redis away, a
      store that does not answer), since less than :data:`WATCH_FAILING_S`
      (or three poll periods); it retries with a backoff;
    - ``failing``: they fail for longer; the scorer reports ``degraded``: it
      still scores, with the model it has, but a new version or a rollback
      would not be noticed;
    - ``dead``: the thread ended while nobody asked it to; the scorer reports
      ``down`` (HTTP 503): it would never notice a new version or a rollback
      again, and only a restart mends that;
    - ``stopped``: it was asked to stop (shutdown).

    >>> s = WatcherStatus(alive=True, stopping=False, errors=0, last_error=None,
    ...                   failing_since=None, last_ok_at=1.0, poll_s=30.0)
    >>> watcher_state(s, 5.0)
    'ok'
    >>> from dataclasses import replace
    >>> failing = replace(s, errors=4, failing_since=10.0)
    >>> watcher_state(failing, 99.0), watcher_state(failing, 101.0)
    ('retrying', 'failing')
    >>> watcher_state(replace(s, alive=False), 5.0), watcher_state(replace(s, alive=False,
    ...                                                                     stopping=True), 5.0)
    ('dead', 'stopped')
    """
    if status.stopping:
        return "stopped"
    if not status.alive:
        return "dead"
    if status.failing_since is None:
        return "ok"
    patience = max(WATCH_FAILING_S, 3 * status.poll_s)
    return "failing" if now - status.failing_since > patience else "retrying"


def watcher_body(status: WatcherStatus, now: float) -> dict[str, Any]:
    """The ``model_watcher`` entry of ``/health``: its state, errors, and ages in seconds.

    >>> s = WatcherStatus(alive=True, stopping=False, errors=3, last_error="RedisError: gone",
    ...                   failing_since=7.0, last_ok_at=2.0, poll_s=1.0)
    >>> watcher_body(s, 12.0)
    {'state': 'retrying', 'alive': True, 'errors': 3, 'last_error': 'RedisError: gone', \
'failing_s': 5.0, 'last_ok_s_ago': 10.0}
    """

    def age(at: float | None) -> float | None:
        return None if at is None else round(now - at, 3)

    return {
        "state": watcher_state(status, now), "alive": status.alive, "errors": status.errors,
        "last_error": status.last_error, "failing_s": age(status.failing_since),
        "last_ok_s_ago": age(status.last_ok_at),
    }  # fmt: skip


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
    _up_since: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def kafka(self, brokers: tuple[int, int]) -> None:
        """Record ``(up, known)`` broker connections (from :func:`brokers_up`)."""
        with self._lock:
            was_up = self._up_since is not None
            self._brokers, self._kafka_seen = brokers, True
            if kafka_state(brokers, True) != "up":
                self._up_since = None
            elif not was_up:
                self._up_since = self.clock()

    def kafka_for(self) -> tuple[str, float | None]:
        """The Kafka state (:func:`kafka_state`) and, while ``up``, for how long.

        >>> times = iter([0.0, 5.0, 7.0])
        >>> health = Health(clock=lambda: next(times))
        >>> health.kafka((1, 1)); health.kafka_for()
        ('up', 5.0)
        >>> health.kafka((0, 1)); health.kafka_for()
        ('down', None)
        """
        with self._lock:
            state = kafka_state(self._brokers, self._kafka_seen)
            since = self._up_since
        return state, None if since is None else self.clock() - since

    def model(self, version: str) -> None:
        """The model version in service."""
        with self._lock:
            self._model = version


def redis_state_of(local: bool, judged_at: float | None, watcher: WatcherStatus | None) -> str:
    """The ``redis`` entry of ``/health``: what was seen of Redis last.

    ``local`` while the last batch was judged on local statistics (Redis did not
    answer it); ``unreachable`` while the model watcher's checks fail for Redis
    since after that batch (an idle scorer reads Redis only through its watcher);
    ``ok`` otherwise.

    >>> down = WatcherStatus(alive=True, stopping=False, errors=2, last_error="ConnectionError",
    ...                      failing_since=1.0, last_ok_at=0.5, poll_s=30.0,
    ...                      redis_down_since=20.0)
    >>> redis_state_of(False, 10.0, down), redis_state_of(False, None, down)
    ('unreachable', 'unreachable')
    >>> redis_state_of(False, 25.0, down), redis_state_of(True, 25.0, down)
    ('ok', 'local')
    """
    if local:
        return "local"
    since = None if watcher is None else watcher.redis_down_since
    if since is not None and (judged_at is None or since >= judged_at):
        return "unreachable"
    return "ok"


@dataclass
class Health(_ProcessHealth):
    """What the scorer reports at ``/health``.

    ``status`` is ``down`` (HTTP 503) without a broker connection, with a
    stalled loop, or with a dead model watcher; ``degraded`` (HTTP 200) while
    Redis is away (:func:`redis_state_of`) or the model watcher has been
    failing for long (:func:`watcher_state`); ``ok`` otherwise.
    """

    _redis_local: bool = False
    _redis_at: float | None = None
    _partitions: int = 0
    _unowned_since: float | None = None
    _watcher: Callable[[], WatcherStatus] | None = None

    def redis(self, *, local: bool) -> None:
        """Record whether the last batch was judged on local statistics."""
        with self._lock:
            self._redis_local, self._redis_at = local, self.clock()

    def loop_alive(self, partitions: int) -> None:
        """The scoring loop came round, owning ``partitions`` partitions."""
        with self._lock:
            now = self.clock()
            self._loop_at, self._partitions = now, partitions
            if partitions:
                self._unowned_since = None
            elif self._unowned_since is None:
                self._unowned_since = now

    def unowned_s(self) -> float | None:
        """How long the loop has owned no partition (since start, or since it last
        owned one); ``None`` while it owns some.

        >>> times = iter([0.0, 0.0, 75.0, 75.0, 80.0, 80.0])
        >>> health = Health(clock=lambda: next(times))
        >>> health.loop_alive(partitions=0); health.unowned_s()
        0.0
        >>> health.loop_alive(partitions=0); health.unowned_s()
        75.0
        >>> health.loop_alive(partitions=3); health.unowned_s() is None
        True
        """
        with self._lock:
            since = self._unowned_since
            return None if since is None else self.clock() - since

    def watch(self, status: Callable[[], WatcherStatus] | None) -> None:
        """Report the model watcher whose ``status`` is asked at each ``/health``."""
        with self._lock:
            self._watcher = status

    def report(self) -> tuple[int, dict[str, Any]]:
        """HTTP status and the JSON body of ``/health``."""
        probe = self._watcher
        seen = None if probe is None else probe()
        watcher = None if seen is None else watcher_body(seen, self.clock())
        with self._lock:
            redis_state = redis_state_of(self._redis_local, self._redis_at, seen)
            up, known = self._brokers
            kafka = kafka_state(self._brokers, self._kafka_seen)
            idle = None if self._loop_at is None else self.clock() - self._loop_at
            stalled = idle is None or idle > self.stall_s
            body: dict[str, Any] = {
                "kafka": kafka, "brokers_up": up, "brokers_known": known,
                "redis": redis_state,
                "loop_idle_s": None if idle is None else round(idle, 3),
                "partitions": self._partitions,
                "no_partitions_s": None if self._unowned_since is None
                else round(self.clock() - self._unowned_since, 3),
                "model_version": self._model,
                "model_watcher": watcher,
            }  # fmt: skip
        watch = None if watcher is None else watcher["state"]
        if kafka != "up" or stalled or watch == "dead":
            body["status"] = "down"
            return 503, body
        body["status"] = "degraded" if redis_state != "ok" or watch == "failing" else "ok"
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


def bind_error(host: str, port: int, exc: OSError) -> ServiceError:
    """The one-line error of a metrics port that cannot be bound (in use, no such address).

    >>> import errno
    >>> print(bind_error("127.0.0.1", 9464, OSError(errno.EADDRINUSE, "Address already in use")))
    cannot serve metrics on 127.0.0.1:9464: Address already in use (another process holds the \
port? choose another with --metrics-port, or 0 for none)
    """
    detail = exc.strerror or str(exc) or type(exc).__name__
    return ServiceError(
        f"cannot serve metrics on {host}:{port}: {detail} (another process holds the port? "
        "choose another with --metrics-port, or 0 for none)"
    )


def serve(
    registry: CollectorRegistry, health: Reporter, port: int, host: str
) -> ThreadingHTTPServer:
    """``/metrics`` (Prometheus text) and ``/health`` (JSON) in a daemon thread.

    Raises
    ------
    ServiceError
        When ``host:port`` cannot be bound (one line, see :func:`bind_error`).
    """
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

    try:
        server = ThreadingHTTPServer((host, port), Handler)
    except OSError as exc:
        raise bind_error(host, port, exc) from exc
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="seismo-http", daemon=True).start()
    return server
