"""The per-device rule over a whole batch: the verdicts of row-by-row ``judge``, faster.

:func:`~seismo.stream.scoring.devices.rule.judge_batch` judges row after row,
and each row folds its reading into one :class:`RunningStats` object per
channel. :func:`judge_grouped` gives the same verdicts and leaves the same
states, bit for bit, with less Python per row:

- the **window check** smooths the errors row by row (``math.fsum`` over the
  device's recent errors, kept in a local list), then advances the window
  statistics one step per occurrence, like the level check below;
- the **level check** runs one step per *occurrence*: step ``t`` takes the
  ``t``-th row of every device in the batch at once and does the same float64
  arithmetic as :meth:`RunningStats.merge` on ``(devices, channels)`` arrays.
  Rows of one device stay in order; rows of different devices never touch
  the same state, so their order between devices changes nothing. Devices
  are numbered most rows first, so the devices of a step are a prefix of
  those arrays: each step works on slices, with no gather or scatter.

- when a whole batch is **steady** (every device's statistics non-empty and
  either all growing below their cap or all at it; for the level check, every
  device warm already), each step skips the checks and masks that only the
  other cases need (:func:`_regime`, :func:`_merge_steady`): about a quarter
  fewer numpy calls per step.

Elementwise ``+ - * /`` and ``sqrt`` are correctly rounded in numpy as in
Python, and every expression keeps the reference's order of operations, so
the results are identical, not merely close. Batches the fast path does not
cover (non-finite inputs, ``level_smooth`` > 1, a stored state with another
channel count) go to the reference, which raises or judges exactly as before.
"""

from __future__ import annotations

import math
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass

import numpy as np

from seismo.models.calibration import Calibration
from seismo.stream.scoring.devices.rule import (
    MIN_STD,
    BatchVerdicts,
    DeviceRule,
    DeviceState,
    judge_batch,
)
from seismo.stream.scoring.stats import RunningStats
from seismo.stream.scoring.threshold import BAND_FLOOR


def judge_grouped(
    states: MutableMapping[str, DeviceState | None], device_ids: Sequence[str],
    log_errors: np.ndarray, readings: np.ndarray,
    positions: Sequence[tuple[int, int]] | np.ndarray, version: str, calibration: Calibration,
    rule: DeviceRule, channels: str | None = None,
) -> BatchVerdicts:  # fmt: skip
    """:func:`~seismo.stream.scoring.devices.rule.judge_batch`'s verdicts and states, per batch.

    Same parameters; ``readings`` is ``(m, channels)``, and ``positions`` may also be an
    ``(m, 2)`` integer array of (partition, offset) rows.

    Examples
    --------
    >>> cal = Calibration(count=9, mean=1.0, std=0.1, quantiles={}, log_mean=0.0, log_std=0.1)
    >>> states = {"a": None}
    >>> v = judge_grouped(states, ["a", "a"], np.array([0.0, 0.9]), np.zeros((2, 1)),
    ...                   [(0, 7), (0, 8)], "v1", cal, DeviceRule(smooth=1))
    >>> v.flags.tolist(), v.checks(1), states["a"].offsets
    ([False, True], ['window'], {0: 8})
    """
    log_errors = np.asarray(log_errors, dtype=np.float64)
    values = np.asarray(readings, dtype=np.float64)
    if not _covered(states, device_ids, log_errors, values, rule):
        if isinstance(positions, np.ndarray):
            positions = [(p, o) for p, o in positions.tolist()]
        return judge_batch(states, device_ids, log_errors, readings, positions, version,
                           calibration, rule, channels)  # fmt: skip
    width = values.shape[1] if values.ndim == 2 else 0
    names, rows, steps = _by_occurrence(device_ids)
    found: dict[str, DeviceState] = {}
    for name in dict.fromkeys(device_ids):  # new devices enter ``states`` as in the reference
        state = states.get(name)
        if state is None:
            state = states[name] = DeviceState.start(version, calibration, rule, width)
        if channels is not None:
            state.adopt_channels(channels, width, version)
        state.follow(version, calibration, rule)
        found[name] = state
    owned = [found[name] for name in names]
    window = _windows(owned, rows, steps, log_errors, rule)
    level_z = _levels(owned, rows, steps, values, window[0] > rule.k, rule)
    for row, partition, offset in _last_offsets(rows, positions):
        owned[row].offsets[partition] = offset
    window_flags, level_flags = window[0] > rule.k, level_z > rule.level_threshold
    return BatchVerdicts(window_flags | level_flags, window_flags, level_flags, window[0],
                         level_z, window[1], window[2], window[3], rule.k)  # fmt: skip


