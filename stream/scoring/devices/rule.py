"""Judging each device against its own past: the per-device threshold rule.

With ``threshold_scope = "device"`` the scorer judges every scored window of a
device against statistics of that device alone, with two checks:

- **window check**: the log reconstruction error, averaged over the device's
  last ``smooth`` windows, against the mean plus ``k`` standard deviations of
  the same quantity over the device's unflagged past. The statistics forget
  with a memory of about ``history`` windows (:class:`seismo.stream.scoring.stats.RunningStats`
  capped, the arithmetic of the shared threshold); flagged windows never
  enter them. They start from the model version's calibration, and start
  again from the new version's when the model changes.
- **level check**: the reading that completed the window (or, with
  ``level_smooth`` > 1, the mean of the device's last ``level_smooth``
  readings), each channel against the mean plus ``level_k`` (default ``k``)
  standard deviations of the device's readings (memory ``level_history``,
  every reading enters), once ``level_warmup`` readings have been seen. The
  short mean is judged against the spread of single readings, so one spike
  moves it by a ``level_smooth``-th while a shift of level moves it whole.
  With ``level_mode = "range"`` the check is instead the one of NAB's HTM
  detector: a reading beyond the device's whole range so far (lowest to
  highest reading since it was first seen) by more than ``level_tolerance``
  of that range; ``level_z`` is then the excess as a share of the range.
  A model retrained on a wide-ranging series can learn to reconstruct a
  reading far outside its recent range; this check cannot.

A window is flagged when either check exceeds ``k``. What is learnt is
bounded, so that one crafted message (a reading or a window error, from
anyone who can publish as that device) cannot blind it; the gaps that are
left are in ``docs/reliability.md`` ("Not done"):

- the window statistics learn the smoothed error clipped to the band
  ``mean -/+ k * std`` in force (at least ``k * 0.01`` wide:
  :func:`seismo.stream.scoring.threshold.learning_band`). Above the band a
  window is flagged and not learnt anyway (unless ``learn_anomalies``);
  below it, a window reconstructed almost perfectly (its log error far below
  every other) would otherwise widen the spread and hide the anomalies after it;
- once 30 readings are learnt (`LEVEL_CLIP_FROM`, or ``level_warmup`` if fewer),
  each reading enters the level statistics clipped, per channel, to ``mean
  -/+ level_clip`` standard deviations (a channel whose standard deviation is
  still 0 learns its reading as it is): one reading of 1e12 would otherwise
  inflate the spread and hide every later level shift for hundreds of
  thousands of readings. A lasting shift is still learnt, a bounded step per
  reading. ``level_clip = 0`` learns readings as they are. The clip starts
  before the level check is warm: a reading far out but on the model's
  subspace is not flagged by the window check, and learnt unclipped during a
  warm-up of 250 readings it blinded the level check for thousands (a
  red-team finding). Before that there are no statistics to clip to yet,
  so a reading is learnt only when the window check did not flag its window
  (the model finds a reading of 1e12 anything but normal), as during the
  rest of the warm-up.
  Range mode's bounds are widened by every reading, unclipped: one reading
  far out silences the range check of its device for good, so range mode is
  not for streams that untrusted producers write to.

The rule is sequential per device and reads nothing but the device's state, so
how readings are cut into batches never changes a verdict.

Examples
--------
>>> from seismo.models.calibration import Calibration
>>> cal = Calibration(count=500, mean=1.0, std=0.1, quantiles={}, log_mean=0.0, log_std=0.1)
>>> rule = DeviceRule(k=3.0, smooth=1, level_warmup=3)
>>> state = DeviceState.start("v1", cal, rule, channels=1)
>>> [judge(state, e, np.array([r]), rule).flagged for e, r in
...  [(0.05, 10.0), (-0.1, 10.2), (0.0, 9.9), (0.5, 10.1), (0.0, 30.0)]]
[False, False, False, True, True]
>>> v = judge(state, 0.35, np.array([10.0]), rule)    # the window check alone
>>> v.flagged, v.window_flag, v.level_flag, round(v.window_z, 1)
(True, True, False, 3.5)
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import numpy as np
import orjson

from seismo.models.calibration import Calibration
from seismo.stream.scoring.stats import RunningStats
from seismo.stream.scoring.threshold import learning_band

#: Smallest standard deviation used for z-scores (a device that never moved).
MIN_STD = 1e-9
#: Readings after which each one is learnt clipped (``level_clip``), though the level
#: check still warms up: a reading on the model's subspace is not flagged by the window
#: check, so the warm-up's gate does not keep it out (a red-team finding).
LEVEL_CLIP_FROM = 30


@dataclass(frozen=True)
class DeviceRule:
    """The settings of the per-device rule (see the module docstring).

    ``level_history = 0`` turns the level check off.
    """

    k: float = 3.0
    smooth: int = 6
    history: int = 4000
    level_history: int = 6400
    level_warmup: int = 250
    learn_anomalies: bool = False
    level_smooth: int = 1
    level_k: float | None = None
    level_mode: Literal["std", "range"] = "std"
    level_tolerance: float = 0.05
    level_clip: float = 10.0
    level_clip_from: int = LEVEL_CLIP_FROM

    def __post_init__(self) -> None:
        if self.k <= 0 or self.smooth < 1 or self.history < 1:
            raise ValueError("k must be positive, smooth and history at least 1")
        if self.level_smooth < 1 or (self.level_k is not None and self.level_k <= 0):
            raise ValueError("level_smooth must be at least 1 and level_k positive")
        if self.level_mode not in ("std", "range") or self.level_tolerance < 0:
            raise ValueError("level_mode must be std or range, level_tolerance >= 0")
        if self.level_history < 0 or self.level_warmup < 1:
            raise ValueError("level_history must be >= 0 and level_warmup >= 1")
        if self.level_history and self.level_warmup > self.level_history:
            raise ValueError("level_warmup cannot exceed level_history")
        if not self.level_clip >= 0:  # NaN too
            raise ValueError("level_clip must be >= 0 (0: readings are learnt unclipped)")
        if self.level_clip_from < 1:
            raise ValueError("level_clip_from must be at least 1")

    @property
    def clip_from(self) -> int:
        """Readings a channel's statistics must hold before what is learnt is clipped:
        ``level_clip_from`` (`LEVEL_CLIP_FROM`), or ``level_warmup`` when that is fewer.

        >>> DeviceRule().clip_from, DeviceRule(level_warmup=3).clip_from
        (30, 3)
        """
        return min(self.level_warmup, self.level_clip_from)

    @property
    def level_threshold(self) -> float:
        """The level check's threshold on ``level_z``: ``level_tolerance`` in range mode,
        else ``level_k`` (or ``k``) standard deviations."""
        if self.level_mode == "range":
            return self.level_tolerance
        return self.k if self.level_k is None else self.level_k


class Verdict(NamedTuple):
    """What the rule said of one window.

    ``mean`` and ``std`` are the window statistics in force (log space),
    ``smoothed`` the averaged log error they judged; ``level_z`` is the
    largest channel z-score of the reading (0 while the level check warms up
    or is off).
    """

    flagged: bool
    window_flag: bool
    level_flag: bool
    window_z: float
    level_z: float
    mean: float
    std: float
    smoothed: float


@dataclass(slots=True)
class DeviceState:
    """One device's statistics: window errors (per model version), readings, offsets."""

    version: str
    window: RunningStats
    recent: list[float] = field(default_factory=list)
    level: list[RunningStats] = field(default_factory=list)
    #: partition -> offset of the last reading judged (a replay is not judged twice)
    offsets: dict[int, int] = field(default_factory=dict)
    #: the last ``level_smooth`` readings (only kept when ``level_smooth`` > 1)
    readings: list[list[float]] = field(default_factory=list)
    #: per channel, the lowest and highest reading seen (only kept in range mode)
    bounds: list[list[float]] = field(default_factory=list)
    #: which channels, in which order, ``level`` was learnt on (:func:`channels_key`);
    #: "" for a state written before it was recorded
    channels: str = ""

    @classmethod
    def start(
        cls, version: str, calibration: Calibration, rule: DeviceRule, channels: int
    ) -> DeviceState:
        """A device never seen: window statistics from the calibration, no readings."""
        return cls(version, calibration_stats(calibration, rule),
                   level=[RunningStats() for _ in range(channels)])  # fmt: skip

    def follow(self, version: str, calibration: Calibration, rule: DeviceRule) -> None:
        """Start the window statistics again from a new model version's calibration."""
        if version != self.version:
            self.version = version
            self.window = calibration_stats(calibration, rule)
            self.recent = []

    def learnt_elsewhere(self, key: str, width: int, version: str) -> bool:
        """Whether the reading statistics belong to other channels than the model's
        ``width`` channels ``key`` (:func:`channels_key`): recorded for another key, of
        another width, or, for a state written before keys were recorded, learnt under
        another model version (whose order nothing records).

        >>> s = DeviceState("v1", RunningStats(), level=[RunningStats(9.0, 5.0, 1.0)])
        >>> s.learnt_elsewhere("ab", 1, "v1"), s.learnt_elsewhere("ab", 1, "v2")
        (False, True)
        >>> s.channels = "ab"
        >>> s.learnt_elsewhere("ab", 1, "v2"), s.learnt_elsewhere("ba", 1, "v1")
        (False, True)
        >>> s.learnt_elsewhere("ab", 2, "v1")
        True
        """
        if len(self.level) != width:
            return True
        if self.channels:
            return self.channels != key
        return self.version != version

    def adopt_channels(self, key: str, width: int, version: str) -> bool:
        """Make the reading statistics those of the model's channels: start them again
        (at ``width`` channels) when :meth:`learnt_elsewhere`, else keep them; record
        ``key``. Call before :meth:`follow`. True when they started again.

        >>> s = DeviceState("v", RunningStats(), level=[RunningStats(9.0, 5.0, 1.0)],
        ...                 channels="ab")
        >>> s.adopt_channels("ab", 1, "v"), s.level[0].count
        (False, 9.0)
        >>> s.adopt_channels("ba", 2, "v"), [x.count for x in s.level], s.channels
        (True, [0.0, 0.0], 'ba')
        """
        again = self.learnt_elsewhere(key, width, version)
        if again:
            self.level = [RunningStats() for _ in range(width)]
            self.readings, self.bounds = [], []
        self.channels = key
        return again

    def warm(self, readings: np.ndarray, rule: DeviceRule) -> None:
        """Fold ``(n, channels)`` earlier readings into the level statistics (no verdict)."""
        readings = np.asarray(readings, dtype=np.float64)
        for reading in readings:
            self.learn_reading(reading, rule)
        if rule.level_smooth > 1:
            self.readings = readings[-rule.level_smooth :].tolist()

    def learn_reading(self, reading: np.ndarray, rule: DeviceRule) -> None:
        """Fold one ``(channels,)`` reading into the level statistics (clipped once warm)."""
        if rule.level_history:
            learnt = [float(v) for v in reading]
            if rule.level_clip and self.level and self.level[0].count >= rule.clip_from:
                learnt = [clipped(s, v, rule.level_clip) for s, v in zip(self.level, learnt,
                                                                         strict=True)]  # fmt: skip
            self.level = [s.merge(RunningStats(1.0, v, 0.0), window=rule.level_history)
                          for s, v in zip(self.level, learnt, strict=True)]  # fmt: skip
            if rule.level_mode == "range":
                self.bounds = widened(self.bounds, reading)

    @property
    def usable(self) -> bool:
        """Whether every number of the state is finite (and counts not negative), and every
        partition and offset one Kafka can have (int32 and int64, not negative).

        >>> s = DeviceState("v", RunningStats(2.0, 1.5, 0.5), [1.0], [RunningStats(3.0, 2.0, 1.0)])
        >>> s.usable, DeviceState("v", RunningStats(2.0, 1.5, 0.5), [float("inf")]).usable
        (True, False)
        >>> DeviceState("v", RunningStats(2.0, 1.5, 0.5), offsets={0: 2**70}).usable
        False
        """
        return (self.window.usable and all(s.usable for s in self.level)
                and all(math.isfinite(x) for x in self.recent)
                and all(math.isfinite(x) for r in self.readings for x in r)
                and all(math.isfinite(x) for b in self.bounds for x in b)
                and all(0 <= p < 2**31 and 0 <= o < 2**63
                        for p, o in self.offsets.items()))  # fmt: skip

    def to_bytes(self) -> bytes:
        """A compact JSON document (what Redis stores); :meth:`from_bytes` reverses it.

        Raises ``ValueError`` for a state that is not :attr:`usable`: JSON has no
        NaN or Inf, and a state written with nulls could never be read back.
        """
        if not self.usable:
            raise ValueError("refusing to write a device state with non-finite numbers "
                             "or offsets out of range")
        doc: dict[str, Any] = {
            "v": self.version, "w": _triple(self.window), "r": self.recent,
            "l": [_triple(s) for s in self.level],
            "o": {str(p): o for p, o in self.offsets.items()},
        }  # fmt: skip
        if self.readings:
            doc["rl"] = self.readings
        if self.bounds:
            doc["b"] = self.bounds
        if self.channels:
            doc["c"] = self.channels
        return orjson.dumps(doc)

    @classmethod
    def from_bytes(cls, data: bytes | str) -> DeviceState:
        """Rebuild a state from :meth:`to_bytes` output.

        >>> s = DeviceState("v", RunningStats(2.0, 1.5, 0.5), [1.0], [RunningStats(3.0, 2.0, 1.0)],
        ...                 {0: 41})
        >>> DeviceState.from_bytes(s.to_bytes()) == s
        True
        >>> s.readings, s.channels = [[1.0], [2.0]], "0a1b2c3d4e5f"
        >>> back = DeviceState.from_bytes(s.to_bytes())
        >>> back.readings, back.channels
        ([[1.0], [2.0]], '0a1b2c3d4e5f')
        >>> DeviceState.from_bytes(b'{"v":"v","w":[2.0,null,0.5],"r":[],"l":[],"o":{}}')
        Traceback (most recent call last):
        ...
        ValueError: unusable device state: TypeError
        """
        try:
            doc: Mapping[str, Any] = orjson.loads(data)
            state = cls(str(doc["v"]), RunningStats(*map(float, doc["w"])),
                        [float(x) for x in doc["r"]],
                        [RunningStats(*map(float, s)) for s in doc["l"]],
                        {int(p): int(o) for p, o in doc["o"].items()},
                        [[float(x) for x in r] for r in doc.get("rl", ())],
                        [[float(lo), float(hi)] for lo, hi in doc.get("b", ())],
                        str(doc.get("c", "")))  # fmt: skip
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
            raise ValueError(f"unusable device state: {type(exc).__name__}") from exc
        if not state.usable:
            raise ValueError("unusable device state: non-finite numbers or offsets out of range")
        return state


