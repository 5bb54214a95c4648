"""The compact binary event encoding, ``application/x-seismo-f32``.

For producers that want to skip JSON: the message value is the ``d`` feature
values as little-endian float32 (``4 * d`` bytes, nothing else), and the
message is tagged with the Kafka header ``content-type:
application/x-seismo-f32``. The rest of the event lives where Kafka already
keeps it:

- ``device_id``: the message key (UTF-8, 1 to 256 characters; required);
- ``ts``: the Kafka message timestamp (set it at the producer);
- ``id``: the optional header ``seismo-event-id``.

Messages without a ``content-type`` header, or with ``application/json``, are
JSON events (:mod:`seismo.stream.scoring.codec`); any other content type is dead-lettered.

This module is pure: it encodes, and decodes a micro-batch of such messages
into one float32 matrix with one ``numpy.frombuffer`` call, without a Python
object per value.

Examples
--------
>>> value, headers = encode_f32([1.0, -2.5]), f32_headers("e-1")
>>> value.hex(), headers
('0000803f000020c0', [('content-type', b'application/x-seismo-f32'), ('seismo-event-id', b'e-1')])
>>> part = decode_f32([value, b"\\x00"], keys=[b"pump-7", b"pump-8"], indices=[0, 1],
...                   event_ids=["e-1", None], kafka_timestamps=[5, 6], n_features=2)
>>> part.values, part.device_ids, part.event_ids, part.timestamps.tolist()
(array([[ 1. , -2.5]], dtype=float32), ['pump-7'], ['e-1'], [5])
>>> part.rejected
[(1, 'application/x-seismo-f32 value of 1 bytes; expected 8 (2 float32)')]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from seismo.stream.scoring.fast_decode import MAX_ID_LENGTH

__all__ = ["CHANNELS_HEADER", "CONTENT_TYPE", "CONTENT_TYPE_HEADER", "EVENT_ID_HEADER",
           "JSON_CONTENT_TYPE", "F32Part", "channels_header", "decode_f32", "encode_f32",
           "f32_headers"]  # fmt: skip

#: The content type of the binary encoding.
CONTENT_TYPE = "application/x-seismo-f32"
#: The Kafka header that names a message's encoding.
CONTENT_TYPE_HEADER = "content-type"
#: The optional Kafka header that carries a binary event's id.
EVENT_ID_HEADER = "seismo-event-id"
#: The optional Kafka header that names positional values' channels, comma-separated in
#: their order (``seismo produce`` sets it): values in another order than the model's
#: are dead-lettered, not scored as other channels.
CHANNELS_HEADER = "seismo-channels"
#: The content type of JSON events (the default when the header is absent).
JSON_CONTENT_TYPE = "application/json"

_LE_F32 = np.dtype("<f4")


def encode_f32(values: Sequence[float] | np.ndarray) -> bytes:
    """One event's values as little-endian float32 bytes."""
    return np.ascontiguousarray(values, dtype=_LE_F32).tobytes()


def f32_headers(
    event_id: str | None = None, channels: Sequence[str] | None = None
) -> list[tuple[str, str | bytes | None]]:
    """The Kafka headers of a binary event (with its id and its values' channels, if given).

    >>> f32_headers(channels=["temp", "rpm"])[1]
    ('seismo-channels', b'temp,rpm')
    """
    headers: list[tuple[str, str | bytes | None]] = [(CONTENT_TYPE_HEADER, CONTENT_TYPE.encode())]
    if event_id is not None:
        headers.append((EVENT_ID_HEADER, event_id.encode()))
    if channels is not None:
        headers.append(channels_header(channels))
    return headers


def channels_header(channels: Sequence[str]) -> tuple[str, bytes]:
    """The header naming positional values' channels, in their order."""
    return CHANNELS_HEADER, ",".join(channels).encode()


@dataclass(frozen=True)
class F32Part:
    """The binary events of a batch that decoded, and the reasons for the rest.

    ``rows`` are positions in the consumed batch, ascending; ``rejected``
    holds ``(index, reason)`` pairs.
    """

    rows: np.ndarray
    values: np.ndarray
    device_ids: list[str]
    event_ids: list[str | None]
    timestamps: np.ndarray
    rejected: list[tuple[int, str]]


def _device_id(key: bytes | None) -> str:
    """The device id carried by a binary event's key, or a ``ValueError`` with the reason."""
    if not key:
        raise ValueError(f"{CONTENT_TYPE} event without a message key (the device id)")
    try:
        device = key.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{CONTENT_TYPE} message key is not UTF-8") from None
    if len(device) > MAX_ID_LENGTH:
        raise ValueError(f"message key longer than {MAX_ID_LENGTH} characters")
    return device


def decode_f32(
    values: Sequence[bytes | None],
    *,
    keys: Sequence[bytes | None],
    indices: Sequence[int],
    event_ids: Sequence[str | None],
    kafka_timestamps: Sequence[int],
    n_features: int,
) -> F32Part:
    """Decode the binary events at ``indices`` (ascending) of a consumed batch.

    ``event_ids`` has one entry per index. Rows whose value has the wrong
    length, holds a NaN or Inf, or whose key is missing or unusable are
    rejected with a reason; the rest become one ``(m, n_features)`` matrix.
    """
    size = 4 * n_features
    good: list[int] = []
    rejected: list[tuple[int, str]] = []
    devices: list[str] = []
    ids: list[str | None] = []
    for j, i in enumerate(indices):
        raw = values[i]
        if raw is None or len(raw) != size:
            got = 0 if raw is None else len(raw)
            rejected.append(
                (i, f"{CONTENT_TYPE} value of {got} bytes; expected {size} ({n_features} float32)")
            )
            continue
        try:
            devices.append(_device_id(keys[i]))
        except ValueError as exc:
            rejected.append((i, str(exc)))
            continue
        good.append(i)
        ids.append(event_ids[j])
    matrix = np.frombuffer(b"".join(values[i] or b"" for i in good), dtype=_LE_F32)
    matrix = matrix.reshape(len(good), n_features).astype(np.float32)
    finite = np.isfinite(matrix).all(axis=1)
    if not finite.all():
        for j in np.flatnonzero(~finite).tolist():
            rejected.append((good[j], "non-finite value in 'values' (NaN, Inf)"))
        rejected.sort()
        keep = np.flatnonzero(finite).tolist()
        good, matrix = [good[j] for j in keep], matrix[keep]
        devices, ids = [devices[j] for j in keep], [ids[j] for j in keep]
    return F32Part(
        rows=np.asarray(good, dtype=np.int64),
        values=matrix,
        device_ids=devices,
        event_ids=ids,
        timestamps=np.asarray([int(kafka_timestamps[i]) for i in good], dtype=np.int64),
        rejected=rejected,
    )