def _last_offsets(
    rows: np.ndarray, positions: Sequence[tuple[int, int]] | np.ndarray
) -> list[tuple[int, int, int]]:
    """``(device, partition, offset)`` of the last row of each device and partition, the
    offset the reference leaves in the state (it writes every row's, in batch order), in
    the order of each pair's first row (the order the reference adds new partitions in).

    >>> _last_offsets(np.array([0, 1, 0, 0]), [(3, 10), (3, 11), (3, 12), (2, 13)])
    [(0, 3, 12), (1, 3, 11), (0, 2, 13)]
    """
    pos = np.asarray(positions, dtype=np.int64).reshape(len(rows), 2)
    order = np.lexsort((np.arange(len(rows)), pos[:, 0], rows))  # device, partition, batch order
    device, partition = rows[order], pos[order, 0]
    new_pair = (device[1:] != device[:-1]) | (partition[1:] != partition[:-1])
    first, last = np.flatnonzero(np.r_[True, new_pair]), np.flatnonzero(np.r_[new_pair, True])
    by_first = np.argsort(order[first], kind="stable")
    last = last[by_first]
    return list(zip(device[last].tolist(), partition[last].tolist(), pos[order[last], 1].tolist(),
                    strict=True))  # fmt: skip


def _covered(
    states: MutableMapping[str, DeviceState | None], device_ids: Sequence[str],
    log_errors: np.ndarray, values: np.ndarray, rule: DeviceRule,
) -> bool:  # fmt: skip
    """Whether the fast path gives the reference's result for this batch."""
    if rule.level_smooth > 1 or values.ndim != 2 or len(values) != len(device_ids):
        return False
    if len(log_errors) != len(device_ids) or not len(device_ids):
        return False
    if not (np.isfinite(log_errors).all() and np.isfinite(values).all()):
        return False
    channels = values.shape[1]
    for name in set(device_ids):
        state = states.get(name)
        if state is not None and (len(state.level) != channels
                                  or (state.bounds and len(state.bounds) != channels)):
            return False  # fmt: skip
    return True


def _windows(
    owned: list[DeviceState], rows: np.ndarray, steps: _Steps, log_errors: np.ndarray,
    rule: DeviceRule,
) -> np.ndarray:  # fmt: skip
    """The window check: ``(4, m)`` window_z, mean, std, smoothed.

    The smoothed errors depend on the errors alone, so they are computed first,
    row by row (``math.fsum``, as the reference); the statistics then advance
    one step per occurrence, every device of the step at once.
    """
    out = np.empty((4, len(rows)), dtype=np.float64)
    out[3] = _smoothed(owned, rows, log_errors, rule.smooth)
    xs, found = out[3][steps.order], np.empty((3, len(rows)), dtype=np.float64)  # step order
    stats = np.array([(s.window.count, s.window.mean, s.window.m2) for s in owned],
                     dtype=np.float64).reshape(len(owned), 3)  # fmt: skip
    count, mean, m2 = stats[:, 0].copy(), stats[:, 1].copy(), stats[:, 2].copy()
    changed = np.zeros(len(owned), dtype=bool)
    history = float(rule.history)
    regime = _regime(count[:, None], m2[:, None], steps.counts, history)
    for start, stop in steps.spans:
        n, x = stop - start, xs[start:stop]  # the step's devices are 0 .. n-1, in order
        c, u, s2 = count[:n], mean[:n], m2[:n]
        if regime is None:
            variance = _variance(s2, c)
            std = np.sqrt(np.where(variance < 0.0, 0.0, variance),  # max(v, 0.0): -0.0 stays
                          out=found[2, start:stop])  # fmt: skip
        else:  # no empty statistics, m2 never below +0.0 (see _regime)
            std = np.sqrt(s2 / c, out=found[2, start:stop])
        window_z = np.divide(x - u, np.maximum(std, MIN_STD), out=found[0, start:stop])
        found[1, start:stop] = u
        width = rule.k * np.maximum(std, BAND_FLOOR * 1.0)  # learning_band in the log space
        learnt = np.minimum(np.maximum(x, u - width), u + width)
        merged = _merge_steady(c, u, s2, learnt, history, regime)
        keep = None if rule.learn_anomalies else ~(window_z > rule.k)
        if keep is None or keep.all():
            count[:n], mean[:n], m2[:n] = merged
            changed[:n] = True
        else:  # a window above k is not learnt: its device keeps its statistics as they were
            count[:n], mean[:n], m2[:n] = [np.where(keep, new, old)
                                           for new, old in zip(merged, (c, u, s2), strict=True)]
            changed[:n] |= keep
    for i in np.flatnonzero(changed).tolist():  # the others keep their statistics as they are
        owned[i].window = RunningStats(float(count[i]), float(mean[i]), float(m2[i]))
    out[:3, steps.order] = found
    return out