def channels_key(names: Sequence[str]) -> str:
    """A short fingerprint of a model's reading channels, in order.

    >>> key = channels_key(["temp", "rpm"])
    >>> len(key), key == channels_key(["temp", "rpm"]), key == channels_key(["rpm", "temp"])
    (12, True, False)
    """
    return hashlib.blake2b("\x1f".join(names).encode(), digest_size=6).hexdigest()


def _triple(stats: RunningStats) -> list[float]:
    return [stats.count, stats.mean, stats.m2]


def calibration_stats(calibration: Calibration, rule: DeviceRule) -> RunningStats:
    """The calibration's log-error mean and std as statistics of ``count`` windows
    (at most ``history``).

    >>> cal = Calibration(count=50, mean=1.0, std=0.1, quantiles={}, log_mean=-1.0, log_std=0.5)
    >>> calibration_stats(cal, DeviceRule(history=20))
    RunningStats(count=20.0, mean=-1.0, m2=5.0)
    """
    count = float(max(1, calibration.count))
    stats = RunningStats(count, calibration.log_mean, calibration.log_std**2 * count)
    return stats.capped(rule.history)


def clipped(stats: RunningStats, value: float, clip: float) -> float:
    """``value`` within ``mean -/+ clip * std`` of ``stats`` (as it is while the std is 0).

    >>> s = RunningStats(4.0, 2.0, 4.0)  # std 1
    >>> clipped(s, 1e12, 10.0), clipped(s, -5.0, 3.0), clipped(s, 2.5, 3.0)
    (12.0, -1.0, 2.5)
    >>> clipped(RunningStats(4.0, 2.0, 0.0), 1e12, 10.0)
    1000000000000.0
    """
    std = stats.std
    if std > 0.0:
        width = clip * std
        return min(max(value, stats.mean - width), stats.mean + width)
    return value


