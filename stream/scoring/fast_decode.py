"""The fast path of :func:`seismo.stream.scoring.codec.decode_batch`: typed decoding with msgspec.

Each value is decoded straight into a small struct (C code: JSON parsing, type
checks, no intermediate dicts), and the values of all events that pass become
one float32 matrix in one numpy call. Anything this path is not sure about — a
parse or type error, a wrong length, an ISO-8601 ``ts``, a value beyond
float32 or of 2**53 or more, an id out of bounds (a string too long, an
integer beyond 64 bits), a named ``values`` object whose names are not
exactly the model's channels — is handed back by index, and the full decoder
(:func:`seismo.stream.scoring.codec.decode_event`) decides it and words the reason. So the
fast path changes the speed of decoding, never its outcome (a Hypothesis test
compares the two on arbitrary input).

Named values (``"values": {"temp": 20.5, "rpm": 1200}``) take this path too
when ``channels`` is given: their names are mapped to the model's order.

Examples
--------
>>> fast = fast_pass([b'{"device_id":"a","values":[1,2],"id":7}', b'{"values":[1]}', None],
...                  n_features=2, max_bytes=1000)
>>> fast.rows, fast.device_ids, fast.event_ids, fast.slow
([0], ['a'], ['7'], [1, 2])
>>> fast.values
array([[1., 2.]], dtype=float32)
>>> named = fast_pass([b'{"device_id":"a","values":{"rpm":2,"temp":1}}'], n_features=2,
...                   max_bytes=1000, channels=["temp", "rpm"])
>>> named.values, named.slow
(array([[1., 2.]], dtype=float32), [])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Annotated

import msgspec
import numpy as np

#: Longest accepted ``device_id`` / ``id`` string.
MAX_ID_LENGTH = 256
#: Epoch-millisecond timestamps must lie in [0, MAX_TS_MS) (year ~5138).
MAX_TS_MS = 100_000_000_000_000


class _Event(msgspec.Struct, gc=False):
    # The bounds are checked here, in C, not per event in Python; an event outside
    # them fails to decode and goes to the full decoder, as any other doubt does.
    # msgspec decodes integers of any size, the full decoder (orjson) only 64-bit ones:
    # an integer ``id`` beyond int64 goes to the full decoder.
    device_id: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_LENGTH)]
    values: list[float] | dict[str, float]
    ts: Annotated[int, msgspec.Meta(ge=0, lt=MAX_TS_MS)] | None = None
    id: (Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_LENGTH)]
         | Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)] | None) = None  # fmt: skip


_DECODE = msgspec.json.Decoder(_Event).decode


@dataclass
class FastPass:
    """Events the fast path accepted (in batch order) and the indices it left to the full one."""

    rows: list[int]
    device_ids: list[str]
    event_ids: list[str | None]
    ts: list[int | None]
    values: np.ndarray
    slow: list[int]


def fast_pass(
    values: Sequence[bytes | None],
    *,
    n_features: int,
    max_bytes: int,
    channels: Sequence[str] | None = None,
) -> FastPass:
    """Decode what is plainly valid; return the rest's indices in ``slow``.

    ``channels`` are the model's ``n_features`` channel names, in its order:
    named values are accepted only with them.
    """
    index = None if channels is None else {name: j for j, name in enumerate(channels)}
    rows: list[int] = []
    events: list[_Event] = []
    slow: list[int] = []
    for i, raw in enumerate(values):
        if not raw or len(raw) > max_bytes:
            slow.append(i)
            continue
        try:
            event = _DECODE(raw)
        except Exception:  # noqa: BLE001 - DecodeError, but also RecursionError (deep
            # nesting in an unknown field), MemoryError...: the full decoder words the reason
            slow.append(i)
            continue
        if type(event.values) is dict:
            ordered = _in_order(event.values, index, n_features)
            if ordered is None:
                slow.append(i)
                continue
            event.values = ordered
        if len(event.values) != n_features:
            slow.append(i)
            continue
        rows.append(i)
        events.append(event)
    return _finish(rows, events, slow, n_features)


def _in_order(
    named: dict[str, float], index: Mapping[str, int] | None, n_features: int
) -> list[float] | None:
    """Named values in the model's order, or ``None`` unless the names are exactly its channels.

    >>> index = {"a": 0, "b": 1}
    >>> _in_order({"b": 2.0, "a": 1.0}, index, 2), _in_order({"a": 1.0}, index, 2)
    ([1.0, 2.0], None)
    """
    if index is None or len(named) != n_features or len(index) != n_features:
        return None
    row = [0.0] * n_features
    for name, value in named.items():
        j = index.get(name)
        if j is None:
            return None
        row[j] = value
    return row


#: Values at least this large go to the full decoder: an integer there may not be exact
#: in float64, and the full decoder rounds integers to float32 directly, not twice.
EXACT_BELOW = 2.0**53


def _finish(rows: list[int], events: list[_Event], slow: list[int], d: int) -> FastPass:
    """One matrix for all accepted rows; rows beyond float32, or with a value of
    `EXACT_BELOW` or more, go slow."""
    if not events:
        return FastPass([], [], [], [], np.empty((0, d), dtype=np.float32), slow)
    n = len(events)
    with np.errstate(over="ignore", invalid="ignore"):  # beyond float32: inf, sent slow below
        flat = chain.from_iterable([e.values for e in events])
        matrix = np.fromiter(flat, dtype=np.float32, count=n * d).reshape(n, d)
    ok = (np.abs(matrix) < EXACT_BELOW).all(axis=1)  # False for inf and NaN too
    if not ok.all():
        slow = sorted(slow + [rows[j] for j in np.flatnonzero(~ok)])
        keep = np.flatnonzero(ok)
        rows = [rows[j] for j in keep]
        events = [events[j] for j in keep]
        matrix = matrix[keep]
    return FastPass(
        rows=rows,
        device_ids=[e.device_id for e in events],
        event_ids=[None if e.id is None else str(e.id) for e in events],
        ts=[e.ts for e in events],
        values=matrix,
        slow=slow,
    )
