"""Decode and validate sensor events: bytes in, one float32 matrix or a reason out.

This module is pure: no Kafka, no Redis. It turns the raw values of a consumed
micro-batch into a :class:`DecodedBatch` — one ``(m, d)`` float32 array of the
valid events plus their metadata — and a list of :class:`Rejected` entries, one
per message that cannot be scored, each with a human-readable reason that the
scorer puts in the ``seismo-error`` header of the dead-letter message.

The contract (see the README) for an event value is a JSON object::

    {"device_id": "pump-7", "ts": 1732350000000, "values": [0.1, 2.3], "id": "e-1"}

``ts`` (epoch milliseconds, or an ISO-8601 string) and ``id`` are optional.
``values`` may also name its channels, ``{"temp": 20.5, "rpm": 1200}``: given
the model's channel names (``channels``), they are put in the model's order,
and an event with a missing or unknown channel is rejected naming it.
Whatever the bytes, :func:`decode_batch` never raises: every message is either
decoded or rejected with a reason.

Examples
--------
>>> batch = decode_batch(
...     [b'{"device_id": "d1", "values": [1, 2]}', b"not json", None],
...     kafka_timestamps=[1000, 2000, 3000],
...     n_features=2,
... )
>>> batch.values
array([[1., 2.]], dtype=float32)
>>> batch.rows.tolist(), batch.device_ids, batch.timestamps.tolist()
([0], ['d1'], [1000])
>>> [(r.index, r.reason.split(":")[0]) for r in batch.rejected]
[(1, 'invalid JSON'), (2, 'empty message value (tombstone)')]
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import methodcaller
from typing import Any

import numpy as np
import orjson

from seismo.models.columns import is_positional
from seismo.stream.scoring.f32_codec import (
    CHANNELS_HEADER,
    CONTENT_TYPE,
    CONTENT_TYPE_HEADER,
    EVENT_ID_HEADER,
    JSON_CONTENT_TYPE,
    decode_f32,
)
from seismo.stream.scoring.fast_decode import MAX_ID_LENGTH, MAX_TS_MS, fast_pass

__all__ = ["DEFAULT_MAX_MESSAGE_BYTES", "MAX_ID_LENGTH", "MAX_TS_MS", "TOO_DEEP",
           "DecodedBatch", "Encodings", "EventError", "Headers", "Rejected", "Unreadable",
           "decode_batch", "decode_event", "encode_event", "failure_reason", "header_pairs",
           "message_headers", "parse_timestamp", "split_encodings"]  # fmt: skip

#: Largest message value accepted by default (bytes). It stays below librdkafka's
#: ``message.max.bytes`` (1 000 000), so a rejected value still fits the dead-letter topic.
DEFAULT_MAX_MESSAGE_BYTES = 900_000
#: The dead-letter reason of a value nested deeper than the JSON parser goes.
TOO_DEEP = "too deeply nested"


def failure_reason(exc: BaseException) -> str:
    """The dead-letter reason for an unexpected exception while decoding one message.

    >>> failure_reason(RecursionError("maximum recursion depth exceeded"))
    'too deeply nested'
    >>> failure_reason(KeyError("x"))
    'cannot decode: KeyError'
    """
    if isinstance(exc, RecursionError):
        return TOO_DEEP
    if isinstance(exc, MemoryError):
        return "too large to decode"
    return f"cannot decode: {type(exc).__name__}"


class EventError(ValueError):
    """One event is invalid; the message is the dead-letter reason."""


@dataclass(frozen=True)
class Rejected:
    """A message that cannot be scored.

    Attributes
    ----------
    index : int
        Position of the message in the consumed batch.
    reason : str
        Human-readable reason, sent as the ``seismo-error`` header.
    """

    index: int
    reason: str


@dataclass(frozen=True)
class DecodedBatch:
    """The valid events of one micro-batch, column-wise.

    Attributes
    ----------
    values : numpy.ndarray
        ``(m, d)`` float32, finite; row ``i`` is the event at ``rows[i]``.
    rows : numpy.ndarray
        ``(m,)`` int64 positions of the valid events in the consumed batch.
    device_ids : list of str
        ``m`` device ids.
    event_ids : list of str or None
        ``m`` producer-given event ids (``None`` where not given).
    timestamps : numpy.ndarray
        ``(m,)`` int64 event times in epoch milliseconds.
    rejected : list of Rejected
        The messages that cannot be scored, in batch order.
    """

    values: np.ndarray
    rows: np.ndarray
    device_ids: list[str]
    event_ids: list[str | None]
    timestamps: np.ndarray
    rejected: list[Rejected]

    def __len__(self) -> int:
        return len(self.device_ids)

    def take(self, keep: np.ndarray) -> DecodedBatch:
        """The events where ``keep`` (``(m,)`` bool) is True; the rejected stay as they are.

        >>> b = decode_batch([b'{"device_id": "a", "values": [1]}',
        ...                   b'{"device_id": "b", "values": [2]}'], kafka_timestamps=[0, 0],
        ...                  n_features=1)
        >>> b.take(np.array([False, True])).device_ids
        ['b']
        """
        idx = np.flatnonzero(keep)
        return DecodedBatch(values=self.values[idx], rows=self.rows[idx],
                            device_ids=[self.device_ids[i] for i in idx],
                            event_ids=[self.event_ids[i] for i in idx],
                            timestamps=self.timestamps[idx], rejected=self.rejected)  # fmt: skip

    def reject(self, bad: np.ndarray, reason: str) -> DecodedBatch:
        """The events where ``bad`` (``(m,)`` bool) is False; the others join the rejected.

        >>> b = decode_batch([b'{"device_id": "a", "values": [1]}',
        ...                   b'{"device_id": "b", "values": [2]}'], kafka_timestamps=[0, 0],
        ...                  n_features=1)
        >>> r = b.reject(np.array([True, False]), "score is not finite")
        >>> r.device_ids, r.rejected
        (['b'], [Rejected(index=0, reason='score is not finite')])
        """
        bad = np.asarray(bad, dtype=bool)
        if not bad.any():
            return self
        kept = self.take(~bad)
        more = [Rejected(int(self.rows[i]), reason) for i in np.flatnonzero(bad)]
        rejected = sorted(self.rejected + more, key=lambda r: r.index)
        return DecodedBatch(values=kept.values, rows=kept.rows, device_ids=kept.device_ids,
                            event_ids=kept.event_ids, timestamps=kept.timestamps,
                            rejected=rejected)  # fmt: skip


@dataclass(frozen=True)
class _Event:
    device_id: str
    ts_ms: int | None
    event_id: str | None
    values: np.ndarray


def parse_timestamp(raw: object) -> int:
    """Return an event time in epoch milliseconds.

    Parameters
    ----------
    raw : int or str
        Epoch milliseconds, or an ISO-8601 string (naive means UTC).

    Raises
    ------
    EventError
        When ``raw`` is neither, or out of range.

    Examples
    --------
    >>> parse_timestamp(1732350000000)
    1732350000000
    >>> parse_timestamp("2024-11-23T08:20:00Z")
    1732350000000
    >>> parse_timestamp("2024-11-23T09:20:00+01:00")
    1732350000000
    >>> parse_timestamp(True)
    Traceback (most recent call last):
    ...
    seismo.stream.scoring.codec.EventError: field 'ts' must be epoch milliseconds (integer) or ...
    """
    if isinstance(raw, int) and not isinstance(raw, bool):
        ts = raw
    elif isinstance(raw, str) and len(raw) <= 64:
        try:
            parsed = datetime.fromisoformat(raw)
        except ValueError:
            raise EventError(f"field 'ts' is not an ISO-8601 time: {raw[:40]!r}") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        ts = math.floor(parsed.timestamp() * 1000)
    else:
        raise EventError(
            "field 'ts' must be epoch milliseconds (integer) or an ISO-8601 string"
        )
    if not 0 <= ts < MAX_TS_MS:
        raise EventError(f"field 'ts' out of range: {ts}")
    return ts


def _identifier(obj: dict[str, object], field: str, *, required: bool) -> str | None:
    raw = obj.get(field)
    if raw is None:
        if required:
            raise EventError(f"missing field '{field}'")
        return None
    if isinstance(raw, int) and not isinstance(raw, bool) and not required:
        raw = str(raw)
    if not isinstance(raw, str) or not raw:
        raise EventError(f"field '{field}' must be a non-empty string")
    if len(raw) > MAX_ID_LENGTH:
        raise EventError(f"field '{field}' longer than {MAX_ID_LENGTH} characters")
    return raw


def _channel(name: str) -> str:
    """A channel name as a dead-letter reason quotes it: repr, cut to 60 characters.

    >>> print(_channel("temp"), _channel("x" * 100)[-5:])
    'temp' xx...
    """
    return repr(name) if len(name) <= 60 else repr(name[:60])[:-1] + "..."


def _by_name(raw: dict[str, object], channels: Sequence[str] | None) -> list[object]:
    """Named values in the model's channel order; a missing or unknown channel is an error.

    >>> _by_name({"b": 2, "a": 1}, ["a", "b"])
    [1, 2]
    >>> _by_name({"a": 1, "c": 3}, ["a", "b"])
    Traceback (most recent call last):
    ...
    seismo.stream.scoring.codec.EventError: unknown channel 'c'; missing channel 'b'
    """
    if channels is None:
        raise EventError("field 'values' must be an array of numbers")
    if len(raw) == len(channels):  # the usual event: every channel once, nothing else
        try:
            return [raw[name] for name in channels]
        except KeyError:
            pass  # say which channels are wrong
    known = set(channels)
    problems = []
    unknown = [name for name in raw if name not in known]
    if unknown:
        more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
        problems.append(f"unknown channel {_channel(unknown[0])}{more}")
    missing = [name for name in channels if name not in raw]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        problems.append(f"missing channel {_channel(missing[0])}{more}")
    if problems:
        raise EventError("; ".join(problems))
    return [raw[name] for name in channels]


def _vector(raw: object, n_features: int, channels: Sequence[str] | None = None) -> np.ndarray:
    not_numbers = "field 'values' must be an array of numbers"
    if isinstance(raw, dict):
        raw = _by_name(raw, channels)
        not_numbers = "field 'values' must map channel names to numbers"
    elif not isinstance(raw, list):
        raise EventError(not_numbers)
    if len(raw) != n_features:
        raise EventError(f"expected {n_features} values, got {len(raw)}")
    try:
        arr = np.asarray(raw)
    except (ValueError, TypeError, OverflowError):
        raise EventError(not_numbers) from None
    if arr.ndim != 1 or arr.dtype.kind not in "iuf" or any(type(v) is bool for v in raw):
        # numpy coerces booleans to numbers; the contract does not.
        raise EventError(not_numbers)
    with np.errstate(over="ignore", invalid="ignore"):
        vec = arr.astype(np.float32)
    if not np.isfinite(vec).all():
        raise EventError("non-finite value in 'values' (NaN, Inf or beyond float32 range)")
    return vec


#: NaN or Infinity where a JSON value goes: what Python's ``json.dumps`` writes for a
#: float that is not finite, which no JSON parser reads.
_NON_FINITE = re.compile(rb"[:\[,]\s*-?(?:NaN|Infinity)\s*[,\]}]")
#: The dead-letter reason of such an event (it said only "unexpected character").
NON_FINITE_JSON = ("invalid JSON: NaN or Infinity as a value (Python's json.dumps writes "
                   "them for floats that are not finite; JSON has no such number, and only "
                   "finite readings are scored)")


def decode_event(
    value: bytes | None, n_features: int, max_bytes: int, channels: Sequence[str] | None = None
) -> _Event:
    """Decode one message value, raising :class:`EventError` with the reason.

    ``channels`` (the model's channel names, in order) lets ``values`` name them.
    """
    if value is None or len(value) == 0:
        raise EventError("empty message value (tombstone)")
    if len(value) > max_bytes:
        raise EventError(f"message of {len(value)} bytes exceeds the limit of {max_bytes}")
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        detail = str(exc)
        if "UTF-8" in detail:
            reason = "invalid UTF-8"
        elif "depth limit" in detail or "recursion" in detail:
            reason = TOO_DEEP
        elif _NON_FINITE.search(value):
            reason = NON_FINITE_JSON
        else:
            reason = f"invalid JSON: {detail}"
        raise EventError(reason[:200]) from None
    if not isinstance(obj, dict):
        raise EventError("event is not a JSON object")
    device_id = _identifier(obj, "device_id", required=True)
    assert device_id is not None  # required=True never returns None
    if "values" not in obj:
        raise EventError("missing field 'values'")
    vec = _vector(obj["values"], n_features, channels)
    ts_raw = obj.get("ts")
    ts = None if ts_raw is None else parse_timestamp(ts_raw)
    event_id = _identifier(obj, "id", required=False)
    return _Event(device_id=device_id, ts_ms=ts, event_id=event_id, values=vec)


HeaderValue = str | bytes | None


@dataclass(frozen=True)
class Unreadable:
    """A message whose headers the Kafka client cannot read (a header name that is not
    UTF-8, which any client but librdkafka can send): its event is dead-lettered with
    ``reason``, never decoded."""

    reason: str


Headers = Sequence[tuple[str, HeaderValue]] | Mapping[str, HeaderValue] | Unreadable | None
"""The Kafka headers of one message, as confluent-kafka returns them, or `Unreadable`."""


def message_headers(message: Any) -> Headers:
    """``message.headers()``, or `Unreadable` where the client raises for them: one
    message's headers must never halt a partition (confluent-kafka raises a
    ``SystemError`` from a ``UnicodeDecodeError`` for a header name that is not UTF-8).

    Call it once per message and keep the result: after confluent-kafka has raised
    for a message's headers, reading them again crashed the process (a segmentation
    fault, confluent-kafka 2.x).

    >>> class Odd:
    ...     def headers(self):
    ...         raise SystemError("returned a result with an exception set")
    >>> message_headers(Odd())
    Unreadable(reason='headers not readable (SystemError)')
    """
    try:
        return _read_headers(message)
    except Exception as exc:  # noqa: BLE001 - the client's error, whatever it is
        cause = exc.__cause__ or exc.__context__ or exc
        return Unreadable(f"headers not readable ({type(cause).__name__})")


#: ``message.headers()`` through a call that CPython checks: confluent-kafka returns from
#: it with the decoding error still pending (and holes in its list), and a plain method
#: call (specialised by the interpreter) does not notice, so the error surfaced at some
#: later call elsewhere; called through ``methodcaller`` it is raised here.
_read_headers = methodcaller("headers")


def header_pairs(headers: Headers) -> Iterable[tuple[str, HeaderValue]]:
    """A message's headers as pairs, not copied (none for `Unreadable` ones).

    >>> [list(header_pairs(h)) for h in ({"a": b"1"}, Unreadable("x"), None)]
    [[('a', b'1')], [], []]
    """
    if headers is None or isinstance(headers, Unreadable):
        return ()
    return headers.items() if isinstance(headers, Mapping) else headers


def decode_batch(
    values: Sequence[bytes | None],
    *,
    kafka_timestamps: Sequence[int],
    n_features: int,
    max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    headers: Sequence[Headers] | None = None,
    keys: Sequence[bytes | None] | None = None,
    channels: Sequence[str] | None = None,
) -> DecodedBatch:
    """Decode a micro-batch of message values; never raises for bad input.

    Parameters
    ----------
    values : sequence of bytes or None
        Raw message values in consumption order.
    kafka_timestamps : sequence of int
        The messages' Kafka timestamps (epoch ms), used when an event has no ``ts``.
    n_features : int
        The model's input dimension ``d``.
    max_bytes : int
        Larger values are rejected unparsed.
    headers, keys : sequences, optional
        The messages' headers and keys. A message whose ``content-type``
        header says ``application/x-seismo-f32`` is a binary event
        (:mod:`seismo.stream.scoring.f32_codec`, the key is its device id); without headers
        every message is JSON.
    channels : sequence of str, optional
        The model's ``n_features`` channel names, in its order. With them, a
        JSON event's ``values`` may be an object of channel name to number
        (in any order); without them, only arrays are accepted.

    Returns
    -------
    DecodedBatch
        ``values`` is ``(m, n_features)`` float32 with ``m <= len(values)``.

    Notes
    -----
    Plainly valid JSON events take the fast path (:mod:`seismo.stream.scoring.fast_decode`);
    the rest, and only the rest, go through :func:`decode_event` one by one,
    which decides them and words the reasons.

    Examples
    --------
    >>> from seismo.stream.scoring.f32_codec import encode_f32, f32_headers
    >>> batch = decode_batch(
    ...     [encode_f32([1, 2]), b'{"device_id": "d2", "values": [3, 4]}', b"{}"],
    ...     kafka_timestamps=[10, 20, 30], n_features=2,
    ...     headers=[f32_headers(), None, [("content-type", b"text/csv")]],
    ...     keys=[b"d1", b"d2", b"d3"],
    ... )
    >>> batch.values.tolist(), batch.device_ids, batch.timestamps.tolist()
    ([[1.0, 2.0], [3.0, 4.0]], ['d1', 'd2'], [10, 20])
    >>> batch.rejected
    [Rejected(index=2, reason="unsupported content-type 'text/csv'")]

    Whatever one message holds, it is decided alone: should any step raise
    for the batch, each message is decoded by itself, and one that still
    raises is rejected with :func:`failure_reason`.

    >>> deep = b'{"device_id":"d","values":[1],"x":' + b"[" * 5000 + b"]" * 5000 + b"}"
    >>> decode_batch([deep, b'{"device_id":"e","values":[2]}'], kafka_timestamps=[0, 0],
    ...              n_features=1).rejected
    [Rejected(index=0, reason='too deeply nested')]

    Named values, in any order, against the model's channels:

    >>> named = decode_batch([b'{"device_id":"a","values":{"rpm":2,"temp":1}}',
    ...                       b'{"device_id":"b","values":{"temp":1,"rmp":2}}'],
    ...                      kafka_timestamps=[0, 0], n_features=2, channels=["temp", "rpm"])
    >>> named.values.tolist(), named.rejected[0].reason
    ([[1.0, 2.0]], "unknown channel 'rmp'; missing channel 'rpm'")
    """
    shape = (n_features, max_bytes, channels)
    try:
        return _decode_batch(values, kafka_timestamps, shape, headers, keys)
    except Exception:  # noqa: BLE001 - a decoder bug must never halt a partition
        return _decode_alone(values, kafka_timestamps, shape, headers, keys)


_Shape = tuple[int, int, Sequence[str] | None]
"""What every event must fit: ``(n_features, max_bytes, channels)``."""


def _decode_alone(
    values: Sequence[bytes | None],
    kafka_timestamps: Sequence[int],
    shape: _Shape,
    headers: Sequence[Headers] | None,
    keys: Sequence[bytes | None] | None,
) -> DecodedBatch:
    """The safety net: each message decoded as a batch of its own."""
    parts: list[DecodedBatch] = []
    failed: list[Rejected] = []
    for i in range(len(values)):
        try:
            one = _decode_batch(
                [values[i]], [kafka_timestamps[i]], shape,
                None if headers is None else [headers[i]], None if keys is None else [keys[i]],
            )  # fmt: skip
        except Exception as exc:  # noqa: BLE001
            failed.append(Rejected(i, failure_reason(exc)))
            continue
        parts.append(DecodedBatch(
            values=one.values, rows=one.rows + i, device_ids=one.device_ids,
            event_ids=one.event_ids, timestamps=one.timestamps,
            rejected=[Rejected(r.index + i, r.reason) for r in one.rejected],
        ))  # fmt: skip
    if not parts:
        parts.append(_empty(shape[0]))
    return _merge(parts, failed)


def _empty(n_features: int) -> DecodedBatch:
    return DecodedBatch(
        values=np.empty((0, n_features), dtype=np.float32), rows=np.empty(0, dtype=np.int64),
        device_ids=[], event_ids=[], timestamps=np.empty(0, dtype=np.int64), rejected=[],
    )  # fmt: skip


def _decode_batch(
    values: Sequence[bytes | None],
    kafka_timestamps: Sequence[int],
    shape: _Shape,
    headers: Sequence[Headers] | None,
    keys: Sequence[bytes | None] | None,
) -> DecodedBatch:
    if headers is None or not any(headers):
        return _decode_json(values, None, kafka_timestamps, shape)
    split = split_encodings(headers, shape[2])
    parts = [_decode_json(values, split.json, kafka_timestamps, shape)]
    if split.f32:
        binary = decode_f32(
            values, keys=keys if keys is not None else [None] * len(values),
            indices=split.f32, event_ids=split.f32_ids,
            kafka_timestamps=kafka_timestamps, n_features=shape[0],
        )  # fmt: skip
        parts.append(DecodedBatch(
            values=binary.values, rows=binary.rows, device_ids=binary.device_ids,
            event_ids=binary.event_ids, timestamps=binary.timestamps,
            rejected=[Rejected(i, reason) for i, reason in binary.rejected],
        ))  # fmt: skip
    unsupported = [Rejected(i, f"unsupported content-type {kind!r}") for i, kind in split.other]
    unsupported += [Rejected(i, reason) for i, reason in split.unreadable]
    return _merge(parts, sorted(unsupported, key=lambda r: r.index))


_F32_TAG = (CONTENT_TYPE_HEADER, CONTENT_TYPE.encode())


@dataclass(frozen=True)
class Encodings:
    """The positions of a batch's messages by encoding."""

    json: list[int]
    f32: list[int]
    f32_ids: list[str | None]
    other: list[tuple[int, str]]
    unreadable: list[tuple[int, str]] = field(default_factory=list)


