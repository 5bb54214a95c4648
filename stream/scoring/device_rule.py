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
- **level check**: the reading that completed the window, each channel against
  the mean plus ``k`` standard deviations of the device's readings (memory
  ``level_history``, every reading enters), once ``level_warmup`` readings
  have been seen. A model retrained on a wide-ranging series can learn to
  reconstruct a reading far outside its recent range; this check cannot.

A window is flagged when either check exceeds ``k``. The rule is sequential
per device and reads nothing but the device's state, so how readings are cut
into batches never changes a verdict.

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

import math
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import orjson

from seismo.models.calibration import Calibration
from seismo.stream.scoring.stats import RunningStats

#: Smallest standard deviation used for z-scores (a device that never moved).
MIN_STD = 1e-9


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

    def __post_init__(self) -> None:
        if self.k <= 0 or self.smooth < 1 or self.history < 1:
            raise ValueError("k must be positive, smooth and history at least 1")
        if self.level_history < 0 or self.level_warmup < 1:
            raise ValueError("level_history must be >= 0 and level_warmup >= 1")
        if self.level_history and self.level_warmup > self.level_history:
            raise ValueError("level_warmup cannot exceed level_history")


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

    def warm(self, readings: np.ndarray, rule: DeviceRule) -> None:
        """Fold ``(n, channels)`` earlier readings into the level statistics (no verdict)."""
        for reading in np.asarray(readings, dtype=np.float64):
            self.learn_reading(reading, rule)

    def learn_reading(self, reading: np.ndarray, rule: DeviceRule) -> None:
        """Fold one ``(channels,)`` reading into the level statistics."""
        if rule.level_history:
            self.level = [s.merge(RunningStats(1.0, float(v), 0.0), window=rule.level_history)
                          for s, v in zip(self.level, reading, strict=True)]  # fmt: skip

    @property
    def usable(self) -> bool:
        """Whether every number of the state is finite (and counts not negative).

        >>> s = DeviceState("v", RunningStats(2.0, 1.5, 0.5), [1.0], [RunningStats(3.0, 2.0, 1.0)])
        >>> s.usable, DeviceState("v", RunningStats(2.0, 1.5, 0.5), [float("inf")]).usable
        (True, False)
        """
        return (self.window.usable and all(s.usable for s in self.level)
                and all(math.isfinite(x) for x in self.recent))  # fmt: skip

    def to_bytes(self) -> bytes:
        """A compact JSON document (what Redis stores); :meth:`from_bytes` reverses it.

        Raises ``ValueError`` for a state that is not :attr:`usable`: JSON has no
        NaN or Inf, and a state written with nulls could never be read back.
        """
        if not self.usable:
            raise ValueError("refusing to write a device state with non-finite numbers")
        return orjson.dumps({
            "v": self.version, "w": _triple(self.window), "r": self.recent,
            "l": [_triple(s) for s in self.level],
            "o": {str(p): o for p, o in self.offsets.items()},
        })  # fmt: skip

    @classmethod
    def from_bytes(cls, data: bytes | str) -> DeviceState:
        """Rebuild a state from :meth:`to_bytes` output.

        >>> s = DeviceState("v", RunningStats(2.0, 1.5, 0.5), [1.0], [RunningStats(3.0, 2.0, 1.0)],
        ...                 {0: 41})
        >>> DeviceState.from_bytes(s.to_bytes()) == s
        True
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
                        {int(p): int(o) for p, o in doc["o"].items()})  # fmt: skip
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
            raise ValueError(f"unusable device state: {type(exc).__name__}") from exc
        if not state.usable:
            raise ValueError("unusable device state: non-finite numbers")
        return state


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


def level_z(stats: Sequence[RunningStats], reading: np.ndarray) -> float:
    """The reading's largest channel distance from its mean, in standard deviations.

    >>> stats = [RunningStats(4.0, 2.0, 4.0), RunningStats(4.0, 0.0, 4.0)]  # std 1 and 1
    >>> round(level_z(stats, np.array([5.0, -1.0])), 6)
    3.0
    """
    return max((abs(float(v) - s.mean) / (s.std + MIN_STD) for s, v in zip(stats, reading,
               strict=True)), default=0.0)  # fmt: skip


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
        state.window = stats.merge(RunningStats(1.0, smoothed, 0.0), window=rule.history)
    reading = np.asarray(reading, dtype=np.float64)
    warm = rule.level_history > 0 and state.level and state.level[0].count >= rule.level_warmup
    z_level = level_z(state.level, reading) if warm else 0.0
    level_flag = z_level > rule.k
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
    version: str, calibration: Calibration, rule: DeviceRule,
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
        state.follow(version, calibration, rule)
        out.append(judge(state, float(log_error), reading, rule))
        state.offsets[partition] = offset
    columns = list(zip(*out, strict=True)) if out else [()] * len(Verdict._fields)
    flagged, window, level, window_z, level_z_, mean, std, smoothed = (
        np.array(c) for c in columns)  # fmt: skip
    return BatchVerdicts(flagged.astype(bool), window.astype(bool), level.astype(bool),
                         window_z.astype(float), level_z_.astype(float), mean.astype(float),
                         std.astype(float), smoothed.astype(float), rule.k)  # fmt: skip
