"""The threshold rule: z-score each reconstruction error, then classify.

Separate from the model and from Redis. The rule is
``threshold = mean + k * std`` of recent scores; until ``min_samples`` scores
have been seen, mean and std come from the model artifact's calibration
(validation errors at training time), so seismo never alerts on an
uncalibrated threshold.

Examples
--------
>>> from models.calibration import Calibration
>>> cal = Calibration(count=100, mean=1.0, std=0.5, quantiles={})
>>> rule = ThresholdRule(k=3.0, min_samples=1000)
>>> t = rule.current(RunningStats(count=10, mean=9.0, m2=0.0), cal)
>>> t.value, t.source
(2.5, 'calibration')
>>> t = rule.current(RunningStats(count=2000, mean=2.0, m2=2000 * 0.25), cal)
>>> t.value, t.source
(3.5, 'redis')
>>> flags, z = t.classify(np.array([1.0, 3.4, 3.6], dtype=np.float32))
>>> flags.tolist(), z.round(2).tolist()
([False, False, True], [-2.0, 2.8, 3.2])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from models.calibration import Calibration
from stream.stats import RunningStats

#: Where a threshold's mean/std came from.
ThresholdSource = Literal["calibration", "redis", "local"]

#: Smallest standard deviation used for z-scores (avoids division by zero).
MIN_STD = 1e-12


@dataclass(frozen=True)
class Threshold:
    """A threshold in force for one batch."""

    value: float
    mean: float
    std: float
    k: float
    source: ThresholdSource

    def classify(self, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Flag scores strictly above the threshold.

        Parameters
        ----------
        scores : numpy.ndarray
            ``(n,)`` reconstruction errors; higher = more anomalous.

        Returns
        -------
        flags : numpy.ndarray
            ``(n,)`` bool, True where ``score > value``.
        zscores : numpy.ndarray
            ``(n,)`` float64 ``(score - mean) / std``.
        """
        s = np.asarray(scores, dtype=np.float64)
        z = (s - self.mean) / max(self.std, MIN_STD)
        return s > self.value, z


@dataclass(frozen=True)
class ThresholdRule:
    """``mean + k * std`` with an explicit warm-up of ``min_samples`` scores."""

    k: float = 3.0
    min_samples: int = 1000

    def current(
        self,
        stats: RunningStats,
        calibration: Calibration,
        source: ThresholdSource = "redis",
    ) -> Threshold:
        """The threshold for the next batch, given the shared statistics.

        Parameters
        ----------
        stats : RunningStats
            Rolling statistics of recent normal scores.
        calibration : Calibration
            The artifact's validation-error statistics, used during warm-up.
        source : {"redis", "local"}
            Where ``stats`` came from, reported in alerts.
        """
        if stats.count >= self.min_samples:
            mean, std, used = stats.mean, stats.std, source
        else:
            mean, std, used = calibration.mean, calibration.std, "calibration"
        return Threshold(value=mean + self.k * std, mean=mean, std=std, k=self.k, source=used)


def learnable(scores: np.ndarray, flags: np.ndarray, learn_anomalies: bool) -> RunningStats:
    """Statistics of the scores that may be folded into the rolling state.

    Flagged scores are left out unless ``learn_anomalies`` is set, so a burst of
    anomalies does not raise the threshold that should catch it.

    >>> s = np.array([1.0, 2.0, 100.0])
    >>> learnable(s, np.array([False, False, True]), learn_anomalies=False).count
    2.0
    >>> learnable(s, np.array([False, False, True]), learn_anomalies=True).count
    3.0
    """
    kept = scores if learn_anomalies else scores[~flags]
    return RunningStats.from_scores(kept)
