"""An anomaly likelihood in the spirit of NAB's HTM detector, on any per-row score.

HTM (Ahmad et al. 2017) does not threshold its raw prediction error. It
averages the last ``short`` raw scores and asks how far in the tail of their
own recent distribution that average lies: the Gaussian tail probability of
the short average against the mean and standard deviation of the short
averages over the last ``long`` rows (every row, flagged ones too), after a
learning period. A row is flagged when that tail probability falls below
``tail`` (NAB's HTM runs flag at about ``1e-5``).

:func:`likelihood_flags` applies that stage to seismo's combined severity
(the stronger of the window and level checks over its threshold: 1.0 on it),
clipped to ``[0, ceiling]`` so that, like HTM's raw score in ``[0, 1]``, one
enormous score cannot dominate the distribution. It is a variant of
``seismo benchmark-nab`` (``--likelihood-tail``), judged under the protocol
in ``docs/protocol.md``; the scorer does not use it.

Examples
--------
>>> rng = np.random.default_rng(0)
>>> severity = rng.uniform(0.0, 0.4, 3000)
>>> severity[2500:2520] = 2.0                         # a burst well above the usual
>>> flags = likelihood_flags(severity, start=100, tail=1e-3)
>>> bool(flags[2500:2530].any()), int(flags[:2500].sum())
(True, 0)
"""

from __future__ import annotations

import math

import numpy as np

#: HTM's averaging window of raw scores, its historic window and learning period.
SHORT = 10
LONG = 8640
LEARNING = 288
#: Smallest standard deviation of the short averages (severity units: 1.0 = threshold).
MIN_SPREAD = 0.05
#: Raw scores are clipped to [0, CEILING] before they enter (HTM's are in [0, 1]).
CEILING = 4.0


def trailing_mean(x: np.ndarray, width: int) -> np.ndarray:
    """Each element's mean with the ``width - 1`` before it (fewer at the start).

    >>> trailing_mean(np.array([1.0, 3.0, 5.0, 7.0]), 2).tolist()
    [1.0, 2.0, 4.0, 6.0]
    """
    sums = np.concatenate([[0.0], np.cumsum(x, dtype=np.float64)])
    i = np.arange(len(x))
    lo = np.maximum(0, i - width + 1)
    return (sums[i + 1] - sums[lo]) / (i + 1 - lo)


def past_mean_std(x: np.ndarray, history: int) -> tuple[np.ndarray, np.ndarray]:
    """Per element, the mean and standard deviation of the ``history`` elements before
    it (fewer at the start; 0 and 0 for the first, which has none).

    >>> mean, std = past_mean_std(np.array([1.0, 3.0, 1.0, 3.0, 5.0]), history=4)
    >>> mean.round(3).tolist(), std.round(3).tolist()
    ([0.0, 1.0, 2.0, 1.667, 2.0], [0.0, 0.0, 1.0, 0.943, 1.0])
    """
    x = np.asarray(x, dtype=np.float64)
    sums, squares = np.cumsum(np.r_[0.0, x]), np.cumsum(np.r_[0.0, x * x])
    i = np.arange(len(x))
    lo = np.maximum(0, i - history)
    count = np.maximum(i - lo, 1)
    mean = (sums[i] - sums[lo]) / count
    return mean, np.sqrt(np.maximum((squares[i] - squares[lo]) / count - mean * mean, 0.0))


def tail_probability(
    severity: np.ndarray, short: int = SHORT, long: int = LONG
) -> np.ndarray:  # fmt: skip
    """Per row, the Gaussian tail probability of the mean of its last ``short`` scores
    against the mean and std of those means over the ``long`` rows before it (1.0 for
    the first row, which has no past).

    >>> p = tail_probability(np.array([0.1, 0.2, 0.1, 0.2, 0.1, 2.0]), short=1)
    >>> bool(p[-1] < 1e-6), bool(p[2] > 0.1)
    (True, True)
    """
    raw = np.clip(np.nan_to_num(np.asarray(severity, dtype=np.float64)), 0.0, CEILING)
    averages = trailing_mean(raw, short)
    mean, spread = past_mean_std(averages, long)
    z = (averages - mean) / np.maximum(spread, MIN_SPREAD)
    p = 0.5 * _erfc(z / math.sqrt(2.0)).astype(np.float64)
    p[0] = 1.0
    return p


#: The complementary error function, element-wise (scipy is not a dependency).
_erfc = np.frompyfunc(math.erfc, 1, 1)


def likelihood_flags(
    severity: np.ndarray, start: int, tail: float, short: int = SHORT, long: int = LONG,
    learning: int = LEARNING,
) -> np.ndarray:  # fmt: skip
    """Rows whose :func:`tail_probability` over the rows from ``start`` on is below
    ``tail``; nothing before ``start + learning``.

    >>> likelihood_flags(np.ones(5), start=0, tail=1e-3, learning=0).tolist()
    [False, False, False, False, False]
    """
    if not 0.0 < tail < 1.0:
        raise ValueError("tail must be between 0 and 1")
    flags = np.zeros(len(severity), dtype=bool)
    judged = np.asarray(severity, dtype=np.float64)[start:]
    if len(judged):
        found = tail_probability(judged, short, long) < tail
        found[:learning] = False
        flags[start:] = found
    return flags