def _content_type(headers: Headers) -> tuple[str | None, str | None, bytes | None]:
    """A message's content type (lower case, without parameters), binary event id, and
    the channels its positional values follow (the header's bytes)."""
    kind: str | None = None
    event_id: str | None = None
    channels: bytes | None = None
    for name, raw in header_pairs(headers):
        if raw is None:
            continue
        lowered = name.lower()
        if lowered == CHANNELS_HEADER:
            channels = raw.encode() if isinstance(raw, str) else raw
            continue
        text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
        if lowered == CONTENT_TYPE_HEADER:
            kind = text.split(";")[0].strip().lower()
        elif lowered == EVENT_ID_HEADER and text:
            event_id = text[:MAX_ID_LENGTH]
    return kind, event_id, channels


def expected_channels(channels: Sequence[str] | None) -> bytes | None:
    """What a ``seismo-channels`` header must say for the model's ``channels``; ``None``
    when they are stand-in names (``f0, f1, ...``: positional by design) or unknown.

    >>> expected_channels(["temp", "rpm"]), expected_channels(["f0", "f1"])
    (b'temp,rpm', None)
    """
    if not channels or is_positional(channels):
        return None
    return ",".join(channels).encode()


def misordered(given: bytes, expected: bytes) -> str:
    """The dead-letter reason of positional values in other channels than the model's.

    >>> misordered(b"rpm,temp", b"temp,rpm")
    "values follow channels 'rpm,temp' (header seismo-channels), not the model's 'temp,rpm': \
send them in the model's order, or named"
    """
    said = given.decode("utf-8", "replace")
    return (f"values follow channels {said[:120]!r} (header {CHANNELS_HEADER}), not the "
            f"model's {expected.decode()[:120]!r}: send them in the model's order, or named")


