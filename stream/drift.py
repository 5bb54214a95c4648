"""Drift of the score distribution away from the model's calibration.

Pure. The scorer feeds every batch's scores (flagged ones included: drift is
the whole distribution moving) into a :class:`DriftMonitor`. It keeps the mean
of the last ``window`` scores in the threshold's score space (``log`` by
default) and reports drift when that rolling mean has stayed above
``calibration mean + m * calibration std`` for ``window`` consecutive scores.
A single burst of anomalies moves the mean for a moment; a new regime keeps
it up. After a report the monitor starts over, so it reports again only after
another full window of drift (the retrain request itself is also deduplicated
in Redis, see :mod:`stream.retrain_requests`).

Examples
--------
>>> monitor = DriftMonitor(mean=0.0, std=1.0, m=1.0, window=4)
>>> monitor.observe(np.zeros(4)), monitor.observe(np.full(2, 5.0))
(False, False)
>>> monitor.observe(np.full(2, 5.0))     # the rolling mean has been high for 4 scores
True
>>> monitor.observe(np.full(3, 5.0))   # starts over after a report
False
"""

from __future__ import annotations

from collections import deque

import numpy as np


class DriftMonitor:
    """Reports when the rolling mean of scores stays above ``mean + m * std``.

    Parameters
    ----------
    mean, std : float
        The calibration statistics, in the space of the observed values.
    m : float
        How many calibration standard deviations the rolling mean may rise.
    window : int
        Scores in the rolling mean, and how many consecutive scores the mean
        must stay high before drift is reported.
    """

    def __init__(self, mean: float, std: float, m: float, window: int) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        self.limit = mean + m * std
        self.window = window
        self._batches: deque[tuple[int, float]] = deque()
        self._count = 0
        self._sum = 0.0
        self._high_for = 0

    @property
    def rolling_mean(self) -> float:
        """Mean of the scores in the window (NaN before the first)."""
        return self._sum / self._count if self._count else float("nan")

    def observe(self, values: np.ndarray) -> bool:
        """Add one batch of values; True when drift is confirmed by this batch."""
        x = np.asarray(values, dtype=np.float64).ravel()
        if x.size == 0:
            return False
        self._batches.append((int(x.size), float(x.sum())))
        self._count += int(x.size)
        self._sum += float(x.sum())
        while self._batches and self._count - self._batches[0][0] >= self.window:
            n, s = self._batches.popleft()
            self._count -= n
            self._sum -= s
        full = self._count >= self.window
        high = full and self.rolling_mean > self.limit
        self._high_for = self._high_for + int(x.size) if high else 0
        if self._high_for >= self.window:
            self.reset()
            return True
        return False

    def reset(self) -> None:
        """Forget everything seen (after a report or a model swap)."""
        self._batches.clear()
        self._count, self._sum, self._high_for = 0, 0.0, 0
