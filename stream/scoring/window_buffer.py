"""Per-device sliding windows of readings, for scoring shapes over time.

Each device (message key) keeps its last readings of ``channels`` values in
a ring buffer (one float32 array and the readings' timestamps). A window is
``window`` readings ``step`` apart (``step`` = 1: consecutive readings; 12:
every 12th, so 48 readings of a 5-minute series cover four hours rather
than one); it spans ``(window - 1) * step + 1`` readings. Every ``stride``
readings, once the span is full, the buffer yields the window in time-major
order, flattened, the layout the window models take
(:mod:`seismo.models.nets.sequence`): ``row[t * channels + c]``.

A reading whose source offset is not above the last one seen for its
partition and device is a replay (the scorer is at-least-once) and is
ignored, so a replayed batch does not put readings twice into a window.

Examples
--------
>>> import numpy as np
>>> buffer = WindowBuffer(window=3, stride=2, channels=1)
>>> out = [buffer.push("d", np.array([v]), ts=v, partition=0, offset=v) for v in range(6)]
>>> [None if w is None else w.values.tolist() for w in out]
[None, None, [0.0, 1.0, 2.0], None, [2.0, 3.0, 4.0], None]
>>> buffer.push("d", np.array([9.0]), ts=9, partition=0, offset=4) is None  # a replay
True
>>> out[4].start_ts, out[4].end_ts
(2, 4)
>>> spaced = WindowBuffer(window=3, stride=1, channels=1, step=2)
>>> out = [spaced.push("d", np.array([v]), ts=v, partition=0, offset=v) for v in range(6)]
>>> [None if w is None else w.values.tolist() for w in out]
[None, None, None, None, [0.0, 2.0, 4.0], [1.0, 3.0, 5.0]]
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from seismo.models.columns import is_positional, window_of, window_step_of
from seismo.models.data import STEP_MARK
from seismo.stream.scoring.codec import DecodedBatch


@dataclass(frozen=True)
class Window:
    """One complete window of a device: flattened values and its time span (epoch ms)."""

    device_id: str
    values: np.ndarray  # (window * channels,) float32, time-major
    start_ts: int
    end_ts: int


class _Ring:
    __slots__ = ("values", "stamps", "count", "since", "partition", "offset", "others")

    def __init__(self, span: int, channels: int) -> None:
        self.values = np.zeros((span, channels), dtype=np.float32)
        self.stamps = np.zeros(span, dtype=np.int64)
        self.count = 0  # readings pushed so far
        self.since = 0  # readings since the last window yielded
        #: where the last reading came from (a device's readings share a partition, so
        #: the last offsets of other partitions are kept only when there are any)
        self.partition = -1
        self.offset = -1
        self.others: dict[int, int] | None = None

    def is_new(self, partition: int, offset: int) -> bool:
        """Whether ``offset`` lies beyond the last reading seen from ``partition``; if so,
        remember it."""
        if partition == self.partition:
            last = self.offset
        else:
            last = -1 if self.others is None else self.others.get(partition, -1)
        if offset <= last:
            return False
        if partition != self.partition:
            if self.partition >= 0:
                self.others = self.others or {}
                self.others[self.partition] = self.offset
            self.partition = partition
        self.offset = offset
        return True


class WindowBuffer:
    """Ring buffers per device; :meth:`push` one reading, get a :class:`Window` when due.

    Buffers are kept in two parts (a 2Q cache). A device heard for the first
    time gets its buffer in a probation queue of at most a quarter of
    ``max_devices``, first in, first out; its second new reading moves the
    buffer to the main part, which holds at most ``max_devices``, the least
    recently heard going first. The ids dropped from probation are
    remembered (up to ``max_devices`` of them), and one heard again goes
    straight to the main part. So fresh device ids, however many (a producer
    putting a new id in every event, or a hostile one), drop each other in
    probation, not the windows of devices that report steadily, while
    devices that come back or join still get buffers, pushing out the main
    part's least recently heard. At most ``max_devices`` plus a quarter are
    held. Every drop is counted in :attr:`evictions`, and in
    :attr:`dropped_full` when the buffer held a whole window; the scorer logs
    them (docs/reliability.md).

    >>> small = WindowBuffer(window=2, stride=1, channels=1, max_devices=4)
    >>> for i, device in enumerate(["a", "a", "f1", "f2", "f3", "f4", "f5", "f6"]):
    ...     _ = small.push(device, np.array([1.0]), ts=0, partition=0, offset=i)
    >>> len(small), small.evictions, small.devices()  # f1 .. f5 dropped in probation
    (2, 5, ['a', 'f6'])
    """

    def __init__(
        self, window: int, stride: int, channels: int, step: int = 1,
        max_devices: int | None = None,
    ) -> None:  # fmt: skip
        if window < 1 or stride < 1 or channels < 1 or step < 1:
            raise ValueError("window, stride, channels and step must be at least 1")
        if max_devices is not None and max_devices < 1:
            raise ValueError(f"max_devices must be at least 1, got {max_devices}")
        self.window, self.stride, self.channels, self.step = window, stride, channels, step
        self.span = (window - 1) * step + 1
        self.max_devices = max_devices
        #: Buffers dropped to stay under ``max_devices``, and of those the ones that
        #: had held a whole window.
        self.evictions = self.dropped_full = 0
        #: first-time devices (oldest first), the main part (least recently heard first),
        #: and the ids dropped from probation (oldest first)
        self._probation: OrderedDict[str, _Ring] = OrderedDict()
        self._rings: OrderedDict[str, _Ring] = OrderedDict()
        self._ghosts: OrderedDict[str, None] = OrderedDict()
        cap = max_devices or 0
        # ids only, for as many devices as the buffers: a fleet of up to 1.25 * max_devices
        # reporting in turn comes back to its ghosts before they are forgotten
        self._probation_cap, self._ghost_cap = max(1, cap // 4), max(1, cap)

    def __len__(self) -> int:
        """Devices with a buffer."""
        return len(self._probation) + len(self._rings)

    def devices(self) -> list[str]:
        """The devices with a buffer, sorted."""
        return sorted([*self._probation, *self._rings])

    def _ring(self, device_id: str) -> _Ring:
        """The device's buffer (a new one if it has none); one in the main part is made
        its most recently heard."""
        ring = self._rings.get(device_id)
        if ring is not None:
            self._rings.move_to_end(device_id)
            return ring
        ring = self._probation.get(device_id)
        if ring is not None:
            return ring  # moved to the main part by push once its reading is new
        if device_id in self._ghosts:
            del self._ghosts[device_id]
            ring = self._rings[device_id] = _Ring(self.span, self.channels)
        else:
            ring = self._probation[device_id] = _Ring(self.span, self.channels)
        self._trim()
        return ring

    def _trim(self) -> None:
        """Drop buffers until each part is within its cap. The buffer just added or moved
        is the newest of its part and a part over its cap (at least 1) holds two or more,
        so it is never the one dropped."""
        if self.max_devices is None:
            return
        while len(self._probation) > self._probation_cap:
            device, dropped = self._probation.popitem(last=False)
            self._ghosts[device] = None
            if len(self._ghosts) > self._ghost_cap:
                self._ghosts.popitem(last=False)
            self._count_drop(dropped)
        while len(self._rings) > self.max_devices:
            self._count_drop(self._rings.popitem(last=False)[1])

    def _count_drop(self, dropped: _Ring) -> None:
        self.evictions += 1
        self.dropped_full += dropped.count >= self.span

    def push(
        self, device_id: str, values: np.ndarray, ts: int, partition: int, offset: int
    ) -> Window | None:
        """Add one reading; the device's window when it is full and ``stride`` readings on."""
        span = self.span
        ring = self._ring(device_id)
        if not ring.is_new(partition, offset):
            return None
        if ring.count and device_id in self._probation:  # its second new reading
            self._rings[device_id] = self._probation.pop(device_id)
            self._trim()
        slot = ring.count % span
        ring.values[slot] = values
        ring.stamps[slot] = ts
        ring.count += 1
        ring.since += 1
        if ring.count < span:
            return None
        if ring.count > span and ring.since < self.stride:
            return None
        ring.since = 0
        order = (ring.count + np.arange(0, span, self.step)) % span
        return Window(device_id, ring.values[order].reshape(-1).copy(),
                      int(ring.stamps[order[0]]), int(ring.stamps[order[-1]]))  # fmt: skip

    def forget(self, device_ids: set[str] | None = None) -> None:
        """Drop the buffers of ``device_ids`` (all when ``None``), e.g. after a revocation."""
        if device_ids is None:
            self._probation.clear()
            self._rings.clear()
            self._ghosts.clear()
        else:
            for device in device_ids:
                self._probation.pop(device, None)
                self._rings.pop(device, None)
                self._ghosts.pop(device, None)


