"""Servers left running after their owner exits (``seismo dev up --detach``), stopped by PID.

:meth:`seismo.stream.local.embedded.EmbeddedKafka.detach` (and ``EmbeddedRedis``'s)
hands a running server over as a :class:`Detached` record; ``seismo dev down``
stops it with :func:`stop_detached`, maybe from another process. A PID is only
signalled while it still runs the server's binary, so a PID the system has
since given to another program is left alone.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Detached", "detached_alive", "stop_detached"]

log = logging.getLogger(__name__)

_POLL_S = 0.1


@dataclass(frozen=True)
class Detached:
    """A server left running by :meth:`_Server.detach`: enough to find and stop it later."""

    name: str
    pid: int
    port: int
    binary: str
    stop_signal: str
    log_path: str


def _running(pid: int, binary: str) -> bool:
    """Whether ``pid`` is alive and still runs ``binary`` (not a reused PID).

    Reaps it first when it is this process's own exited child. The executable
    is compared, not the command line (``redis-server`` rewrites its own);
    where ``/proc`` cannot tell, a live PID counts as the server.
    """
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass  # not our child: its parent (or init) reaps it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # someone else's process under a reused PID
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True
    if state == "Z":
        return False  # exited, not yet reaped by its parent
    try:
        exe = os.readlink(f"/proc/{pid}/exe").removesuffix(" (deleted)")
    except OSError:
        return True
    return exe == os.path.realpath(binary)


def detached_alive(server: Detached) -> bool:
    """Whether a detached server still runs under its PID."""
    return _running(server.pid, server.binary)


def stop_detached(server: Detached, grace: float = 10.0) -> bool:
    """Stop a detached server: its stop signal, then SIGKILL after ``grace`` seconds.

    A PID that is gone, or now runs another program, is left alone. Returns
    whether a signal was sent; deletes the server's log either way.
    """
    sent = False
    if _running(server.pid, server.binary):
        _signal(server.pid, signal.Signals[server.stop_signal])
        sent = True
        deadline = time.monotonic() + grace
        while _running(server.pid, server.binary) and time.monotonic() < deadline:
            time.sleep(_POLL_S)
        if _running(server.pid, server.binary):
            log.warning("%s pid %d ignored %s; killing it", server.name, server.pid,
                        server.stop_signal)  # fmt: skip
            _signal(server.pid, signal.SIGKILL)
            deadline = time.monotonic() + 5.0
            while _running(server.pid, server.binary) and time.monotonic() < deadline:
                time.sleep(_POLL_S)
    if server.log_path:
        Path(server.log_path).unlink(missing_ok=True)
    return sent


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
