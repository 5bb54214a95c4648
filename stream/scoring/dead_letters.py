"""Dead letters that the broker always accepts: bounded size, and stubs as a last resort.

A dead letter republishes the message that could not be scored, with the
reason and the source in headers (:func:`seismo.stream.scoring.alerts.dead_letter_headers`).
One hostile message must not make that fail: a value, key or headers larger
than the producer may send would be refused, the batch could never be
confirmed, and its partition would stall. So :func:`dead_letter` cuts what
does not fit ``limit`` (the producer's ``message.max.bytes``) and says so in
headers (:data:`H_ORIGINAL_SIZE`, :data:`H_HEADERS_DROPPED`); and a record the
broker still refuses for good becomes a :func:`stub`: no value, the reason,
the source and the refusal in headers. No offset is committed without a
score record or a dead letter.

The scorer also says that it dead-letters: :class:`DeadLetterLog` counts the
dead letters and gives one WARNING line at most every
:data:`SUMMARY_PERIOD_S` while there are any (how many, and one sample with
its source and reason); the metric ``seismo_events_dead_lettered`` counts
them all.

This module is pure: records in, records out.

Examples
--------
>>> from seismo.stream.scoring.alerts import Source
>>> src = Source("sensor-events", 0, 41)
>>> letter = dead_letter("dlq", b"x" * 2_000_000, b"pump-7", [("trace", b"1")],
...                      "message of 2000000 bytes exceeds the limit of 900000", src, row=3,
...                      limit=1_000_000)
>>> len(letter.value) <= 1_000_000 - OVERHEAD, dict(letter.headers)[H_ORIGINAL_SIZE]
(True, b'2000000')
>>> stub_of = stub("dlq", "invalid JSON", src, row=3, error="Broker: Message size too large")
>>> stub_of.value is None, dict(stub_of.headers)["seismo-error"]
(True, b'invalid JSON; the original was not published: Broker: Message size too large')
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from seismo.stream.scoring.alerts import H_ERROR, Source, dead_letter_headers
from seismo.stream.scoring.f32_codec import CHANNELS_HEADER, EVENT_ID_HEADER

HeaderList = list[tuple[str, str | bytes | None]]

#: Header on a dead letter whose value was cut: the original value's size in bytes.
H_ORIGINAL_SIZE = "seismo-original-size"
#: Header on a dead letter whose original headers were left out: how many there were.
H_HEADERS_DROPPED = "seismo-original-headers-dropped"
#: Header on a dead letter whose key was cut: the original key's size in bytes.
H_ORIGINAL_KEY_SIZE = "seismo-original-key-size"
#: Header ``1`` on a stub: the original could not be published at all.
H_STUB = "seismo-stub"
#: librdkafka's default ``message.max.bytes``.
PRODUCER_MAX_BYTES = 1_000_000
#: Bytes kept free for the record's framing and seismo's own headers.
OVERHEAD = 4096
#: Longest key kept on a dead letter.
MAX_KEY_BYTES = 1024
#: An original header named like seismo's own (``seismo-...``, but the input headers
#: ``seismo-event-id`` and ``seismo-channels``) is kept under this prefix, so no producer
#: can forge a dead letter's ``seismo-error`` or source for a consumer that reads the
#: first header of a name.
SHADOWED_PREFIX = "original-"


@dataclass(frozen=True)
class Outgoing:
    """One record to publish for the message at ``row`` of the consumed batch."""

    topic: str
    value: bytes | None
    key: bytes | None
    headers: HeaderList | None
    row: int


def producer_limit(kafka_config: Mapping[str, Any]) -> int:
    """The largest record the producer sends: its ``message.max.bytes``.

    >>> producer_limit({}), producer_limit({"message.max.bytes": "2000000"})
    (1000000, 2000000)
    """
    return int(kafka_config.get("message.max.bytes", PRODUCER_MAX_BYTES))


def unshadowed(headers: HeaderList) -> HeaderList:
    """``headers`` with every name seismo's own dead-letter headers could take renamed.

    >>> unshadowed([("seismo-error", b"forged"), ("SEISMO-Offset", b"1"),
    ...             ("seismo-event-id", b"e1"), ("trace", b"t")])  # doctest: +NORMALIZE_WHITESPACE
    [('original-seismo-error', b'forged'), ('original-SEISMO-Offset', b'1'),
     ('seismo-event-id', b'e1'), ('trace', b't')]
    """
    def ours(name: str) -> bool:
        lowered = name.lower()
        return lowered.startswith("seismo-") and lowered not in (EVENT_ID_HEADER, CHANNELS_HEADER)

    return [(SHADOWED_PREFIX + name, raw) if ours(name) else (name, raw) for name, raw in headers]


#: Bytes a record header takes beyond its name and value: two varint lengths.
HEADER_FRAMING = 10


def _size(pairs: Sequence[tuple[str, str | bytes | None]]) -> int:
    """Bytes the headers take in a record, framing included (a message of many tiny
    headers is mostly framing: 120 000 one-byte headers take about 480 KB, not 240 KB).

    >>> _size([("h", b"x"), ("seismo-error", "bad")])
    37
    """
    return sum(len(name.encode()) + len(_encoded(value)) + HEADER_FRAMING
               for name, value in pairs)  # fmt: skip


def _encoded(value: str | bytes | None) -> bytes:
    return value.encode() if isinstance(value, str) else value or b""


def dead_letter(
    topic: str, value: bytes | None, key: bytes | None,
    headers: Iterable[tuple[str, str | bytes | None]], reason: str, src: Source, *, row: int,
    limit: int, unreadable: bool = False,
) -> Outgoing:  # fmt: skip
    """The dead letter of a message, cut to fit ``limit`` bytes.

    The original headers are kept unless they take more than a quarter of
    the room; the key is cut at :data:`MAX_KEY_BYTES`; the value is cut to
    what is left. Each cut is named in a header (:data:`H_HEADERS_DROPPED`
    holds how many headers were left out, or ``unreadable`` when the message's
    headers could not be read at all: ``unreadable`` is true).

    >>> src = Source("t", 0, 1)
    >>> big = dead_letter("dlq", b"v", b"k" * 3000, [("h", b"x" * 9000)], "bad", src, row=0,
    ...                   limit=20_000)
    >>> sorted(name for name, _ in big.headers if name.startswith("seismo-original"))
    ['seismo-original-headers-dropped', 'seismo-original-key-size']
    >>> len(big.key), big.value
    (1024, b'v')
    """
    own = dead_letter_headers(reason, src)
    room = max(limit - OVERHEAD, 0)
    extra: HeaderList = []
    if key is not None and len(key) > MAX_KEY_BYTES:
        extra.append((H_ORIGINAL_KEY_SIZE, str(len(key)).encode()))
        key = key[:MAX_KEY_BYTES]
    kept: HeaderList = unshadowed(list(headers))
    if unreadable:
        extra.append((H_HEADERS_DROPPED, b"unreadable"))
    elif _size(kept) > room // 4:
        extra.append((H_HEADERS_DROPPED, str(len(kept)).encode()))
        kept = []
    if value is not None:
        fits = room - len(key or b"") - _size(kept) - _size(own) - _size(extra) - 64
        if len(value) > fits:
            extra.append((H_ORIGINAL_SIZE, str(len(value)).encode()))
            value = value[: max(fits, 0)]
    return Outgoing(topic, value, key, kept + own + extra, row)


def stub(topic: str, reason: str, src: Source, *, row: int, error: str) -> Outgoing:
    """A value-less dead letter: the reason, the source and why the original was refused."""
    headers: HeaderList = [
        (name, f"{reason}; the original was not published: {error}".encode()[:1000])
        if name == H_ERROR else (name, raw)
        for name, raw in dead_letter_headers(reason, src)
    ]  # fmt: skip
    return Outgoing(topic, None, None, [*headers, (H_STUB, b"1")], row)


#: Seconds between two log lines that summarise the dead letters (the first is at once).
SUMMARY_PERIOD_S = 10.0


class DeadLetterLog:
    """Dead letters since the last summary line: how many, and the first one's reason.

    :meth:`add` counts a batch's dead letters and :meth:`due` says when a
    summary is due: at once for the first dead letter after a quiet period,
    then at most every ``period_s`` while more arrive.

    >>> now = [100.0]
    >>> letters = DeadLetterLog("events-dlq", clock=lambda: now[0])
    >>> letters.add([("expected 6 values, got 7", Source("events", 0, 41))])
    >>> letters.due()
    '1 event dead-lettered to events-dlq, e.g. events[0] offset 41: expected 6 values, got 7'
    >>> letters.add([("invalid JSON", Source("events", 1, 7))] * 3)
    >>> letters.due() is None       # the next summary waits for the period
    True
    >>> now[0] = 112.0
    >>> letters.due()
    '3 events dead-lettered to events-dlq in the last 12 s, e.g. events[1] offset 7: invalid JSON'
    >>> letters.due() is None       # nothing new: no line
    True
    """

    def __init__(
        self, topic: str, period_s: float = SUMMARY_PERIOD_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.topic = topic
        self.period_s = period_s
        self.clock = clock
        self.count = 0
        self.sample: tuple[str, Source] | None = None
        self._last: float | None = None  # time of the last summary
        self._first = 0.0  # time of the first dead letter counted since

    def add(self, letters: Sequence[tuple[str, Source]]) -> None:
        """Count dead letters: ``(reason, source)`` each."""
        if letters and self.sample is None:
            self.sample, self._first = letters[0], self.clock()
        self.count += len(letters)

    def due(self) -> str | None:
        """The summary line, if one is due (its count starts again), else ``None``."""
        now = self.clock()
        if not self.count or self.sample is None or (
            self._last is not None and now - self._last < self.period_s
        ):  # fmt: skip
            return None
        reason, src = self.sample
        since = f" in the last {now - self._first:.0f} s" if now - self._first >= 1 else ""
        line = (f"{self.count} event{'s' if self.count != 1 else ''} dead-lettered to "
                f"{self.topic}{since}, e.g. {src.topic}[{src.partition}] offset {src.offset}: "
                f"{reason}")  # fmt: skip
        self.count, self.sample, self._last = 0, None, now
        return line