def channel_names(feature_names: list[str], window: int) -> list[str]:
    """Channel names of a window model: its last time step's feature names, without the
    ``@t-k`` suffix that ``seismo train --window`` gives them.

    >>> channel_names(["rpm@t-1", "temp@t-1", "rpm@t-0", "temp@t-0"], 2)
    ['rpm', 'temp']
    >>> channel_names(["f0", "f1", "f2", "f3"], 2)
    ['f2', 'f3']
    """
    channels = len(feature_names) // window
    last = feature_names[(window - 1) * channels :]
    return [name.split(STEP_MARK)[0] for name in last]


def window_mismatch(
    feature_names: Sequence[str], window: int, step: int = 1, arch_window: int | None = None
) -> str | None:
    """Why a model named ``feature_names`` cannot be scored with ``--window window
    --window-step step``, or ``None``. A model ``seismo train --window W [--window-step
    S]`` wrote names its features ``channel@t-k`` (:data:`~seismo.models.data.STEP_MARK`,
    ``k`` the readings back, in steps of S): it scores windows of exactly W readings S
    apart.

    >>> window_mismatch(["a@t-1", "b@t-1", "a@t-0", "b@t-0"], 2) is None
    True
    >>> window_mismatch(["a@t-1", "b@t-1", "a@t-0", "b@t-0"], 1)
    'it scores windows of 2 readings (trained with --window 2): start the scorer with --window 2'
    >>> window_mismatch(["a@t-12", "a@t-6", "a@t-0"], 3)
    'it scores windows of 3 readings 6 apart (trained with --window 3 --window-step 6): start \
the scorer with --window 3 --window-step 6'
    >>> window_mismatch(["a@t-2", "a@t-1", "a@t-0"], 3, step=6)
    'it scores windows of 3 consecutive readings (trained with --window 3): start the scorer \
with --window 3 and without --window-step'
    >>> window_mismatch(["rpm", "temp"], 2) is None  # see window_doubt
    True

    ``arch_window`` is the window a sequence architecture (``conv1d``, ``lstm``) holds
    in its config, for a model trained on rows that already are flattened windows
    (names without ``@t-k``): scored as such rows without ``--window``, or as windows
    of readings with ``--window`` equal to it:

    >>> window_mismatch(["r1", "t1", "r0", "t0"], 4, arch_window=2)
    'it scores windows of 2 readings (its architecture takes 2): start the scorer with \
--window 2, or without --window for events that already are flattened windows'
    >>> window_mismatch(["r1", "t1", "r0", "t0"], 1, arch_window=2) is None
    True

    Offsets that are not evenly spaced from the newest reading make no window the
    scorer can build:

    >>> window_mismatch(["a@t-3", "a@t-1", "a@t-0"], 3)
    'its features name time steps t-3, t-1, t-0, not evenly spaced from t-0: the scorer \
builds windows of readings evenly spaced (--window-step)'
    """
    trained = window_of(feature_names)
    if trained is None:
        if arch_window is None or window == 1 or arch_window == window:
            return None
        return (f"it scores windows of {arch_window} readings (its architecture takes "
                f"{arch_window}): start the scorer with --window {arch_window}, or without "
                "--window for events that already are flattened windows")  # fmt: skip
    spacing = window_step_of(feature_names)
    if spacing is None:
        steps = sorted({name.rpartition(STEP_MARK)[2] for name in feature_names}, key=int,
                       reverse=True)  # fmt: skip
        return (f"its features name time steps {', '.join('t-' + k for k in steps)}, not "
                "evenly spaced from t-0: the scorer builds windows of readings evenly spaced "
                "(--window-step)")  # fmt: skip
    if (trained, spacing) == (window, step):
        return None
    if spacing > 1:
        flags = f"--window {trained} --window-step {spacing}"
        return (f"it scores windows of {trained} readings {spacing} apart (trained with "
                f"{flags}): start the scorer with {flags}")  # fmt: skip
    if trained == window:
        return (f"it scores windows of {trained} consecutive readings (trained with --window "
                f"{trained}): start the scorer with --window {trained} and without "
                "--window-step")  # fmt: skip
    return (f"it scores windows of {trained} readings (trained with --window {trained}): "
            f"start the scorer with --window {trained}")  # fmt: skip


