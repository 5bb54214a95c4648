"""Repeated log lines, counted instead of printed again: librdkafka's, aiokafka's, the scorer's.

During an outage librdkafka reports the same failure many times a second
(each client, each retry), and the scorer would repeat the same warning once
per batch. A :class:`Throttle` lets the first line of a kind through and then
at most one per ``period_s``, counting the ones it held back; the next line
that passes carries that count. :class:`RdkafkaLog` is the ``logger`` every
client is given (:func:`seismo.stream.io.kafka.client_config`): lines that
differ only in librdkafka's bookkeeping (which client, how many ms in which
state, how many identical errors it suppressed itself) count as the same.

Pure: the clock is a parameter, and nothing here touches a broker.

Examples
--------
>>> now = [0.0]
>>> throttle = Throttle(10.0, clock=lambda: now[0])
>>> [throttle.admit("down") for _ in range(3)]
[0, None, None]
>>> now[0] = 10.0
>>> throttle.admit("down"), throttle.admit("other")
(2, 0)
>>> normalise("FAIL [rdkafka#consumer-3] [thrd:b:1/bootstrap]: b:1/bootstrap: Connect "
...           "failed: Connection refused (after 0ms in state CONNECT)")
'FAIL [rdkafka#consumer] [thrd:b:1/bootstrap]: b:1/bootstrap: Connect failed: Connection refused'
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import cast

#: Seconds between two lines of the same kind (the first is always let through).
PERIOD_S = 10.0
#: Kinds of line remembered at once (the oldest is forgotten first).
MAX_KINDS = 512

_BOOKKEEPING = [
    (re.compile(r"\s*\(after \d+ms in state \w+(?:, \d+ identical error\(s\) suppressed)?\)"), ""),
    (re.compile(r"\s*\(\d+ identical error\(s\) suppressed\)"), ""),
    (re.compile(r"(rdkafka#\w+)-\d+"), r"\1"),
]


def normalise(message: str) -> str:
    """``message`` without what changes between repeats of the same librdkafka line."""
    for pattern, replacement in _BOOKKEEPING:
        message = pattern.sub(replacement, message)
    return message


class Throttle:
    """At most one line of each kind per ``period_s``; the rest are counted.

    Parameters
    ----------
    period_s : float
        Shortest time between two lines of the same kind.
    clock : callable
        Seconds, monotonic (a test passes its own).
    max_kinds : int
        Kinds remembered; beyond, the least recently seen is forgotten.
    """

    def __init__(
        self, period_s: float = PERIOD_S, clock: Callable[[], float] = time.monotonic,
        max_kinds: int = MAX_KINDS,
    ) -> None:  # fmt: skip
        self.period_s = period_s
        self.clock = clock
        self.max_kinds = max_kinds
        #: kind -> [time of its last line, lines held back since]
        self._kinds: OrderedDict[Hashable, list[float]] = OrderedDict()
        #: kind -> events counted by :meth:`tally` since its last line
        self._tallies: dict[Hashable, int] = {}

    def admit(self, kind: Hashable) -> int | None:
        """``None`` to hold this line back (it is counted), else how many were held
        back since the kind's last line (0 the first time)."""
        now = self.clock()
        seen = self._kinds.get(kind)
        if seen is not None and now - seen[0] < self.period_s:
            seen[1] += 1
            self._kinds.move_to_end(kind)
            return None
        held = int(seen[1]) if seen is not None else 0
        self._kinds[kind] = [now, 0]
        self._kinds.move_to_end(kind)
        while len(self._kinds) > self.max_kinds:
            self._kinds.popitem(last=False)
        return held

    def tally(self, kind: Hashable, n: int) -> int | None:
        """Count ``n`` events of ``kind``; ``None`` to hold the line back, else every event
        counted since the kind's last line (these ``n`` included). Nothing counted yet and
        ``n`` 0: ``None``, and no line is due.

        >>> now = [0.0]
        >>> throttle = Throttle(10.0, clock=lambda: now[0])
        >>> [throttle.tally("early", n) for n in (3, 4, 0)]
        [3, None, None]
        >>> now[0] = 10.0
        >>> throttle.tally("early", 0), throttle.tally("early", 0)
        (4, None)
        """
        total = self._tallies.get(kind, 0) + n
        if not total:
            return None
        self._tallies[kind] = total
        if self.admit(kind) is None:
            return None
        del self._tallies[kind]
        return total

    def note(self, held: int) -> str:
        """What a line that passed adds about the ones held back before it.

        >>> Throttle(10.0).note(0), Throttle(10.0).note(3)
        ('', ' (3 more in the last 10 s)')
        """
        return f" ({held} more in the last {self.period_s:g} s)" if held else ""

    def drain(self) -> list[tuple[Hashable, int]]:
        """The kinds with lines held back, and how many; their counts start again at 0.

        >>> throttle = Throttle(10.0, clock=lambda: 0.0)
        >>> _ = [throttle.admit("a") for _ in range(4)]
        >>> throttle.drain(), throttle.drain()
        ([('a', 3)], [])
        """
        out = [(kind, int(seen[1])) for kind, seen in self._kinds.items() if seen[1]]
        for kind, _ in out:
            self._kinds[kind][1] = 0
        return out