def level_z(stats: Sequence[RunningStats], reading: np.ndarray) -> float:
    """The reading's largest channel distance from its mean, in standard deviations.

    >>> stats = [RunningStats(4.0, 2.0, 4.0), RunningStats(4.0, 0.0, 4.0)]  # std 1 and 1
    >>> round(level_z(stats, np.array([5.0, -1.0])), 6)
    3.0
    """
    return max((abs(float(v) - s.mean) / (s.std + MIN_STD) for s, v in zip(stats, reading,
               strict=True)), default=0.0)  # fmt: skip


def widened(bounds: Sequence[Sequence[float]], reading: np.ndarray) -> list[list[float]]:
    """Per channel, ``[lowest, highest]`` so far including ``reading`` (its own without bounds).

    >>> widened([], np.array([2.0])), widened([[0.0, 1.0]], np.array([3.0]))
    ([[2.0, 2.0]], [[0.0, 3.0]])
    """
    if not bounds:
        return [[float(v), float(v)] for v in reading]
    return [[min(lo, float(v)), max(hi, float(v))]
            for (lo, hi), v in zip(bounds, reading, strict=True)]  # fmt: skip


def range_excess(bounds: Sequence[Sequence[float]], reading: np.ndarray) -> float:
    """How far the reading's farthest channel lies beyond its ``[lowest, highest]`` so far,
    as a share of that range (0 inside it).

    >>> range_excess([[0.0, 10.0], [5.0, 5.0]], np.array([11.0, 5.0]))
    0.1
    >>> range_excess([[0.0, 10.0]], np.array([4.0])), range_excess([], np.array([4.0]))
    (0.0, 0.0)
    """
    excess = 0.0
    for (lo, hi), v in zip(bounds, np.asarray(reading, dtype=np.float64), strict=False):
        width = max(hi - lo, MIN_STD)
        excess = max(excess, (float(v) - hi) / width, (lo - float(v)) / width)
    return excess


