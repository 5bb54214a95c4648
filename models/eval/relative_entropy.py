"""NAB's relative-entropy detector (Wang et al. 2011, as NAB runs it): a peer baseline.

Each reading is quantised into equal-width levels between ``low`` and
``high``; the last ``window`` levels form a histogram, which is tested
against every earlier histogram kept as a hypothesis with the multinomial
goodness-of-fit test: it agrees with hypothesis ``i`` when
``2 W KL(P_hat || P_i)`` is below the chi-squared quantile of
``1 - alpha`` with ``bins - 1`` degrees of freedom. A window that agrees with
no hypothesis becomes a new one and is anomalous; one that agrees is counted
to the hypothesis it agrees with best, and is anomalous while that count is
at most ``rare`` (1 in NAB: never, since the count starts at 1 and is raised
first). The first window only becomes the first hypothesis.

This follows NAB's ``relative_entropy_detector.py`` including its quirk:
``ceil((x - low) / step)`` gives levels 0 to ``bins`` and the histogram over
``bins`` unit bins puts the top two levels in one bin. NAB hands the detector
the *whole file's* minimum and maximum, which a stream cannot know: with
those bounds it is a faithful but not causal baseline. ``clip=True`` folds
readings outside ``[low, high]`` into the edge levels, for bounds taken from
a stretch already seen (causal).

Examples
--------
>>> x = np.r_[np.tile([0.0, 1.0, 2.0, 3.0], 40), np.full(60, 3.0)]
>>> flags = relative_entropy_flags(x, 0.0, 3.0, window=20)
>>> bool(flags[:160].any()), int(np.argmax(flags))        # the change of distribution
(False, 173)
"""

from __future__ import annotations

import math

import numpy as np


def chi2_isf(alpha: float, df: int) -> float:
    """The chi-squared quantile with upper tail ``alpha`` (``df`` degrees of freedom).

    >>> round(chi2_isf(0.01, 4), 3), round(chi2_isf(0.05, 1), 3), round(chi2_isf(0.01, 3), 3)
    (13.277, 3.841, 11.345)
    """
    if not 0.0 < alpha < 1.0 or df < 1:
        raise ValueError("alpha must lie in (0, 1) and df be at least 1")
    lo, hi = 0.0, 1.0
    while chi2_sf(hi, df) > alpha:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        lo, hi = (mid, hi) if chi2_sf(mid, df) > alpha else (lo, mid)
    return (lo + hi) / 2.0


def chi2_sf(x: float, df: int) -> float:
    """``P(X > x)`` for ``X`` chi-squared with integer ``df`` (closed forms, no SciPy).

    >>> round(chi2_sf(2.0, 2), 6) == round(math.exp(-1.0), 6), round(chi2_sf(3.841459, 1), 4)
    (True, 0.05)
    """
    if x <= 0.0:
        return 1.0
    half = x / 2.0
    if df % 2 == 0:
        term, total = 1.0, 1.0
        for i in range(1, df // 2):
            term *= half / i
            total += term
        return math.exp(-half) * total
    root = math.sqrt(x)
    total = math.erfc(root / math.sqrt(2.0))
    term = math.sqrt(2.0 / math.pi) * math.exp(-half) * root
    for i in range(1, (df - 1) // 2 + 1):
        total += term
        term *= x / (2 * i + 1)
    return total


def relative_entropy_flags(
    values: np.ndarray, low: float, high: float, *, bins: int = 5, window: int = 52,
    alpha: float = 0.01, rare: int = 1, clip: bool = False,
) -> np.ndarray:  # fmt: skip
    """Per reading, whether the window ending at it is anomalous (see the module docstring).

    A flat range (``high <= low``) gives no flags: every reading is one level.

    >>> relative_entropy_flags(np.ones(100), 1.0, 1.0).any()
    np.False_
    """
    x = np.asarray(values, dtype=np.float64)
    flags = np.zeros(len(x), dtype=bool)
    step = (high - low) / bins
    if not step > 0 or len(x) < window:
        return flags
    levels = np.ceil((x - low) / step)
    if clip:
        levels = np.clip(levels, 0, bins)
    inside = (levels >= 0) & (levels <= bins)
    onehot = np.zeros((len(x) + 1, bins))
    rows = np.flatnonzero(inside)
    onehot[rows + 1, np.minimum(levels[rows], bins - 1).astype(int)] = 1.0
    counts = np.cumsum(onehot, axis=0)
    threshold = chi2_isf(alpha, bins - 1) / (2.0 * window)  # on KL itself
    hypotheses = np.empty((16, bins))
    seen: list[int] = []
    for t in range(window - 1, len(x)):
        c = counts[t + 1] - counts[t + 1 - window]
        total = c.sum()
        if total == 0:
            continue
        p = c / total
        if not seen:
            hypotheses[0], seen = p, [1]
            continue
        kl = _kl(p, hypotheses[: len(seen)])
        agree = np.flatnonzero(kl < threshold)
        if len(agree):
            best = int(agree[np.argmin(kl[agree])])
            seen[best] += 1
            flags[t] = seen[best] <= rare
            continue
        flags[t] = True
        if len(seen) == len(hypotheses):
            hypotheses = np.concatenate([hypotheses, np.empty_like(hypotheses)])
        hypotheses[len(seen)] = p
        seen.append(1)
    return flags


def _kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``KL(p || q_i)`` for each row ``q_i`` (infinite where ``q`` misses a level ``p`` has).

    >>> _kl(np.array([0.5, 0.5, 0.0]), np.array([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])).tolist()
    [0.0, inf]
    """
    on = p > 0
    pp, qq = p[on], q[:, on]
    with np.errstate(divide="ignore"):
        return (pp * (np.log(pp) - np.log(qq))).sum(axis=1)