def _smoothed(
    owned: list[DeviceState], rows: np.ndarray, log_errors: np.ndarray, smooth: int
) -> np.ndarray:
    """Each row's mean of its device's last ``smooth`` errors (``recent`` is updated).

    Device by device: the device's recent errors, then its errors of the batch
    in order, one ``math.fsum`` over each row's last ``smooth`` of them (the
    sum is correctly rounded, so it does not depend on how it is cut).

    >>> s = DeviceState("v", RunningStats(), recent=[1.0, 2.0])
    >>> _smoothed([s], np.array([0, 0]), np.array([3.0, 6.0]), 3).tolist(), s.recent
    ([2.0, 3.6666666666666665], [2.0, 3.0, 6.0])
    """
    by_device = np.argsort(rows, kind="stable")
    errors = log_errors[by_device].tolist()
    found: list[float] = []
    fsum, start, keep = math.fsum, 0, smooth - 1
    for state, count in zip(owned, np.bincount(rows, minlength=len(owned)).tolist(),
                            strict=True):  # fmt: skip
        seq = state.recent[-keep:] if keep else []
        head = len(seq)
        seq += errors[start:start + count]
        full, end = max(head, keep), head + count  # from ``full`` on, windows hold ``smooth``
        found += [fsum(seq[:i + 1]) / (i + 1) for i in range(head, min(full, end))]
        found += [fsum(seq[i - keep:i + 1]) / smooth for i in range(full, end)]
        state.recent = seq[-smooth:]
        start += count
    out = np.empty(len(rows), dtype=np.float64)
    out[by_device] = found
    return out


def _variance(m2: np.ndarray, count: np.ndarray) -> np.ndarray:
    """``m2 / count``, 0 where ``count`` is 0 (:attr:`RunningStats.variance`).

    >>> _variance(np.array([2.0, 5.0]), np.array([4.0, 0.0])).tolist()
    [0.5, 0.0]
    """
    if count.min() > 0:
        return m2 / count
    return np.divide(m2, count, out=np.zeros_like(m2), where=count > 0)


#: The statistics of every device of a batch grow without reaching their cap.
BELOW_CAP = "below"
#: The statistics of every device of a batch are at their cap (``count == window``).
AT_CAP = "cap"


def _regime(count: np.ndarray, m2: np.ndarray, rows: np.ndarray, window: float) -> str | None:
    """Whether a whole batch takes one of the two steady paths of :func:`_merge_steady`.

    ``count`` and ``m2`` are ``(devices, channels)`` at the start of the batch, ``rows``
    each device's rows in it. Both paths need no empty statistics and no ``m2`` below
    +0.0 (-0.0 included): ``m2`` then never drops below +0.0, so the variance needs no
    clamp. :data:`BELOW_CAP` when no device can reach ``window`` in the batch (it learns
    at most one reading per row), :data:`AT_CAP` when every count is ``window`` (it
    stays there); None otherwise (the general :func:`_merge_one`, step by step).

    >>> r = np.array([2, 1])
    >>> _regime(np.array([[3.0], [5.0]]), np.array([[1.0], [0.0]]), r, 10.0)
    'below'
    >>> _regime(np.array([[9.0], [5.0]]), np.array([[1.0], [0.5]]), r, 10.0) is None
    True
    >>> _regime(np.array([[10.0], [10.0]]), np.array([[1.0], [2.0]]), r, 10.0)
    'cap'
    >>> _regime(np.array([[3.0], [0.0]]), np.array([[1.0], [0.0]]), r, 10.0) is None
    True
    >>> _regime(np.array([[3.0], [5.0]]), np.array([[1.0], [-0.0]]), r, 10.0) is None
    True
    """
    if not len(count) or not count.min() > 0 or np.signbit(m2).any():
        return None
    if (count.max(axis=1) + rows).max() <= window:
        return BELOW_CAP
    if (count == window).all():
        return AT_CAP
    return None


