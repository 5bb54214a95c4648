"""The per-device window buffer against a naive model (lists, re-sliced every time)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from seismo.stream.scoring.window_buffer import WindowBuffer

readings = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 1),  # device, partition
              st.integers(0, 3),  # how far back a replay reaches (0 = a new reading)
              st.floats(-1e3, 1e3, width=32)),  # fmt: skip
    max_size=120,
)


def naive(stream, window, stride, channels, step=1):
    """Windows as a reader would define them: every stride-th full window of new readings,
    each of ``window`` readings ``step`` apart."""
    seen = {}
    history = {}
    out = []
    for device, partition, offset, ts, values in stream:
        if offset <= seen.get((device, partition), -1):
            out.append(None)
            continue
        seen[(device, partition)] = offset
        rows = history.setdefault(device, [])
        rows.append((ts, values))
        i = len(rows) - 1
        span = (window - 1) * step + 1
        if i >= span - 1 and (i - (span - 1)) % stride == 0:
            part = rows[i - span + 1 : i + 1 : step]
            out.append((np.concatenate([v for _, v in part]).tolist(), part[0][0], part[-1][0]))
        else:
            out.append(None)
    return out


@settings(max_examples=300)
@given(readings=readings, window=st.integers(1, 6), stride=st.integers(1, 4),
       channels=st.integers(1, 3), step=st.integers(1, 4))  # fmt: skip
def test_the_buffer_yields_exactly_the_naive_windows(readings, window, stride, channels, step):
    offsets = {}
    stream = []
    for ts, (device, partition, back, value) in enumerate(readings):
        latest = offsets.get(partition, -1)
        offset = latest - back if back and latest >= 0 else latest + 1
        offsets[partition] = max(latest, offset)
        values = (np.full(channels, value) + np.arange(channels)).astype(np.float32)
        stream.append((device, partition, offset, ts, values))
    buffer = WindowBuffer(window, stride, channels, step)
    got = []
    for device, partition, offset, ts, values in stream:
        w = buffer.push(device, values, ts=ts, partition=partition, offset=offset)
        got.append(None if w is None else (w.values.tolist(), w.start_ts, w.end_ts))
    assert got == naive(stream, window, stride, channels, step)


def test_forget_drops_a_device_and_it_fills_again():
    buffer = WindowBuffer(window=2, stride=1, channels=1)
    one = np.ones(1, dtype=np.float32)
    assert buffer.push("d", one, 0, 0, 0) is None and buffer.push("d", one, 1, 0, 1) is not None
    buffer.forget({"d"})
    assert len(buffer) == 0 and buffer.push("d", one, 2, 0, 2) is None


def test_evictions_count_the_whole_windows_dropped() -> None:
    buffer = WindowBuffer(window=3, stride=1, channels=1, max_devices=100)
    offset = 0

    def push(device: str) -> object:
        nonlocal offset
        offset += 1
        return buffer.push(device, np.ones(1, dtype=np.float32), ts=offset, partition=0,
                           offset=offset)  # fmt: skip

    for i in range(150):
        for _ in range(3):
            push(f"full-{i}")  # whole windows, least recently heard first
    for i in range(20):
        push(f"fresh-{i}")
    assert len(buffer) == 100 and buffer.evictions == 70 and buffer.dropped_full == 70
    assert buffer.devices()[:1] == ["fresh-0"] and "full-69" not in buffer.devices()
    # a device that comes back (or joins) gets a buffer, least recently heard ones go
    assert [push("full-0") for _ in range(3)][-1] is not None
