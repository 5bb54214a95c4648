"""VUS-PR: the volume under the range-based precision-recall surface (plain numpy).

Paparrizos et al. 2022, "Volume Under the Surface: a new accuracy evaluation
measure for time-series anomaly detection" (VLDB), as the TSB-AD benchmark
(``TSB_AD.evaluation``, version 1.5) computes it. Scores follow the detector
contract, **higher = more anomalous**; labels mark the anomalous rows.

What it rewards
---------------
A ranking of rows, not one threshold: it needs no threshold and is not moved
by any monotone change of the scores. Point-wise PR-AUC asks a detector to
put exactly the labelled rows on top; labels of time series are rarely that
exact, and a detector that fires a few rows before or after an anomaly gets
nothing for it. VUS-PR gives each labelled range a *buffer*: ``b // 2`` rows
on each side, whose rows count as partly anomalous (weight
``sqrt(1 - d / b)`` at ``d`` rows from the range) when they are flagged.
Recall is range-based: it is multiplied by the share of ranges that hold at
least one flag, so finding every anomaly once counts more than finding one
long anomaly thoroughly. The range PR-AUC is averaged over every buffer
``b = 0, 1, ..., max_buffer``, so no one buffer length is chosen for the
detector. It does *not* reward early detection over late (the buffer is
symmetric), and it has no point adjustment: one flag does not count a whole
range as found, only the range's existence share.

A random score gets about the anomaly rate (a little more with buffers); a
score that ranks every labelled row first gets 1.0.

Thresholds: TSB-AD evaluates 250 thresholds, taken at evenly spaced ranks of
the sorted scores; :func:`vus_pr` by default evaluates every distinct score
(the exact curve), and ``thresholds=250`` reproduces TSB-AD's figure.

Examples
--------
One anomalous row (row 2); the detector's peak is one row late (row 3):

>>> labels = np.array([0, 0, 1, 0, 0, 0], bool)
>>> late = np.array([0.0, 0.0, 0.0, 1.0, 0.0, 0.0])
>>> round(range_pr_auc(labels, late, buffer=0), 4)
0.1667
>>> round(range_pr_auc(labels, late, buffer=2), 4)
0.5616
>>> round(vus_pr(labels, late, max_buffer=2), 4)
0.2983
>>> vus_pr(labels, labels.astype(float), max_buffer=2)
1.0
"""

from __future__ import annotations

import numpy as np

from seismo.models.errors import DataError
from seismo.models.eval.metrics import labels_and_scores


def anomaly_ranges(labels: np.ndarray) -> np.ndarray:
    """``(r, 2)`` first and last row (inclusive) of each run of anomalous rows.

    >>> anomaly_ranges(np.array([1, 1, 0, 0, 1, 0, 1], bool)).tolist()
    [[0, 1], [4, 4], [6, 6]]
    """
    edges = np.diff(np.r_[0, labels.astype(np.int8), 0])
    return np.stack([np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1], axis=1)


def buffer_weights(n: int, ranges: np.ndarray, buffer: int) -> np.ndarray:
    """``(n,)`` label weights: 1 on the ranges, ``sqrt(1 - d / buffer)`` at ``d <= buffer // 2``
    rows outside them (overlapping buffers add up), at most 1.

    >>> buffer_weights(7, np.array([[3, 3]]), buffer=4).round(3).tolist()
    [0.0, 0.707, 0.866, 1.0, 0.866, 0.707, 0.0]
    """
    weight = np.zeros(n)
    for first, last in ranges.tolist():
        weight[first : last + 1] = 1.0
    half = buffer // 2
    if half > 0:
        d = np.arange(1, half + 1)
        rows = np.concatenate([ranges[:, 1:2] + d, ranges[:, 0:1] - d]).ravel()
        tail = np.tile(np.sqrt(1 - d / buffer), 2 * len(ranges))
        inside = (rows >= 0) & (rows < n)
        np.add.at(weight, rows[inside], tail[inside])
    return np.minimum(weight, 1.0)


def buffered_ranges(n: int, ranges: np.ndarray, half: int) -> np.ndarray:
    """``(m, 2)`` the ranges widened by ``half`` rows each side, overlapping ones merged.

    >>> buffered_ranges(20, np.array([[2, 3], [7, 7], [15, 16]]), half=2).tolist()
    [[0, 9], [13, 18]]
    """
    starts, ends = ranges[:, 0] - half, ranges[:, 1] + half
    new = np.r_[True, starts[1:] > ends[:-1]]
    merged = np.stack([starts[new], np.r_[ends[np.flatnonzero(new)[1:] - 1], ends[-1]]], axis=1)
    return np.clip(merged, 0, n - 1)