def split_encodings(
    headers: Sequence[Headers], channels: Sequence[str] | None = None
) -> Encodings:
    """Sort a batch's messages by their ``content-type`` header (absent means JSON).

    With the model's ``channels``, a message whose ``seismo-channels`` header names
    another order is unreadable, with the reason.

    >>> split_encodings([None, [("Content-Type", b"application/x-seismo-f32")],
    ...                  [("content-type", b"application/json; charset=utf-8")],
    ...                  [("content-type", b"text/csv")]])
    Encodings(json=[0, 2], f32=[1], f32_ids=[None], other=[(3, 'text/csv')], unreadable=[])
    >>> split_encodings([[("content-type", b"application/x-seismo-f32"),
    ...                   ("seismo-channels", b"rpm,temp")]], ["temp", "rpm"]).unreadable[0][0]
    0
    """
    expected = expected_channels(channels)
    out = Encodings([], [], [], [])
    for i, h in enumerate(headers):
        if not h:
            out.json.append(i)
            continue
        if isinstance(h, Unreadable):
            out.unreadable.append((i, h.reason))
            continue
        if type(h) is list:  # the common forms, as f32_headers() and produce write them
            n = len(h)
            if h[0] == _F32_TAG:
                if n == 1:
                    out.f32.append(i)
                    out.f32_ids.append(None)
                    continue
                name, raw = h[1]
                if n == 2 and name == EVENT_ID_HEADER and type(raw) is bytes:
                    out.f32.append(i)
                    out.f32_ids.append(raw.decode("utf-8", "replace")[:MAX_ID_LENGTH] or None)
                    continue
                third = h[2] if n == 3 else ("", None)
                if n == 3 and name == EVENT_ID_HEADER and type(raw) is bytes \
                        and third[0] == CHANNELS_HEADER and type(third[1]) is bytes:
                    if expected is not None and third[1] != expected:
                        out.unreadable.append((i, misordered(third[1], expected)))
                    else:
                        out.f32.append(i)
                        out.f32_ids.append(raw.decode("utf-8", "replace")[:MAX_ID_LENGTH] or None)
                    continue
            elif n == 1 and h[0][0] == CHANNELS_HEADER and type(h[0][1]) is bytes:
                if expected is not None and h[0][1] != expected:
                    out.unreadable.append((i, misordered(h[0][1], expected)))
                else:
                    out.json.append(i)  # positional JSON naming its order
                continue
        kind, event_id, given = _content_type(h)
        if given is not None and expected is not None and given != expected:
            out.unreadable.append((i, misordered(given, expected)))
        elif kind is None or kind == JSON_CONTENT_TYPE:
            out.json.append(i)
        elif kind == CONTENT_TYPE:
            out.f32.append(i)
            out.f32_ids.append(event_id)
        else:
            out.other.append((i, kind[:60]))
    return out


