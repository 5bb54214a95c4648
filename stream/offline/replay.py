"""A file replayed through the scorer's rolling threshold rule (``seismo evaluate --streaming``).

``seismo evaluate`` judges every row against the model's calibration
threshold. The scorer does not: after ``min_samples`` scores its threshold
is ``mean + k * std`` of the recent normal scores
(:mod:`seismo.stream.scoring.threshold`, :mod:`seismo.stream.scoring.stats`),
which follows the live data and may end far from the calibration. Here the
rows are judged in file order, in batches of ``batch`` rows, each batch
against the threshold of the statistics of the batches before it, and its
learnable scores (:func:`~seismo.stream.scoring.threshold.learnable`) then
merged with the scorer's window cap: the same code, the same settings, one
scorer, Redis always reachable.

Pure: scores in, flags out.

Examples
--------
>>> from seismo.models.calibration import Calibration
>>> cal = Calibration(100, 1.0, 0.1, {}, log_mean=0.0, log_std=0.1)
>>> rule = ThresholdRule(k=3.0, min_samples=4, space="linear")
>>> scores = np.array([1.0, 1.0, 1.0, 1.0, 1.2, 5.0])
>>> replay = replay_threshold(scores, cal, rule, stats_window=None)
>>> replay.flags.tolist()   # 1.2: below the calibration's 1.3, above the rolling 1.0
[False, False, False, False, True, True]
>>> [round(t, 2) for t in replay.thresholds.tolist()]
[1.3, 1.3, 1.3, 1.3, 1.0, 1.0]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seismo.models.calibration import Calibration
from seismo.stream.scoring.stats import RunningStats
from seismo.stream.scoring.threshold import ThresholdRule, learnable


@dataclass(frozen=True)
class Replay:
    """Each row's verdict and the threshold it was judged against (score units)."""

    flags: np.ndarray  # (n,) bool
    thresholds: np.ndarray  # (n,) float64
    stats: RunningStats  # the rolling statistics after the last row


def replay_threshold(
    scores: np.ndarray, calibration: Calibration, rule: ThresholdRule, *,
    stats_window: int | None, learn_anomalies: bool = False, batch: int = 1,
) -> Replay:  # fmt: skip
    """Judge ``scores`` (``(n,)``, higher = more anomalous) in order, as the scorer would.

    Parameters
    ----------
    scores : numpy.ndarray
        ``(n,)`` reconstruction errors in stream order.
    calibration : Calibration
        The model's calibration (the threshold until ``rule.min_samples`` scores).
    rule : ThresholdRule
        ``k``, ``min_samples`` and the score space of the scorer.
    stats_window : int or None
        The scorer's ``stats_window``: the statistics' memory, in scores.
    learn_anomalies : bool
        Whether flagged scores join the statistics too.
    batch : int
        Rows judged against one threshold (the scorer's micro-batch; 1 = each
        row against all rows before it, a stream slower than ``linger_ms``).
    """
    if batch < 1:
        raise ValueError("batch must be at least 1")
    values = np.asarray(scores, dtype=np.float64).ravel()
    flags = np.zeros(values.size, dtype=bool)
    thresholds = np.empty(values.size, dtype=np.float64)
    stats = RunningStats()
    for start in range(0, values.size, batch):
        chunk = values[start : start + batch]
        threshold = rule.current(stats, calibration)
        flagged, _z = threshold.classify(chunk)
        flags[start : start + batch] = flagged
        thresholds[start : start + batch] = threshold.value
        stats = stats.merge(learnable(chunk, flagged, learn_anomalies, rule.space,
                                      threshold, rule.calibrated(calibration)),
                            window=stats_window)  # fmt: skip
    return Replay(flags, thresholds, stats)