def _checked(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y, s = labels_and_scores(labels, scores)
    if not y.any():
        raise DataError("VUS-PR needs at least one anomalous row")
    return y, s


class _Ranking:
    """The scores sorted once, and the thresholds each buffer's curve is read at."""

    def __init__(self, scores: np.ndarray, thresholds: int | None) -> None:
        self.order = np.argsort(-scores, kind="stable")
        descending = scores[self.order]
        if thresholds is None:
            cut = np.unique(descending)[::-1]
        else:
            cut = descending[np.linspace(0, len(scores) - 1, thresholds).astype(int)]
        #: flagged rows at each threshold (``score >= t``); rank ``< flagged`` is flagged
        self.flagged = np.searchsorted(-descending, -cut, side="right")
        self.rank = np.empty(len(scores), dtype=np.int64)
        self.rank[self.order] = np.arange(len(scores))


def _range_ap(y: np.ndarray, ranges: np.ndarray, ranking: _Ranking, buffer: int) -> float:
    n, positives = len(y), float(y.sum())
    weight = buffer_weights(n, ranges, buffer)
    hit = np.cumsum(weight[ranking.order])[ranking.flagged - 1]  # TP: weight of flagged rows
    buffered = hit - np.cumsum(y[ranking.order])[ranking.flagged - 1]
    labelled = (positives + positives + buffered) / 2  # TSB-AD: (P + P + flagged buffer) / 2
    segments = buffered_ranges(n, ranges, buffer // 2)
    bounds = np.stack([segments[:, 0], segments[:, 1] + 1], axis=1).ravel()
    first_flag = np.sort(np.minimum.reduceat(np.r_[ranking.rank, n], bounds)[0::2])
    existence = np.searchsorted(first_flag, ranking.flagged, side="left") / len(segments)
    recall = np.minimum(hit / labelled, 1.0) * existence
    precision = hit / ranking.flagged
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def range_pr_auc(
    labels: np.ndarray, scores: np.ndarray, buffer: int, *, thresholds: int | None = None
) -> float:
    """Range-based PR-AUC with one label buffer of ``buffer`` rows (``buffer // 2`` each side).

    Parameters
    ----------
    labels : (n,) bool
        True on anomalous rows; at least one.
    scores : (n,) float
        Higher = more anomalous.
    buffer : int
        Buffer length ``b >= 0``; 0 and 1 add no buffer rows.
    thresholds : int, optional
        None: every distinct score; an int: that many, at evenly spaced ranks
        (TSB-AD's rule, which uses 250).

    Returns
    -------
    float
        In [0, 1]: the sum over thresholds of the rise in range recall times
        the range precision at that threshold (TSB-AD's step rule).

    Raises
    ------
    DataError
        For unequal shapes, labels other than 0/1, non-finite scores, no anomaly.
    """
    return vus_pr(labels, scores, buffer, thresholds=thresholds, buffers=[buffer])


def vus_pr(
    labels: np.ndarray,
    scores: np.ndarray,
    max_buffer: int,
    *,
    thresholds: int | None = None,
    buffers: list[int] | None = None,
) -> float:
    """VUS-PR: :func:`range_pr_auc` averaged over buffers ``0, 1, ..., max_buffer``.

    Parameters
    ----------
    labels : (n,) bool
        True on anomalous rows; at least one.
    scores : (n,) float
        Higher = more anomalous. Only their order matters.
    max_buffer : int
        The longest buffer (TSB-AD's ``slidingWindow``), ``>= 0``.
    thresholds : int, optional
        None (default): every distinct score; 250 reproduces TSB-AD 1.5.
    buffers : list of int, optional
        The buffer lengths averaged over, in place of ``0..max_buffer``.

    Returns
    -------
    float
        In [0, 1]; 1.0 when every anomalous row outranks every normal one.

    Raises
    ------
    DataError
        For unequal shapes, labels other than 0/1, non-finite scores, no
        anomaly, or a negative ``max_buffer``.

    Examples
    --------
    A random score earns about the anomaly rate (10 % here; the buffers add a little):

    >>> rng = np.random.default_rng(0)
    >>> y = np.zeros(5000, bool)
    >>> for start in range(100, 5000, 500):
    ...     y[start : start + 50] = True
    >>> round(vus_pr(y, rng.random(5000), max_buffer=20), 2)
    0.11
    """
    y, s = _checked(labels, scores)
    if max_buffer < 0:
        raise DataError(f"max_buffer must be >= 0, got {max_buffer}")
    ranking = _Ranking(s, thresholds)
    ranges = anomaly_ranges(y)
    lengths = range(max_buffer + 1) if buffers is None else buffers
    return float(np.mean([_range_ap(y, ranges, ranking, b) for b in lengths]))
