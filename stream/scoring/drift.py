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
"""

from __future__ import annotations

import numpy as np


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
