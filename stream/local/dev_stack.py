"""``seismo dev up / down / status``: a local broker and Redis for your own data.

:func:`dev_up` starts :class:`~seismo.stream.local.embedded.EmbeddedKafka` and
:class:`~seismo.stream.local.embedded.EmbeddedRedis` (as ``seismo demo`` does),
creates the scorer's topics explicitly (Tansu would give an auto-created topic
4 partitions), writes the state file (:mod:`seismo.stream.local.dev_state`) and
prints the ``export`` lines. In the foreground it then waits for its stop event
(Ctrl-C) and stops both servers; with ``detach`` it hands them over
(:meth:`~seismo.stream.local.embedded.EmbeddedKafka.detach`) and returns, and
:func:`dev_down` stops them by PID.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from seismo.stream.errors import ConfigError, ServiceError
from seismo.stream.local.detached import Detached, detached_alive, stop_detached
from seismo.stream.local.dev_state import DevState, default_state_file
from seismo.stream.local.embedded import HOST, EmbeddedKafka, EmbeddedRedis, create_topics

__all__ = ["DevOptions", "dev_down", "dev_status", "dev_up"]

Echo = Callable[[str], None]
#: How long ``dev down`` waits for a foreground ``dev up`` to stop its servers itself.
OWNER_GRACE_S = 30.0
#: How often a foreground ``dev up`` checks that both servers still run.
WATCH_S = 0.5


@dataclass(frozen=True)
class DevOptions:
    """What ``seismo dev up`` was asked for.

    ``topics`` maps each topic to create to its partition count;
    ``settings`` holds the extra ``SEISMO_*`` variables to print (topic names
    that are not the scorer's defaults). A port of ``None`` means a free one.
    """

    state_file: Path
    topics: dict[str, int]
    settings: dict[str, str]
    kafka_port: int | None = None
    redis_port: int | None = None
    detach: bool = False

    def __post_init__(self) -> None:
        bad = {name: n for name, n in self.topics.items() if n < 1}
        if bad:
            raise ConfigError(f"partitions must be at least 1: {bad}")
        if not all(self.topics):
            raise ConfigError("topic names must not be empty")


def _check_port(port: int | None, option: str) -> None:
    """A one-line error when a port asked for is taken, instead of the server's log."""
    if port is None:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError as exc:
            reason = exc.strerror or exc
            raise ServiceError(f"{option} {port}: {HOST}:{port} is not free ({reason})") from None


def _refuse_running(path: Path, echo: Echo) -> None:
    """Refuse to start over a stack that still runs; forget one whose processes are gone."""
    if not path.exists():
        return
    try:
        old = DevState.read(path)
    except ServiceError:
        echo(f"replacing {path}, which is no dev state file")
        return
    alive = [s for s in [*old.servers, *filter(None, [old.owner])] if detached_alive(s)]
    if alive:
        pids = ", ".join(f"{s.name} pid {s.pid}" for s in alive)
        raise ServiceError(
            f"a dev stack already runs ({pids}; state file {path}): "
            "stop it with `seismo dev down` or pass another --state-file"
        )
    echo(f"replacing {path}: its processes are gone")


def _owner() -> Detached:
    """This process, as ``dev down`` will find it."""
    try:
        binary = os.readlink("/proc/self/exe")
    except OSError:
        binary = sys.executable
    return Detached("seismo dev up", os.getpid(), 0, binary, "SIGTERM", "")


def dev_up(options: DevOptions, stop: threading.Event, out: Echo, echo: Echo) -> DevState:
    """Start the stack, print its ``export`` lines with ``out`` and progress with ``echo``.

    In the foreground, returns once ``stop`` is set and both servers are stopped
    (the state file deleted); with ``options.detach``, as soon as they answer.

    Raises
    ------
    ServiceError
        A port is taken, a server does not start, a topic cannot be created, or
        a stack already runs under the same state file. Nothing is left running.
    """
    _refuse_running(options.state_file, echo)
    _check_port(options.kafka_port, "--kafka-port")
    _check_port(options.redis_port, "--redis-port")
    with ExitStack() as stack:
        kafka = stack.enter_context(EmbeddedKafka(port=options.kafka_port))
        echo(f"Kafka (Tansu) on {kafka.bootstrap_servers}, pid {kafka.pid}")
        redis = stack.enter_context(EmbeddedRedis(port=options.redis_port))
        echo(f"Redis on {redis.url}, pid {redis.pid}")
        create_topics(kafka.bootstrap_servers, options.topics)
        echo("topics: " + ", ".join(f"{t} ({_partitions(n)})" for t, n in options.topics.items()))
        state = DevState(kafka.bootstrap_servers, redis.url, dict(options.topics), [], None,
                         dict(options.settings))  # fmt: skip
        if options.detach:
            state = _detach(state, kafka, redis, options.state_file)
            for line in state.exports():
                out(line)
            down = "seismo dev down" + ("" if options.state_file == default_state_file()
                                        else f" --state-file {options.state_file}")
            echo(f"left running; state in {options.state_file}; stop with `{down}`")
            return state
        stack.callback(options.state_file.unlink, missing_ok=True)
        state = _owned(state, kafka, redis)
        state.write(options.state_file)
        for line in state.exports():
            out(line)
        echo("running; Ctrl-C stops both servers")
        _wait(state, stop)
        echo("stopping the broker and Redis")
    return state


def _wait(state: DevState, stop: threading.Event) -> None:
    """Until ``stop`` is set; raise :class:`ServiceError` if a server exits meanwhile."""
    while not stop.wait(WATCH_S):
        for server in state.servers:
            if not detached_alive(server):
                raise ServiceError(f"{server.name} (pid {server.pid}) exited; stopping")


def _detach(
    state: DevState, kafka: EmbeddedKafka, redis: EmbeddedRedis, path: Path
) -> DevState:
    """Hand both servers over and write the state file; stop them if it cannot be written."""
    servers = [kafka.detach(), redis.detach()]
    state = DevState(state.bootstrap_servers, state.redis_url, state.topics, servers, None,
                     state.settings)  # fmt: skip
    try:
        state.write(path)
    except ServiceError:
        for server in servers:
            stop_detached(server)
        raise
    return state


def _owned(state: DevState, kafka: EmbeddedKafka, redis: EmbeddedRedis) -> DevState:
    """The state of a foreground stack: its servers stay this process's to stop.

    They are named too, so that ``dev down`` can stop them should this process die.
    """
    servers = [kafka.handle(), redis.handle()]
    return DevState(state.bootstrap_servers, state.redis_url, state.topics, servers, _owner(),
                    state.settings)  # fmt: skip


def _partitions(n: int) -> str:
    return f"{n} partition" + ("" if n == 1 else "s")


def dev_down(state_file: Path, echo: Echo) -> DevState:
    """Stop the stack named in ``state_file`` and delete the file.

    A foreground ``dev up`` is asked to stop (SIGTERM) and stops its servers
    itself; whatever still runs after that, or was detached, is stopped by PID.
    PIDs that are gone, or now run another program, are skipped.

    Raises
    ------
    ServiceError
        There is no state file (one line).
    """
    state = DevState.read(state_file)
    if state.owner is not None and stop_detached(state.owner, grace=OWNER_GRACE_S):
        echo(f"stopped seismo dev up, pid {state.owner.pid}")
    for server in state.servers:
        if stop_detached(server):
            echo(f"stopped {server.name}, pid {server.pid}")
        else:
            echo(f"{server.name} pid {server.pid} was not running")
    state_file.unlink(missing_ok=True)
    return state


def dev_status(state_file: Path, out: Echo, echo: Echo) -> bool:
    """Say what runs (``echo``, for people) and print the ``export`` lines (``out``, so
    ``eval "$(seismo dev status)"`` sets them in another shell); ``True`` when every
    server of the stack runs.

    Raises
    ------
    ServiceError
        There is no state file (one line).
    """
    state = DevState.read(state_file)
    running = True
    for server in state.servers:
        alive = detached_alive(server)
        running = running and alive
        word = "running" if alive else "NOT running"
        echo(f"{server.name}: {word}, pid {server.pid}, port {server.port}")
    owner = "detached" if state.owner is None else f"owned by seismo dev up, pid {state.owner.pid}"
    echo(f"servers: {owner}; state file {state_file}")
    echo("topics: " + ", ".join(f"{t} ({_partitions(n)})" for t, n in state.topics.items()))
    if running:  # eval "$(seismo dev status)" must not point a shell at a dead stack
        try:
            exports = state.exports()
        except ValueError as exc:  # a hand-edited file: say so, and still let down stop it
            raise ServiceError(f"{state_file}: {exc}; not exported") from None
        for line in exports:
            out(line)
    else:
        echo("no export lines: the stack is not running whole (seismo dev down, then up)")
    return running