def judge(state: DeviceState, log_error: float, reading: np.ndarray, rule: DeviceRule) -> Verdict:
    """Judge one window of the device, then learn from it (``state`` is updated).

    Parameters
    ----------
    state : DeviceState
        The device's statistics, already following the model version that
        scored the window (:meth:`DeviceState.follow`).
    log_error : float
        ``log`` of the window's reconstruction error; higher = more anomalous.
    reading : numpy.ndarray
        ``(channels,)`` the reading that completed the window.
    """
    state.recent = [*state.recent, float(log_error)][-rule.smooth :]
    smoothed = math.fsum(state.recent) / len(state.recent)
    stats = state.window
    std = stats.std
    window_z = (smoothed - stats.mean) / max(std, MIN_STD)
    window_flag = window_z > rule.k
    if rule.learn_anomalies or not window_flag:
        lo, hi = learning_band(stats.mean, std, rule.k, "log")
        learnt = min(max(smoothed, lo), hi)
        state.window = stats.merge(RunningStats(1.0, learnt, 0.0), window=rule.history)
    reading = np.asarray(reading, dtype=np.float64)
    judged = reading
    if rule.level_smooth > 1:
        state.readings = [*state.readings, reading.tolist()][-rule.level_smooth :]
        judged = np.mean(state.readings, axis=0)
    warm = rule.level_history > 0 and state.level and state.level[0].count >= rule.level_warmup
    z_level = 0.0
    if warm:
        z_level = (range_excess(state.bounds, judged) if rule.level_mode == "range"
                   else level_z(state.level, judged))  # fmt: skip
    level_flag = z_level > rule.level_threshold
    if warm or not window_flag:  # while warming up, only readings the model finds normal
        state.learn_reading(reading, rule)
    return Verdict(window_flag or level_flag, window_flag, level_flag, window_z, z_level,
                   stats.mean, std, smoothed)  # fmt: skip