def _decode_json(
    values: Sequence[bytes | None],
    indices: Sequence[int] | None,
    kafka_timestamps: Sequence[int],
    shape: _Shape,
) -> DecodedBatch:
    """The JSON events at ``indices`` (all when ``None``): fast path, then the full decoder."""
    subset = values if indices is None else [values[i] for i in indices]
    n_features, max_bytes, channels = shape
    fast = fast_pass(subset, n_features=n_features, max_bytes=max_bytes, channels=channels)
    if indices is not None:
        fast.rows = [indices[r] for r in fast.rows]
        fast.slow = [indices[r] for r in fast.slow]
    slow = _decode_each(values, fast.slow, kafka_timestamps, n_features, max_bytes, channels)
    rows = np.asarray(fast.rows, dtype=np.int64)
    quick = DecodedBatch(
        values=fast.values, rows=rows, device_ids=fast.device_ids, event_ids=fast.event_ids,
        timestamps=_event_times(fast.ts, rows, kafka_timestamps), rejected=[],
    )  # fmt: skip
    return _merge([quick, slow], [])


def _event_times(
    ts: Sequence[int | None], rows: np.ndarray, kafka_timestamps: Sequence[int]
) -> np.ndarray:
    """Each event's ``ts``, or where it has none its message's Kafka timestamp.

    >>> _event_times([None, 5], np.array([0, 2]), [10, 20, 30]).tolist()
    [10, 5]
    >>> _event_times([7, 5], np.array([0, 2]), [10, 20, 30]).tolist()
    [7, 5]
    """
    missing = ts.count(None)
    if not missing:  # most streams give all or none; fast_pass bounds each ts to int64
        return np.array(ts, dtype=np.int64)
    stamps = np.asarray(kafka_timestamps, dtype=np.int64)[rows]
    if missing != len(ts):
        for j, stamp in enumerate(ts):
            if stamp is not None:
                stamps[j] = stamp
    return stamps


