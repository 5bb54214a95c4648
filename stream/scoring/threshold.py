"""The threshold rule: z-score each reconstruction error, then classify.

Separate from the model and from Redis. The rule is ``mean + k * std`` of
recent scores, computed in a *score space*:

- ``log`` (default): statistics of ``log(score)``, threshold
  ``exp(mean + k * std)``. Reconstruction errors are positive and
  right-skewed (a sum of squared residuals is chi-square-like), so their logs
  are close to Gaussian and ``k`` keeps its usual meaning: k = 3 flags about
  0.1% of normal events. Measured on the end-to-end pipe, k = 3 gave precision
  0.98 here against 0.25-0.35 in the linear space.
- ``linear``: statistics of the raw scores, threshold ``mean + k * std``.

Until ``min_samples`` scores have been seen, mean and std come from the
model artifact's calibration (validation errors at training time), so seismo
never alerts on an uncalibrated threshold.

Examples
--------
>>> from seismo.models.calibration import Calibration
>>> cal = Calibration(count=100, mean=1.0, std=0.5, quantiles={}, log_mean=0.0, log_std=0.5)
>>> rule = ThresholdRule(k=3.0, min_samples=1000, space="linear")
>>> t = rule.current(RunningStats(count=10, mean=9.0, m2=0.0), cal)
>>> t.value, t.source
(2.5, 'calibration')
>>> t = rule.current(RunningStats(count=2000, mean=2.0, m2=2000 * 0.25), cal)
>>> t.value, t.source
(3.5, 'redis')
>>> flags, z = t.classify(np.array([1.0, 3.4, 3.6], dtype=np.float32))
>>> flags.tolist(), z.round(2).tolist()
([False, False, True], [-2.0, 2.8, 3.2])
>>> t = ThresholdRule(k=2.0, min_samples=1000, space="log").current(RunningStats(), cal)
>>> round(t.value, 4), t.mean, t.std
(2.7183, 0.0, 0.5)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from seismo.models.calibration import Calibration, log_scores
from seismo.stream.scoring.stats import RunningStats

#: Where a threshold's mean/std came from.
ThresholdSource = Literal["calibration", "redis", "local"]
#: Where the statistics are computed: on log(score) or on the raw score.
ScoreSpace = Literal["log", "linear"]

#: Smallest standard deviation used for z-scores (avoids division by zero).
MIN_STD = 1e-12
#: The learning band's half-width is at least ``k`` times this share of a score's scale
#: (0.01 in the log space: scores 1 % apart; 1 % of the mean in the linear one), so
#: statistics whose spread is 0 can still learn one.
BAND_FLOOR = 0.01
#: The threshold in force is at most this many times the model's calibration threshold
#: (:attr:`ThresholdRule.max_factor`; ``seismo score --max-threshold-factor``).
MAX_FACTOR = 10.0
#: A batch of at least this many learnable scores widens the learning band to its own
#: robust band (median -/+ k * 1.4826 * MAD): what most of a batch shows is learnt as it
#: is, so the statistics follow a shift as fast as without the band (during warm-up too,
#: where the band is the calibration's), while a few crafted scores are still clipped.
ROBUST_MIN = 30


def to_space(scores: np.ndarray, space: ScoreSpace) -> np.ndarray:
    """Scores as float64 in the given space.

    >>> to_space(np.array([1.0, np.e]), "log").tolist()
    [0.0, 1.0]
    """
    return log_scores(scores) if space == "log" else np.asarray(scores, dtype=np.float64)


@dataclass(frozen=True)
class Threshold:
    """A threshold in force for one batch.

    ``value`` is in score units; ``mean`` and ``std`` are in ``space``.
    """

    value: float
    mean: float
    std: float
    k: float
    source: ThresholdSource
    space: ScoreSpace = "linear"
    #: the value the statistics gave, when :attr:`ThresholdRule.max_factor` lowered it
    capped_from: float | None = None

    @property
    def band(self) -> tuple[float, float]:
        """What a learnt value is clipped to, in ``space``: ``mean -/+ k * std``
        (see :func:`learning_band`)."""
        return learning_band(self.mean, self.std, self.k, self.space)

    def classify(self, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Flag scores whose z-score is above ``k``.

        Parameters
        ----------
        scores : numpy.ndarray
            ``(n,)`` reconstruction errors; higher = more anomalous.

        Returns
        -------
        flags : numpy.ndarray
            ``(n,)`` bool, True where ``score > value``.
        zscores : numpy.ndarray
            ``(n,)`` float64 ``(to_space(score) - mean) / std``.
        """
        x = to_space(scores, self.space)
        z = (x - self.mean) / max(self.std, MIN_STD)
        return x > self.mean + self.k * self.std, z