def window_doubt(
    feature_names: Sequence[str], window: int, arch_window: int | None = None
) -> str | None:
    """What to say when ``--window window`` (> 1) serves a model whose features name
    channels without time steps: ``seismo train`` without ``--window`` writes such a
    model, which scores one reading, so windows of readings would be read as its
    channels. A model built in Python for windows may be named so too, hence a
    warning, not a refusal; generic names (``f0``, ``f1``, ...) say nothing, nor does a
    sequence architecture's ``arch_window`` (its config says it takes windows).

    >>> window_doubt(["rpm", "temp", "load", "flow"], 2)
    'its features name 4 channels without time steps (seismo train without --window \
writes such a model): --window 2 reads 2 readings of 2 values as those channels; if it \
was not trained on such windows, leave --window out'
    >>> window_doubt(["f0", "f1", "f2", "f3"], 2) is None, window_doubt(["a", "b"], 1) is None
    (True, True)
    >>> window_doubt(["r1", "t1", "r0", "t0"], 2, arch_window=2) is None
    True
    """
    if (window == 1 or is_positional(feature_names) or arch_window is not None
            or window_of(feature_names) is not None):  # fmt: skip
        return None
    n, each = len(feature_names), len(feature_names) // window
    values = f"{each} value" + ("s" if each != 1 else "")
    return (f"its features name {n} channels without time steps (seismo train without "
            f"--window writes such a model): --window {window} reads {window} readings of "
            f"{values} as those channels; if it was not trained on such windows, leave "
            "--window out")  # fmt: skip