@dataclass(frozen=True)
class BatchVerdicts:
    """The rule's verdicts on the ``m`` scored rows of a batch, column-wise.

    ``mean`` and ``std`` are each row's device statistics in force (log space).
    """

    flags: np.ndarray
    window_flags: np.ndarray
    level_flags: np.ndarray
    window_z: np.ndarray
    level_z: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    smoothed: np.ndarray
    k: float

    def threshold(self, i: int) -> float:
        """Row ``i``'s threshold on the smoothed error, in score units: ``exp(mean + k std)``."""
        return float(np.exp(self.mean[i] + self.k * self.std[i]))

    def checks(self, i: int) -> list[str]:
        """The checks that flagged row ``i``: ``window``, ``level``, both or none."""
        return [name for name, on in (("window", self.window_flags[i]),
                                      ("level", self.level_flags[i])) if on]  # fmt: skip


def judge_batch(
    states: MutableMapping[str, DeviceState | None], device_ids: Sequence[str],
    log_errors: np.ndarray, readings: np.ndarray, positions: Sequence[tuple[int, int]],
    version: str, calibration: Calibration, rule: DeviceRule, channels: str | None = None,
) -> BatchVerdicts:  # fmt: skip
    """Judge each row in order with its device's state (created where ``None``).

    Parameters
    ----------
    states : mutable mapping
        Device id to state; updated in place (new devices are added).
    device_ids : sequence of str
        ``m`` devices.
    log_errors : numpy.ndarray
        ``(m,)`` log reconstruction errors.
    readings : numpy.ndarray
        ``(m, channels)`` the readings that completed the rows' windows.
    positions : sequence of (partition, offset)
        Each row's source, recorded so a replay is not judged twice.
    version, calibration
        The model version that scored the rows and its calibration.
    channels : str or None
        The :func:`channels_key` of the model's reading channels: a state whose
        reading statistics were learnt on others starts them again
        (:meth:`DeviceState.adopt_channels`). ``None`` leaves them as they are.

    Examples
    --------
    >>> cal = Calibration(count=9, mean=1.0, std=0.1, quantiles={}, log_mean=0.0, log_std=0.1)
    >>> states = {"a": None}
    >>> v = judge_batch(states, ["a", "a"], np.array([0.0, 0.9]), np.zeros((2, 1)),
    ...                 [(0, 7), (0, 8)], "v1", cal, DeviceRule(smooth=1))
    >>> v.flags.tolist(), v.checks(1), states["a"].offsets
    ([False, True], ['window'], {0: 8})
    """
    out = []
    for device, log_error, reading, (partition, offset) in zip(
        device_ids, log_errors, readings, positions, strict=True
    ):
        state = states.get(device)
        if state is None:
            state = states[device] = DeviceState.start(version, calibration, rule, len(reading))
        if channels is not None:
            state.adopt_channels(channels, len(reading), version)
        state.follow(version, calibration, rule)
        out.append(judge(state, float(log_error), reading, rule))
        state.offsets[partition] = offset
    columns = list(zip(*out, strict=True)) if out else [()] * len(Verdict._fields)
    flagged, window, level, window_z, level_z_, mean, std, smoothed = (
        np.array(c) for c in columns)  # fmt: skip
    return BatchVerdicts(flagged.astype(bool), window.astype(bool), level.astype(bool),
                         window_z.astype(float), level_z_.astype(float), mean.astype(float),
                         std.astype(float), smoothed.astype(float), rule.k)  # fmt: skip