@dataclass(frozen=True)
class ThresholdRule:
    """``mean + k * std`` with an explicit warm-up of ``min_samples`` scores, at most
    ``max_factor`` times the calibration threshold (``None`` or 0: unbounded).

    The bound is the top's anchor, as :func:`learning_floor`'s calibration anchor is
    the bottom's: scores just under the threshold are learnt as they are, so a
    producer who keeps a share of the traffic there (the threshold, mean and std are
    in every alert) raises the rolling statistics batch after batch, and with them
    the threshold, without limit; bounded, a score ``max_factor`` times the
    calibration threshold always alerts. Live scores that have honestly moved that
    far (the model no longer fits the stream) alert too, loudly, until a retrained
    version is swapped in.

    >>> from seismo.models.calibration import Calibration
    >>> cal = Calibration(10, 1.0, 0.5, {}, log_mean=0.0, log_std=0.5)
    >>> rule = ThresholdRule(k=3.0, min_samples=1, space="linear", max_factor=4.0)
    >>> t = rule.current(RunningStats(count=10, mean=9.0, m2=10 * 4.0), cal)
    >>> t.value, t.capped_from, t.mean, round(t.std, 4)
    (10.0, 15.0, 9.0, 0.3333)
    >>> rule.current(RunningStats(count=10, mean=2.0, m2=0.0), cal).capped_from is None
    True
    """

    k: float = 3.0
    min_samples: int = 1000
    space: ScoreSpace = "log"
    max_factor: float | None = MAX_FACTOR

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
        if stats.count < self.min_samples:
            return self.calibrated(calibration)
        live = self._threshold(stats.mean, stats.std, source)
        cal = self.calibrated(calibration)
        if not self.max_factor or not cal.value > 0.0:
            return live
        top = cal.mean + self.k * cal.std
        if self.space == "log":
            top += math.log(self.max_factor)
        else:
            top += (self.max_factor - 1) * cal.value
        if not live.mean + self.k * live.std > top:
            return live
        mean, std = capped(live.mean, live.std, top, self.k, cal.std)
        return replace(self._threshold(mean, std, source), capped_from=live.value)

    def calibrated(self, calibration: Calibration) -> Threshold:
        """The threshold of the model's calibration alone (what warm-up uses).

        >>> from seismo.models.calibration import Calibration
        >>> cal = Calibration(10, 1.0, 0.5, {}, log_mean=0.0, log_std=0.5)
        >>> ThresholdRule(k=3.0, min_samples=0, space="linear").calibrated(cal).value
        2.5
        """
        if self.space == "log":
            return self._threshold(calibration.log_mean, calibration.log_std, "calibration")
        return self._threshold(calibration.mean, calibration.std, "calibration")

    def _threshold(self, mean: float, std: float, used: ThresholdSource) -> Threshold:
        edge = mean + self.k * std
        value = float(np.exp(edge)) if self.space == "log" else edge
        return Threshold(value, mean, std, self.k, used, self.space)


def capped(
    mean: float, std: float, top: float, k: float, fallback_std: float
) -> tuple[float, float]:
    """Statistics whose ``mean + k * std`` is ``top``: the spread narrowed, or, with the
    mean itself at or above ``top``, ``fallback_std`` (the calibration's) below it.

    >>> capped(1.0, 2.0, 4.0, 3.0, 0.5)
    (1.0, 1.0)
    >>> capped(5.0, 2.0, 4.0, 3.0, 0.5)
    (2.5, 0.5)
    """
    if mean < top:
        return mean, (top - mean) / k
    return top - k * fallback_std, fallback_std


def learning_band(mean: float, std: float, k: float, space: ScoreSpace) -> tuple[float, float]:
    """``mean -/+ k * std``, the half-width at least ``k * BAND_FLOOR`` of the score's scale.

    >>> learning_band(0.0, 0.5, 3.0, "log"), learning_band(2.0, 0.0, 3.0, "log")
    ((-1.5, 1.5), (1.97, 2.03))
    >>> learning_band(10.0, 0.0, 2.0, "linear")
    (9.8, 10.2)

    Linear statistics of scores that were all 0 have no scale: nothing is clipped.

    >>> learning_band(0.0, 0.0, 3.0, "linear")
    (-inf, inf)
    """
    scale = 1.0 if space == "log" else abs(mean)
    width = k * max(std, BAND_FLOOR * scale)
    if width <= 0.0:
        return -math.inf, math.inf
    return mean - width, mean + width