def _merge(parts: list[DecodedBatch], rejected: list[Rejected]) -> DecodedBatch:
    """One batch, in consumption order, from parts over disjoint positions."""
    nonempty = [p for p in parts if len(p)]
    rejected = sorted([r for p in parts for r in p.rejected] + rejected, key=lambda r: r.index)
    if len(nonempty) <= 1:
        only = nonempty[0] if nonempty else parts[0]
        return DecodedBatch(
            values=only.values, rows=only.rows, device_ids=only.device_ids,
            event_ids=only.event_ids, timestamps=only.timestamps, rejected=rejected,
        )  # fmt: skip
    rows = np.concatenate([p.rows for p in nonempty])
    order = np.argsort(rows, kind="stable")
    device_ids = [d for p in nonempty for d in p.device_ids]
    event_ids = [e for p in nonempty for e in p.event_ids]
    return DecodedBatch(
        values=np.concatenate([p.values for p in nonempty])[order],
        rows=rows[order],
        device_ids=[device_ids[j] for j in order],
        event_ids=[event_ids[j] for j in order],
        timestamps=np.concatenate([p.timestamps for p in nonempty])[order],
        rejected=rejected,
    )


def _decode_each(
    values: Sequence[bytes | None],
    indices: Sequence[int],
    kafka_timestamps: Sequence[int],
    n_features: int,
    max_bytes: int,
    channels: Sequence[str] | None = None,
) -> DecodedBatch:
    """The full decoder, message by message, over ``indices`` of ``values``."""
    out = np.empty((len(indices), n_features), dtype=np.float32)
    rows: list[int] = []
    device_ids: list[str] = []
    event_ids: list[str | None] = []
    stamps: list[int] = []
    rejected: list[Rejected] = []
    for i in indices:
        try:
            event = decode_event(values[i], n_features, max_bytes, channels)
        except EventError as exc:
            rejected.append(Rejected(i, str(exc)))
            continue
        except Exception as exc:  # noqa: BLE001 - one message never halts the batch
            rejected.append(Rejected(i, failure_reason(exc)))
            continue
        out[len(rows)] = event.values
        rows.append(i)
        device_ids.append(event.device_id)
        event_ids.append(event.event_id)
        stamps.append(event.ts_ms if event.ts_ms is not None else int(kafka_timestamps[i]))
    m = len(rows)
    return DecodedBatch(
        values=out[:m],
        rows=np.asarray(rows, dtype=np.int64),
        device_ids=device_ids,
        event_ids=event_ids,
        timestamps=np.asarray(stamps, dtype=np.int64),
        rejected=rejected,
    )


def encode_event(
    device_id: str,
    values: Sequence[float] | Mapping[str, float],
    *,
    ts: int | None = None,
    event_id: str | None = None,
) -> bytes:
    """Encode one event following the contract (used by ``seismo produce``).

    ``values`` is a list (positional) or a mapping of channel name to value.

    Examples
    --------
    >>> encode_event("d1", [1.5, 2.0], ts=5, event_id="7")
    b'{"device_id":"d1","values":[1.5,2.0],"ts":5,"id":"7"}'
    >>> encode_event("d1", {"temp": 1.5, "rpm": 2})
    b'{"device_id":"d1","values":{"temp":1.5,"rpm":2.0}}'
    """
    floats: object = (
        {str(k): float(v) for k, v in values.items()}
        if isinstance(values, Mapping)
        else [float(v) for v in values]
    )
    event: dict[str, object] = {"device_id": device_id, "values": floats}
    if ts is not None:
        event["ts"] = ts
    if event_id is not None:
        event["id"] = event_id
    return orjson.dumps(event)