def _merge_steady(
    count: np.ndarray, mean: np.ndarray, m2: np.ndarray, x: np.ndarray, window: float,
    regime: str | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """:func:`_merge_one`, without its checks where :func:`_regime` vouches for the whole
    batch. The same operations in the same order (the cap's ``window + 1.0`` is the
    count + 1.0 of every device), so the same bits:

    >>> c, u, s2, x = (np.array([v, v]) for v in (4.0, 0.25, 0.5, 0.7))
    >>> all((a == b).all() for a, b in zip(_merge_steady(c, u, s2, x, 4.0, AT_CAP),
    ...                                    _merge_one(c, u, s2, x, 4.0)))
    True
    """
    if regime == BELOW_CAP:
        n = count + 1.0
        delta = x - mean
        return n, mean + delta / n, m2 + delta * delta * count / n
    if regime == AT_CAP:
        grown = window + 1.0
        delta = x - mean
        return count, mean + delta / grown, (m2 + delta * delta * window / grown) * (window / grown)
    return _merge_one(count, mean, m2, x, window)


def _merge_one(
    count: np.ndarray, mean: np.ndarray, m2: np.ndarray, x: np.ndarray, window: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:meth:`RunningStats.merge` of ``RunningStats(1.0, x, 0.0)``, capped, elementwise.

    The same float64 operations in the same order, so the same bits:

    >>> a = RunningStats(3.0, 0.25, 0.5).merge(RunningStats(1.0, 0.7, 0.0), window=3)
    >>> b = _merge_one(*(np.array([v]) for v in (3.0, 0.25, 0.5, 0.7)), 3.0)
    >>> (a.count, a.mean, a.m2) == tuple(float(v[0]) for v in b)
    True
    """
    n = count + 1.0
    delta = x - mean
    if count.min() > 0:  # no empty statistics (the common case): fewer steps, same bits,
        # since ``* 1.0`` changes no bit and ``m2 + 0.0 + y`` is ``m2 + y`` for y >= +0.0
        new_m2 = m2 + delta * delta * count / n
        if n.max() <= window:
            return n, mean + delta / n, new_m2
        if n.min() > window:
            return np.full_like(n, window), mean + delta / n, new_m2 * (window / n)
    empty = count <= 0
    new_mean = np.where(empty, x, mean + delta * 1.0 / n)
    new_m2 = np.where(empty, 0.0, m2 + 0.0 + delta * delta * count * 1.0 / n)
    new_count = np.where(empty, 1.0, n)
    over = new_count > window
    return (np.where(over, window, new_count), new_mean,
            np.where(over, new_m2 * (window / new_count), new_m2))  # fmt: skip


def _levels(
    owned: list[DeviceState], rows: np.ndarray, steps: _Steps, values: np.ndarray,
    window_flags: np.ndarray, rule: DeviceRule,
) -> np.ndarray:  # fmt: skip
    """The level check, one step per occurrence across devices: ``(m,)`` level_z.
    ``window_flags`` (row order): while a device warms up, a flagged window's reading
    is not learnt."""
    z = np.zeros(len(rows), dtype=np.float64)
    if not rule.level_history or values.shape[1] == 0:
        return z
    level = _LevelArrays.of(owned, values.shape[1], rule.level_mode == "range")
    vs, zs = values[steps.order], np.zeros(len(rows), dtype=np.float64)  # step order
    fs = window_flags[steps.order]
    regime = level.warm_regime(steps.counts, rule)
    for start, stop in steps.spans:
        if regime is None:
            level.judge_and_learn(vs[start:stop], fs[start:stop], rule, zs[start:stop])
        else:
            level.judge_and_learn_warm(vs[start:stop], rule, zs[start:stop], regime)
    level.store(owned)
    z[steps.order] = zs
    return z


@dataclass(frozen=True)
class _Steps:
    """The batch's rows by occurrence: ``order`` lists the row indices step after step,
    and step ``t`` is ``order[spans[t][0]:spans[t][1]]``."""

    order: np.ndarray
    spans: list[tuple[int, int]]
    #: each device's rows in the batch (devices by number)
    counts: np.ndarray

    def rows(self) -> list[list[int]]:
        """Each step's row indices (for reading)."""
        return [self.order[a:b].tolist() for a, b in self.spans]


def _by_occurrence(device_ids: Sequence[str]) -> tuple[list[str], np.ndarray, _Steps]:
    """The batch's devices, each row's device number, and the rows by occurrence.

    Devices are numbered by how many rows they have, most first (ties: first
    seen first), and step ``t`` holds the ``t``-th row of every device with
    more than ``t`` rows, ordered by device number. So the devices of step
    ``t`` are ``0 .. len(step) - 1``: every step reads and writes a prefix of
    the per-device arrays, and a contiguous span of arrays laid out in step
    order, with no gather or scatter.

    >>> names, rows, steps = _by_occurrence(["a", "b", "a", "a", "c"])
    >>> names, rows.tolist(), steps.rows()
    (['a', 'b', 'c'], [0, 1, 0, 0, 2], [[0, 1, 4], [2], [3]])
    >>> names, rows, steps = _by_occurrence(["x", "y", "y"])
    >>> names, rows.tolist(), steps.rows()
    (['y', 'x'], [1, 0, 0], [[1, 0], [2]])
    """
    seen = {name: i for i, name in enumerate(dict.fromkeys(device_ids))}
    first = np.fromiter(map(seen.__getitem__, device_ids), dtype=np.intp, count=len(device_ids))
    by_count = np.argsort(-np.bincount(first), kind="stable")  # most rows first
    number = np.empty_like(by_count)
    number[by_count] = np.arange(len(by_count))
    rows = number[first]
    order = np.argsort(rows, kind="stable")  # rows grouped by device, in batch order
    sorted_rows = rows[order]
    starts = np.flatnonzero(np.r_[True, sorted_rows[1:] != sorted_rows[:-1]])
    rank = np.empty(len(rows), dtype=np.intp)
    rank[order] = np.arange(len(rows)) - np.repeat(starts, np.diff(np.r_[starts, len(rows)]))
    ends = np.cumsum(np.bincount(rank)).tolist()
    spans = list(zip([0, *ends[:-1]], ends, strict=True))
    names = list(seen)
    steps = _Steps(np.lexsort((rows, rank)), spans,  # by occurrence, then by device number
                   np.bincount(rows, minlength=len(by_count)))  # fmt: skip
    return [names[i] for i in by_count.tolist()], rows, steps


class _LevelArrays:
    """Every owned device's level statistics (and bounds) as ``(devices, channels)`` arrays."""

    def __init__(self, count: np.ndarray, mean: np.ndarray, m2: np.ndarray,
                 lo: np.ndarray | None, hi: np.ndarray | None, bounded: np.ndarray):  # fmt: skip
        self.count, self.mean, self.m2 = count, mean, m2
        self.lo, self.hi, self.bounded = lo, hi, bounded

    @classmethod
    def of(cls, owned: list[DeviceState], channels: int, ranged: bool) -> _LevelArrays:
        triples = np.array([[(s.count, s.mean, s.m2) for s in state.level] for state in owned],
                           dtype=np.float64).reshape(len(owned), channels, 3)  # fmt: skip
        bounded = np.array([bool(state.bounds) for state in owned], dtype=bool)
        lo = hi = None
        if ranged:
            pairs = np.array([state.bounds or [[0.0, 0.0]] * channels for state in owned],
                             dtype=np.float64).reshape(len(owned), channels, 2)  # fmt: skip
            lo, hi = pairs[:, :, 0].copy(), pairs[:, :, 1].copy()
        return cls(triples[:, :, 0].copy(), triples[:, :, 1].copy(), triples[:, :, 2].copy(),
                   lo, hi, bounded)  # fmt: skip

    def judge_and_learn(self, v: np.ndarray, window_flags: np.ndarray, rule: DeviceRule,
                        z: np.ndarray) -> None:  # fmt: skip
        """One step: ``v`` holds a reading of devices ``0 .. len(v) - 1``, in order; their
        level_z goes to ``z``, then the readings are learnt (while a device warms up,
        only where its window was not flagged: :func:`~seismo.stream.scoring.devices.rule.judge`).
        """
        n = len(v)
        count, mean, m2 = self.count[:n], self.mean[:n], self.m2[:n]
        warm = count[:, 0] >= rule.level_warmup
        clipping = count[:, 0] >= rule.clip_from  # every warm device too
        learnt = v
        if clipping.any():
            std = np.sqrt(np.maximum(_variance(m2, count), 0.0))  # the check's and the clip's
            if warm.any():
                if self.lo is not None and self.hi is not None:
                    lo, hi = self.lo[:n], self.hi[:n]
                    width = np.maximum(hi - lo, MIN_STD)
                    excess = np.maximum((v - hi) / width, (lo - v) / width).max(axis=1)
                    found = np.where(self.bounded[:n], np.maximum(excess, 0.0), 0.0)
                else:
                    found = (np.abs(v - mean) / (std + MIN_STD)).max(axis=1)
                z[:] = np.where(warm, found, 0.0)
            if rule.level_clip:  # DeviceState.learn_reading: clipped from clip_from, std > 0
                width = rule.level_clip * std
                bounded = np.minimum(np.maximum(v, mean - width), mean + width)
                learnt = np.where(clipping[:, None] & (std > 0.0), bounded, v)
        learns = warm | ~window_flags
        self._learn(n, v, learnt, None if learns.all() else learns, count, mean, m2,
                    float(rule.level_history))  # fmt: skip

    def warm_regime(self, rows: np.ndarray, rule: DeviceRule) -> str | None:
        """The steady path's :func:`_regime` when every device is warm already (it stays
        warm) and the check is the standard one; else None."""
        if self.lo is not None or not len(self.count):
            return None
        if not self.count[:, 0].min() >= rule.level_warmup:
            return None
        return _regime(self.count, self.m2, rows, float(rule.level_history))

    def judge_and_learn_warm(self, v: np.ndarray, rule: DeviceRule, z: np.ndarray,
                             regime: str) -> None:  # fmt: skip
        """:meth:`judge_and_learn` where :meth:`warm_regime` vouches for the batch: every
        device warm (no masks), ``m2`` never below +0.0 (no clamp), one merge path."""
        n = len(v)
        count, mean, m2 = self.count[:n], self.mean[:n], self.m2[:n]
        std = np.sqrt(m2 / count)
        z[:] = (np.abs(v - mean) / (std + MIN_STD)).max(axis=1)
        learnt = v
        if rule.level_clip:
            width = rule.level_clip * std
            learnt = np.minimum(np.maximum(v, mean - width), mean + width)
            positive = std > 0.0
            if not positive.all():
                learnt = np.where(positive, learnt, v)
        c, u, s2 = _merge_steady(count, mean, m2, learnt, float(rule.level_history), regime)
        if regime == BELOW_CAP:
            self.count[:n] = c
        self.mean[:n], self.m2[:n] = u, s2

    def _learn(self, n: int, v: np.ndarray, learnt: np.ndarray, learns: np.ndarray | None,
               count: np.ndarray, mean: np.ndarray, m2: np.ndarray,
               window: float) -> None:  # fmt: skip
        """:meth:`RunningStats.merge` of ``RunningStats(1.0, learnt, 0.0)``, capped,
        elementwise; the bounds (range mode) widen by the readings ``v`` as they are.
        Devices where ``learns`` is False keep everything as it was."""
        c, u, s2 = _merge_one(count, mean, m2, learnt, window)
        if learns is not None:
            keep = learns[:, None]
            c, u, s2 = np.where(keep, c, count), np.where(keep, u, mean), np.where(keep, s2, m2)
        self.count[:n], self.mean[:n], self.m2[:n] = c, u, s2
        if self.lo is not None and self.hi is not None:
            lo, hi, bounded = self.lo[:n], self.hi[:n], self.bounded[:n, None]
            new_lo = np.where(bounded & ~(v < lo), lo, v)
            new_hi = np.where(bounded & ~(v > hi), hi, v)
            if learns is not None:
                new_lo, new_hi = np.where(keep, new_lo, lo), np.where(keep, new_hi, hi)
                self.bounded[:n] |= learns
            else:
                self.bounded[:n] = True
            self.lo[:n], self.hi[:n] = new_lo, new_hi

    def store(self, owned: list[DeviceState]) -> None:
        """Write the arrays back into the states, as the reference would have left them."""
        count, mean, m2 = self.count.tolist(), self.mean.tolist(), self.m2.tolist()
        for i, state in enumerate(owned):
            state.level = [RunningStats(c, u, s) for c, u, s in
                           zip(count[i], mean[i], m2[i], strict=True)]  # fmt: skip
        if self.lo is not None and self.hi is not None:
            lo, hi = self.lo.tolist(), self.hi.tolist()
            for i, state in enumerate(owned):
                if self.bounded[i]:
                    state.bounds = [[a, b] for a, b in zip(lo[i], hi[i], strict=True)]
