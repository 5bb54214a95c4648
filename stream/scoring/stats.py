"""Rolling mean/std of scores: Chan's parallel merge of (count, mean, M2).

Pure and exact: merging the statistics of two batches gives the statistics of
their concatenation (up to floating point), which is what lets every scorer in
a consumer group merge its batches into one shared state in Redis
(:mod:`seismo.stream.io.redis_stats` runs the same arithmetic in a Lua script; the two are
tested against each other).

To follow slow drift, the state forgets: with ``window = W`` the merged count
is capped at ``W`` by scaling ``count`` and ``M2`` down together (the mean and
variance are kept, the weight of the past shrinks), so the statistics behave
like an exponentially weighted mean/variance with an effective memory of about
``W`` scores. ``window = None`` keeps everything (exact running statistics).

Examples
--------
>>> a = RunningStats.from_scores([1.0, 2.0, 3.0])
>>> b = RunningStats.from_scores([4.0, 5.0])
>>> ab = a.merge(b)
>>> ab.count, ab.mean, round(ab.variance, 12)
(5.0, 3.0, 2.0)
>>> capped = a.merge(b, window=4)
>>> capped.count, capped.mean, round(capped.variance, 12)
(4.0, 3.0, 2.0)
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class RunningStats:
    """Count, mean and sum of squared deviations (M2) of a set of scores.

    ``count`` is a float because a window cap scales it down.
    """

    count: float = 0.0
    mean: float = 0.0
    m2: float = 0.0

    @classmethod
    def from_scores(cls, scores: Iterable[float] | np.ndarray) -> RunningStats:
        """Statistics of a batch, computed in float64 with numpy.

        >>> RunningStats.from_scores([])
        RunningStats(count=0.0, mean=0.0, m2=0.0)
        """
        x = np.asarray(scores, dtype=np.float64).ravel()
        if x.size == 0:
            return cls()
        mean = float(x.mean())
        return cls(count=float(x.size), mean=mean, m2=float(((x - mean) ** 2).sum()))

    @property
    def usable(self) -> bool:
        """Whether every number is finite, and count and M2 are not negative.

        A state that is not usable (NaN, Inf) must never judge or be merged:
        it would make every later threshold NaN.

        >>> RunningStats(2.0, 1.0, 0.5).usable, RunningStats(2.0, float("nan"), 0.5).usable
        (True, False)
        """
        return (
            math.isfinite(self.count) and math.isfinite(self.mean) and math.isfinite(self.m2)
            and self.count >= 0 and self.m2 >= 0
        )  # fmt: skip

    @property
    def variance(self) -> float:
        """Population variance ``M2 / count`` (0 when empty)."""
        return self.m2 / self.count if self.count > 0 else 0.0

    @property
    def std(self) -> float:
        """Population standard deviation."""
        return math.sqrt(max(self.variance, 0.0))

    def merge(self, other: RunningStats, window: float | None = None) -> RunningStats:
        """Merge two states (Chan et al.), then cap the count at ``window``.

        Parameters
        ----------
        other : RunningStats
            Statistics of the new scores.
        window : float, optional
            Effective memory in scores; ``None`` keeps everything.

        Returns
        -------
        RunningStats
            The merged state; ``self`` and ``other`` are unchanged.

        Raises
        ------
        ValueError
            When ``other`` is not :attr:`usable` (non-finite input is refused).

        >>> RunningStats().merge(RunningStats(1.0, float("inf"), 0.0))
        Traceback (most recent call last):
        ...
        ValueError: refusing to merge non-finite statistics RunningStats(...mean=inf...)
        """
        if not other.usable:
            raise ValueError(f"refusing to merge non-finite statistics {other}")
        if other.count <= 0:
            merged = self
        elif self.count <= 0:
            merged = other
        else:
            n = self.count + other.count
            delta = other.mean - self.mean
            mean = self.mean + delta * other.count / n
            m2 = self.m2 + other.m2 + delta * delta * self.count * other.count / n
            merged = RunningStats(n, mean, m2)
        return merged.capped(window)

    def capped(self, window: float | None) -> RunningStats:
        """Scale ``count`` and ``M2`` down so that ``count <= window``.

        >>> RunningStats(10.0, 1.0, 20.0).capped(5)
        RunningStats(count=5.0, mean=1.0, m2=10.0)
        """
        if window is None or self.count <= window:
            return self
        factor = window / self.count
        return RunningStats(float(window), self.mean, self.m2 * factor)
