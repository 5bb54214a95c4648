"""Drift of the score distribution away from the model's calibration.

Pure. The scorer feeds every batch's scores (flagged ones included: drift is
the whole distribution moving) into a :class:`DriftMonitor`. It keeps the
last ``window`` scores in the threshold's score space (``log`` by default)
and reports drift when their median has stayed above ``calibration mean +
m * calibration std`` for ``window`` consecutive scores. The median, not the
mean: a burst of anomalies shorter than half the window cannot move it,
however large the anomalies; a new regime moves it at once. After a report
the monitor starts over, so it reports again only after another full window
of drift (the retrain request itself is also deduplicated
in Redis, see :mod:`seismo.stream.retrain.requests`).

Examples
--------
>>> monitor = DriftMonitor(mean=0.0, std=1.0, m=1.0, window=4)
>>> monitor.observe(np.zeros(4)), monitor.observe(np.full(2, 5.0))
(False, False)
>>> monitor.observe(np.full(2, 5.0))     # the median has been high for 4 scores
True
>>> monitor.observe(np.full(3, 5.0))   # starts over after a report
False

The threshold itself drifts too: the rolling statistics follow the live
scores, so the threshold in force can end up far from the one the model was
calibrated with (and from what ``seismo evaluate`` reports at that
threshold). :class:`ThresholdWatch` says so: "far" is more than
:data:`FAR_FACTOR` times the calibration threshold, or less than its
1/:data:`FAR_FACTOR` (in the default log space, a factor of 2 is a shift of
0.69 in log(score), 1.4 calibration std for a typical ``log_std`` of 0.5).

>>> watch = ThresholdWatch(clock=lambda: 0.0)
>>> level, line = watch.observe(3.97, 1.46)
>>> level, line.split(" (")[0]
(30, 'threshold 3.97 is 2.7x the model calibration threshold 1.46')
>>> watch.observe(4.2, 1.46) is None     # still far: said again after FAR_PERIOD_S
True
>>> watch.observe(1.5, 1.46)
(20, 'threshold 1.5 is back within 2x of the model calibration threshold 1.46')
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

import numpy as np

#: The threshold in force is far from the calibration threshold beyond this factor.
FAR_FACTOR = 2.0
#: Seconds between two warnings that the threshold is still far.
FAR_PERIOD_S = 300.0


class DriftMonitor:
    """Reports when the rolling median of scores stays above ``mean + m * std``.

    Parameters
    ----------
    mean, std : float
        The calibration statistics, in the space of the observed values.
    m : float
        How many calibration standard deviations the rolling median may rise.
    window : int
        Scores in the rolling median, and how many consecutive scores it must
        stay high before drift is reported.
    """

    def __init__(self, mean: float, std: float, m: float, window: int) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        self.limit = mean + m * std
        self.window = window
        self._ring = np.empty(window, dtype=np.float64)
        self._size = 0
        self._next = 0
        self._high_for = 0

    @property
    def rolling_median(self) -> float:
        """Median of the scores in the window (NaN before the first)."""
        return float(np.median(self._ring[: self._size])) if self._size else float("nan")

    def observe(self, values: np.ndarray) -> bool:
        """Add one batch of values; True when drift is confirmed by this batch."""
        x = np.asarray(values, dtype=np.float64).ravel()[-self.window :]
        if x.size == 0:
            return False
        slots = (self._next + np.arange(x.size)) % self.window
        self._ring[slots] = x
        self._next = int((self._next + x.size) % self.window)
        self._size = min(self._size + x.size, self.window)
        high = self._size == self.window and self.rolling_median > self.limit
        self._high_for = self._high_for + int(x.size) if high else 0
        if self._high_for >= self.window:
            self.reset()
            return True
        return False

    def reset(self) -> None:
        """Forget everything seen (after a report or a model swap)."""
        self._size, self._next, self._high_for = 0, 0, 0


class ThresholdWatch:
    """Says when the threshold in force moves far from the model's calibration threshold.

    :meth:`observe` returns ``(level, line)`` to log: a WARNING when the
    threshold goes beyond :data:`FAR_FACTOR` (again every ``period_s`` while
    it stays there), an INFO line when it comes back; ``None`` otherwise.
    """

    def __init__(
        self, factor: float = FAR_FACTOR, period_s: float = FAR_PERIOD_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.factor = factor
        self.period_s = period_s
        self.clock = clock
        self._far_since: float | None = None  # time of the last warning while far
        self._capped_said: float | None = None  # when being held by the bound was last said

    def observe(
        self, live: float, calibrated: float, capped_from: float | None = None
    ) -> tuple[int, str] | None:
        """Compare one batch's threshold with the calibration threshold (score units);
        ``capped_from``: what the statistics gave, when the threshold's bound lowered it.

        Being held by the bound is said at once, even within ``period_s`` of a warning:

        >>> watch = ThresholdWatch(clock=lambda: 0.0)
        >>> watch.observe(3.0, 1.0)[0], watch.observe(5.0, 1.0)
        (30, None)
        >>> watch.observe(10.0, 1.0, capped_from=250.0)[1].split("; ")[-1][:61]
        'held there by --max-threshold-factor: the statistics give 250'
        """
        if not (math.isfinite(live) and math.isfinite(calibrated)) or calibrated <= 0:
            return None
        ratio = live / calibrated
        now = self.clock()
        held_lately = self._capped_said is not None and now - self._capped_said < self.period_s
        if capped_from is not None:  # held by its bound: said at once, then every period_s
            if held_lately:
                return None
            self._capped_said = self._far_since = now
            return logging.WARNING, self._far_line(live, ratio, calibrated) + (
                f"; held there by --max-threshold-factor: the statistics give "
                f"{capped_from:.4g}, the live scores have moved far from the model's "
                "(crafted scores just under the threshold, or a model that no longer "
                "fits: retrain it)")  # fmt: skip
        if 1 / self.factor <= ratio <= self.factor:
            if self._far_since is None or held_lately:  # not while hovering at the bound
                return None
            self._far_since = None
            return logging.INFO, (f"threshold {live:.4g} is back within {self.factor:g}x of "
                                  f"the model calibration threshold {calibrated:.4g}")  # fmt: skip
        if self._far_since is not None and now - self._far_since < self.period_s:
            return None
        self._far_since = now
        return logging.WARNING, self._far_line(live, ratio, calibrated)

    @staticmethod
    def _far_line(live: float, ratio: float, calibrated: float) -> str:
        return (f"threshold {live:.4g} is {ratio:.2g}x the model calibration threshold "
                f"{calibrated:.4g} (rolling statistics of the live scores; seismo evaluate "
                "--streaming replays a file through the same rule)")  # fmt: skip
