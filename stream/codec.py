"""Decode and validate sensor events: bytes in, one float32 matrix or a reason out.

This module is pure: no Kafka, no Redis. It turns the raw values of a consumed
micro-batch into a :class:`DecodedBatch` — one ``(m, d)`` float32 array of the
valid events plus their metadata — and a list of :class:`Rejected` entries, one
per message that cannot be scored, each with a human-readable reason that the
scorer puts in the ``seismo-error`` header of the dead-letter message.

The contract (see the README) for an event value is a JSON object::

    {"device_id": "pump-7", "ts": 1732350000000, "values": [0.1, 2.3], "id": "e-1"}

``ts`` (epoch milliseconds, or an ISO-8601 string) and ``id`` are optional.
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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import orjson

from stream.fast_decode import MAX_ID_LENGTH, MAX_TS_MS, fast_pass

__all__ = ["DEFAULT_MAX_MESSAGE_BYTES", "MAX_ID_LENGTH", "MAX_TS_MS", "DecodedBatch",
           "EventError", "Rejected", "decode_batch", "decode_event", "encode_event",
           "parse_timestamp"]  # fmt: skip

#: Largest message value accepted by default (bytes).
DEFAULT_MAX_MESSAGE_BYTES = 1_048_576


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
    stream.codec.EventError: field 'ts' must be epoch milliseconds (integer) or an ISO-8601 string
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


def _vector(raw: object, n_features: int) -> np.ndarray:
    if not isinstance(raw, list):
        raise EventError("field 'values' must be an array of numbers")
    if len(raw) != n_features:
        raise EventError(f"expected {n_features} values, got {len(raw)}")
    try:
        arr = np.asarray(raw)
    except (ValueError, TypeError, OverflowError):
        raise EventError("field 'values' must be an array of numbers") from None
    if arr.ndim != 1 or arr.dtype.kind not in "iuf" or any(type(v) is bool for v in raw):
        # numpy coerces booleans to numbers; the contract does not.
        raise EventError("field 'values' must be an array of numbers")
    with np.errstate(over="ignore", invalid="ignore"):
        vec = arr.astype(np.float32)
    if not np.isfinite(vec).all():
        raise EventError("non-finite value in 'values' (NaN, Inf or beyond float32 range)")
    return vec


def decode_event(value: bytes | None, n_features: int, max_bytes: int) -> _Event:
    """Decode one message value, raising :class:`EventError` with the reason."""
    if value is None or len(value) == 0:
        raise EventError("empty message value (tombstone)")
    if len(value) > max_bytes:
        raise EventError(f"message of {len(value)} bytes exceeds the limit of {max_bytes}")
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        detail = str(exc)
        reason = "invalid UTF-8" if "UTF-8" in detail else f"invalid JSON: {detail}"
        raise EventError(reason[:200]) from None
    if not isinstance(obj, dict):
        raise EventError("event is not a JSON object")
    device_id = _identifier(obj, "device_id", required=True)
    assert device_id is not None  # required=True never returns None
    if "values" not in obj:
        raise EventError("missing field 'values'")
    vec = _vector(obj["values"], n_features)
    ts_raw = obj.get("ts")
    ts = None if ts_raw is None else parse_timestamp(ts_raw)
    event_id = _identifier(obj, "id", required=False)
    return _Event(device_id=device_id, ts_ms=ts, event_id=event_id, values=vec)


def decode_batch(
    values: Sequence[bytes | None],
    *,
    kafka_timestamps: Sequence[int],
    n_features: int,
    max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
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

    Returns
    -------
    DecodedBatch
        ``values`` is ``(m, n_features)`` float32 with ``m <= len(values)``.

    Notes
    -----
    Plainly valid events take the fast path (:mod:`stream.fast_decode`); the
    rest, and only the rest, go through :func:`decode_event` one by one, which
    decides them and words the reasons.
    """
    fast = fast_pass(values, n_features=n_features, max_bytes=max_bytes)
    slow = _decode_each(values, fast.slow, kafka_timestamps, n_features, max_bytes)
    pairs = zip(fast.rows, fast.ts, strict=True)
    stamps = [int(kafka_timestamps[i]) if t is None else t for i, t in pairs]
    if not len(slow.rows):
        return DecodedBatch(
            values=fast.values, rows=np.asarray(fast.rows, dtype=np.int64),
            device_ids=fast.device_ids, event_ids=fast.event_ids,
            timestamps=np.asarray(stamps, dtype=np.int64), rejected=slow.rejected,
        )  # fmt: skip
    rows = np.concatenate([np.asarray(fast.rows, dtype=np.int64), slow.rows])
    order = np.argsort(rows, kind="stable")
    device_ids = fast.device_ids + slow.device_ids
    event_ids = fast.event_ids + slow.event_ids
    return DecodedBatch(
        values=np.concatenate([fast.values, slow.values])[order],
        rows=rows[order],
        device_ids=[device_ids[j] for j in order],
        event_ids=[event_ids[j] for j in order],
        timestamps=np.concatenate([np.asarray(stamps, dtype=np.int64), slow.timestamps])[order],
        rejected=slow.rejected,
    )


def _decode_each(
    values: Sequence[bytes | None],
    indices: Sequence[int],
    kafka_timestamps: Sequence[int],
    n_features: int,
    max_bytes: int,
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
            event = decode_event(values[i], n_features, max_bytes)
        except EventError as exc:
            rejected.append(Rejected(i, str(exc)))
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
    device_id: str, values: Sequence[float], *, ts: int | None = None, event_id: str | None = None
) -> bytes:
    """Encode one event following the contract (used by ``seismo produce``).

    Examples
    --------
    >>> encode_event("d1", [1.5, 2.0], ts=5, event_id="7")
    b'{"device_id":"d1","values":[1.5,2.0],"ts":5,"id":"7"}'
    """
    event: dict[str, object] = {"device_id": device_id, "values": [float(v) for v in values]}
    if ts is not None:
        event["ts"] = ts
    if event_id is not None:
        event["id"] = event_id
    return orjson.dumps(event)
