"""seismo commands run as child processes (by ``seismo demo``), stopped in order.

Each child runs ``python -m seismo <command> ...`` in its own session (a Ctrl-C
in the terminal reaches only the parent, which stops its children itself), with
stdout and stderr in a log file.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import TracebackType
from typing import Self

from seismo.stream.errors import ServiceError

log = logging.getLogger(__name__)

_TAIL_CHARS = 1500


class SeismoChild:
    """One ``seismo`` command as a subprocess; a context manager that stops it.

    Parameters
    ----------
    name : str
        For messages, e.g. ``"scorer"``.
    args : list of str
        The command and its flags, e.g. ``["score", "--model", "m"]``.
    log_path : path
        Where its output goes (overwritten).
    stop_grace : float
        Seconds between SIGTERM and SIGKILL in :meth:`stop`.
    env : dict, optional
        Environment variables set for the child on top of this process's.
    """

    def __init__(
        self,
        name: str,
        args: list[str],
        log_path: Path,
        stop_grace: float = 15.0,
        env: dict[str, str] | None = None,
    ):
        self.name = name
        self.argv = [sys.executable, "-m", "seismo", *args]
        self.log_path = log_path
        self.stop_grace = stop_grace
        self.env = {**os.environ, **(env or {})}
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """PID while running."""
        return None if self._proc is None else self._proc.pid

    def start(self) -> Self:
        """Start the command (does not wait for it to be ready)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as out:
            try:
                self._proc = subprocess.Popen(
                    self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    start_new_session=True, env=self.env,
                )
            except OSError as exc:
                raise ServiceError(f"cannot start the {self.name}: {exc}") from exc
        log.info("started the %s, pid %d, log %s", self.name, self._proc.pid, self.log_path)
        return self

    def check_alive(self) -> None:
        """Raise :class:`ServiceError` with the end of its log if the child has exited."""
        if self._proc is not None and self._proc.poll() is not None:
            code = self._proc.returncode
            raise ServiceError(f"the {self.name} exited with code {code}: {self.log_tail()}")

    def has_logged(self, text: str) -> bool:
        """Whether the child's log holds ``text`` so far (e.g. ``"partitions assigned"``)."""
        try:
            return text in self.log_path.read_text(errors="replace")
        except OSError:
            return False

    def log_tail(self) -> str:
        """The end of the child's log, on one line."""
        try:
            text = self.log_path.read_text(errors="replace")[-_TAIL_CHARS:]
        except OSError:
            return "(no log)"
        return " | ".join(line.strip() for line in text.splitlines() if line.strip()) or "(empty)"

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after ``stop_grace`` s; the exit code. Safe to call twice."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(self.stop_grace)
            except subprocess.TimeoutExpired:
                log.warning("the %s (pid %d) ignored SIGTERM; killing it", self.name, proc.pid)
                proc.kill()
                proc.wait(10.0)
        return proc.returncode

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