class RdkafkaLog:
    """The ``logger`` handed to librdkafka: each kind of line at most once per period.

    librdkafka calls :meth:`log` (from the clients' ``poll``/``consume``, in
    any thread); the line is written to ``logger`` unless one of its kind
    (:func:`normalise`) was written less than ``period_s`` ago. The next line
    of that kind says how many were held back; :meth:`flush` writes the
    counts still pending (before a one-line broker error, say).
    """

    def __init__(
        self, logger: logging.Logger, period_s: float = PERIOD_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.logger = logger
        self.throttle = Throttle(period_s, clock)
        self._lock = threading.Lock()

    def log(self, level: int, msg: str, *args: object) -> None:
        """One librdkafka line (``logging.Logger.log``'s signature)."""
        message = msg % args if args else msg
        kind = normalise(message)
        with self._lock:
            held = self.throttle.admit((level, kind))
        if held is None:
            return
        if held:
            message += f" ({held} more like it in the last {self.throttle.period_s:g} s)"
        self.logger.log(level, "%s", message)

    def flush(self) -> None:
        """Write one line per kind with lines held back: the kind and the count."""
        with self._lock:
            pending = self.throttle.drain()
        for kind, held in pending:
            level, message = cast(tuple[int, str], kind)
            self.logger.log(level, "%s (repeated %d more times)", message, held)


class ThrottleFilter(logging.Filter):
    """A :class:`logging.Filter`: each kind of WARNING-or-worse record (logger, level and
    :func:`normalise`-d message) at most once per period; the next one that passes says
    how many were held back. Lower levels pass untouched.

    For libraries that log every retry of an outage (aiokafka under ``seismo
    incidents``: about 40 ERROR lines a second while the broker was down, an
    operator helper found); :func:`throttle_loggers` installs one.

    >>> now = [0.0]
    >>> quiet = ThrottleFilter(10.0, clock=lambda: now[0])
    >>> def record(msg):
    ...     return logging.LogRecord("aiokafka.conn", logging.ERROR, "", 0, msg, (1,), None)
    >>> [quiet.filter(record("Unable connect to node with id %d")) for _ in range(3)]
    [True, False, False]
    >>> now[0] = 10.0
    >>> passed = record("Unable connect to node with id %d")
    >>> quiet.filter(passed), passed.getMessage()
    (True, 'Unable connect to node with id 1 (2 more like it in the last 10 s)')
    """

    def __init__(self, period_s: float = PERIOD_S, clock: Callable[[], float] = time.monotonic,
                 prefixes: tuple[str, ...] = ("",)) -> None:  # fmt: skip
        super().__init__()
        self.prefixes = prefixes  # the loggers whose lines it throttles (by name)
        self.throttle = Throttle(period_s, clock)
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not record.name.startswith(self.prefixes):
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format: logging's own report says so
            return True
        with self._lock:
            held = self.throttle.admit((record.name, record.levelno, normalise(message)))
        if held is None:
            return False
        if held:
            record.msg = f"{message} ({held} more like it in the last {self.throttle.period_s:g} s)"
            record.args = None
        return True


def throttle_loggers(prefixes: tuple[str, ...], period_s: float = PERIOD_S) -> int:
    """A :class:`ThrottleFilter` for the loggers named ``prefix`` or ``prefix.*`` on each
    handler of the root logger (a logger's own filters see only its own records, and
    libraries create loggers as they import modules); one per handler, since a record
    passes every handler's filters. A handler that has one keeps it. Returns how many
    were added."""
    added = 0
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, ThrottleFilter) and f.prefixes == prefixes
                   for f in handler.filters):  # fmt: skip
            handler.addFilter(ThrottleFilter(period_s, prefixes=prefixes))
            added += 1
    return added