def widened_band(band: tuple[float, float], values: np.ndarray, k: float) -> tuple[float, float]:
    """``band``, widened to the values' own ``median -/+ k * 1.4826 * MAD`` when there are
    at least `ROBUST_MIN` of them (see :func:`learnable`).

    >>> shifted = np.linspace(-6.0, -4.0, 40)  # most of a batch, far below the band
    >>> [round(x, 2) for x in widened_band((-1.0, 1.0), shifted, 3.0)]
    [-7.28, 1.0]
    >>> widened_band((-1.0, 1.0), shifted[:5], 3.0)
    (-1.0, 1.0)
    """
    if values.size < ROBUST_MIN:
        return band
    median = float(np.median(values))
    spread = k * 1.4826 * float(np.median(np.abs(values - median)))
    return min(band[0], median - spread), max(band[1], median + spread)


def learnable(
    scores: np.ndarray, flags: np.ndarray, learn_anomalies: bool, space: ScoreSpace = "linear",
    threshold: Threshold | None = None, calibration: Threshold | None = None,
) -> RunningStats:  # fmt: skip
    """Statistics (in ``space``) of the scores that may join the rolling state.

    Flagged scores are left out unless ``learn_anomalies`` is set, so a burst of
    anomalies does not raise the threshold that should catch it. With
    ``threshold`` (the one in force), values more than one band width below
    its :attr:`Threshold.band` (:func:`learning_floor`: reconstructions too
    perfect for normal events) are left out too, and the rest are clipped to
    the band, widened by the batch's own robust band (:func:`widened_band`)
    but never below that floor: one score far *below* the others (a
    reconstruction near perfect, whose log is huge and negative) would
    otherwise widen the spread, raise the threshold and hide the anomalies
    after it, and with ``learn_anomalies`` one far above would do the same.
    Clipped, no single score moves the statistics more than a score at the
    band's edge does, while a shift that most of a batch shows is learnt as it
    is; and a burst of near-perfect reconstructions that is most of a batch
    (which the robust band would admit) is not learnt at all. With
    ``calibration`` (the model's calibrated threshold) the floor is never
    below the calibration's own: the floor in force moves with the
    statistics, so bursts aimed just above it would otherwise lower it
    batch after batch and raise the threshold without limit (a reviewer's
    finding); anchored, what such bursts can do is bounded.

    >>> s = np.array([1.0, 2.0, 100.0])
    >>> learnable(s, np.array([False, False, True]), learn_anomalies=False).count
    2.0
    >>> learnable(s, np.array([False, False, True]), learn_anomalies=True).count
    3.0
    >>> t = Threshold(value=np.e, mean=0.0, std=1 / 3, k=3.0, source="redis", space="log")
    >>> round(learnable(np.array([np.exp(-2.0), 1.0]), np.zeros(2, bool), False, "log", t).mean, 6)
    -0.5
    >>> kept = learnable(np.array([1e-30, 1.0]), np.zeros(2, bool), False, "log", t)
    >>> kept.count, kept.mean
    (1.0, 0.0)
    """
    kept = to_space(scores if learn_anomalies else scores[~flags], space)
    if threshold is not None and kept.size:
        floor = learning_floor(threshold.band)
        if calibration is not None:
            floor = max(floor, learning_floor(calibration.band))
        kept = kept[kept >= floor]
        if kept.size:
            low, high = widened_band(threshold.band, kept, threshold.k)
            kept = np.clip(kept, max(low, floor), high)
    return RunningStats.from_scores(kept)


def learning_floor(band: tuple[float, float]) -> float:
    """The lowest value :func:`learnable` learns: one band width below ``band``.

    In the log space with ``k = 3`` that is the mean minus 9 standard
    deviations: a reconstruction error ``exp(-9 std)`` times the usual, which
    normal events do not reach and crafted ones (a search against the model's
    weights for events it maps onto themselves) do by many orders of magnitude.
    A shift of the whole batch down by less is followed as before.

    >>> learning_floor((-1.5, 1.5)), learning_floor((-math.inf, math.inf))
    (-4.5, -inf)
    """
    return band[0] - (band[1] - band[0])