def reading_channels(feature_names: Sequence[str], window: int) -> list[str]:
    """The names an event's named values are matched against, in model order: the
    model's feature names, or with a window model (``window`` > 1) one reading's.

    >>> reading_channels(["rpm@t-1", "temp@t-1", "rpm@t-0", "temp@t-0"], 2)
    ['rpm', 'temp']
    >>> reading_channels(["a@b", "c"], 1)
    ['a@b', 'c']
    """
    names = list(feature_names)
    return channel_names(names, window) if window > 1 else names


def gather(
    buffer: WindowBuffer, decoded: DecodedBatch, partitions: Sequence[int],
    offsets: Sequence[int],
) -> tuple[DecodedBatch, np.ndarray]:  # fmt: skip
    """The windows a batch completes, as a batch of their own, and their start times.

    Each window is attributed to the event that completed it (its row, id and
    ``ts``), so alerts keep pointing at a real message. ``partitions`` and
    ``offsets`` are per consumed message; rejected messages stay rejected.
    """
    values, rows, devices, event_ids, ends, starts = [], [], [], [], [], []
    for i in range(len(decoded)):
        row = int(decoded.rows[i])
        window = buffer.push(decoded.device_ids[i], decoded.values[i],
                             int(decoded.timestamps[i]), partitions[row], offsets[row])  # fmt: skip
        if window is None:
            continue
        values.append(window.values)
        rows.append(row)
        devices.append(window.device_id)
        event_ids.append(decoded.event_ids[i])
        ends.append(window.end_ts)
        starts.append(window.start_ts)
    width = buffer.window * buffer.channels
    batch = DecodedBatch(
        values=np.array(values, dtype=np.float32).reshape(len(values), width),
        rows=np.array(rows, dtype=np.int64), device_ids=devices, event_ids=event_ids,
        timestamps=np.array(ends, dtype=np.int64), rejected=decoded.rejected,
    )  # fmt: skip
    return batch, np.array(starts, dtype=np.int64)
