"""Statistics of the reconstruction error on held-out normal rows.

They ship inside the model artifact so a threshold can start from them before
any live traffic has been seen.

Examples
--------
>>> import numpy as np
>>> cal = Calibration.from_scores(np.array([1.0, 2.0, 3.0, 4.0]))
>>> cal.count, cal.mean, round(cal.std, 4)
(4, 2.5, 1.118)
>>> cal.quantiles["0.5"]
2.5
>>> round(cal.threshold(3.0), 4)
5.8541
>>> round(cal.log_mean, 4), round(cal.log_std, 4)
(0.7945, 0.5206)
>>> Calibration.from_dict(cal.to_dict()) == cal
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from seismo.models.errors import DataError

QUANTILES: tuple[str, ...] = ("0.5", "0.9", "0.95", "0.99", "0.999")
"""Quantile levels recorded, as the string keys used in ``config.json``."""

LOG_FLOOR = 1e-30
"""Scores are floored here before taking logs (a perfect reconstruction scores 0)."""


def log_scores(scores: np.ndarray) -> np.ndarray:
    """Natural log of non-negative scores, in float64, floored at `LOG_FLOOR`.

    Reconstruction errors are positive and right-skewed (roughly log-normal),
    so their logs are close to Gaussian: mean + k * std is meaningful there.

    >>> float(log_scores(np.array([1.0]))[0]), bool(log_scores(np.array([0.0]))[0] < -60)
    (0.0, True)
    """
    return np.log(np.maximum(np.asarray(scores, dtype=np.float64), LOG_FLOOR))


@dataclass(frozen=True)
class Calibration:
    """Summary of anomaly scores (higher = more anomalous) on normal data.

    Parameters
    ----------
    count : int
        Number of scores summarised.
    mean : float
        Mean score.
    std : float
        Population standard deviation (ddof=0) of the scores.
    quantiles : dict of str to float
        Linear-interpolated quantiles keyed by level, see `QUANTILES`.
    log_mean, log_std : float
        Mean and population std of `log_scores` of the same scores.
    contamination : float or None
        A known share of anomalies in the training data, if one was given.
    contamination_threshold : float or None
        The ``1 - contamination`` quantile of the *training* scores: the
        threshold that flags that share of the training rows (the classic
        "known contamination" rule), stored beside the mean/std calibration.
    """

    count: int
    mean: float
    std: float
    quantiles: dict[str, float]
    log_mean: float
    log_std: float
    contamination: float | None = None
    contamination_threshold: float | None = None

    @classmethod
    def from_scores(cls, scores: np.ndarray) -> Calibration:
        """Summarise a 1-D array of finite scores of shape ``(n,)``, ``n >= 1``.

        Statistics are computed in float64 whatever the input dtype.
        """
        values = np.asarray(scores, dtype=np.float64)
        if values.ndim != 1 or values.size == 0:
            raise DataError(f"calibration needs a non-empty 1-D score array, got {values.shape}")
        if not np.all(np.isfinite(values)):
            raise DataError("calibration scores contain NaN or Inf")
        levels = np.array([float(q) for q in QUANTILES])
        qs = np.quantile(values, levels)
        return cls(
            count=int(values.size),
            mean=float(values.mean()),
            std=float(values.std()),
            quantiles={key: float(q) for key, q in zip(QUANTILES, qs, strict=True)},
            log_mean=float(log_scores(values).mean()),
            log_std=float(log_scores(values).std()),
        )

    def with_contamination(self, train_scores: np.ndarray, ratio: float) -> Calibration:
        """A copy that also holds the threshold flagging ``ratio`` of ``train_scores``.

        Examples
        --------
        >>> cal = Calibration.from_scores(np.array([1.0, 2.0]))
        >>> cal.with_contamination(np.arange(1001.0), 0.01).contamination_threshold
        990.0
        >>> cal.with_contamination(np.arange(10.0), 0.0)
        Traceback (most recent call last):
        ...
        seismo.models.errors.DataError: contamination must be in (0, 0.5), got 0.0
        """
        if not 0 < ratio < 0.5:
            raise DataError(f"contamination must be in (0, 0.5), got {ratio!r}")
        values = np.asarray(train_scores, dtype=np.float64)
        if values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values)):
            raise DataError("contamination needs a non-empty 1-D array of finite scores")
        threshold = float(np.quantile(values, 1.0 - ratio))
        return replace(self, contamination=float(ratio), contamination_threshold=threshold)

    def threshold(self, k: float) -> float:
        """Return ``mean + k * std``, the score above which a row is ``k`` sigmas out.

        Examples
        --------
        >>> Calibration(count=2, mean=1.0, std=0.5, quantiles={}, log_mean=0.0,
        ...             log_std=0.1).threshold(2)
        2.0
        """
        return self.mean + k * self.std

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict; `from_dict` reverses it."""
        return {
            "count": self.count,
            "mean": self.mean,
            "std": self.std,
            "quantiles": dict(self.quantiles),
            "log_mean": self.log_mean,
            "log_std": self.log_std,
            "contamination": self.contamination,
            "contamination_threshold": self.contamination_threshold,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibration:
        """Rebuild from `to_dict` output; raises `DataError` if fields are missing or bad."""
        try:
            count = data["count"]
            quantiles = {str(k): float(v) for k, v in dict(data["quantiles"]).items()}
            mean, std = float(data["mean"]), float(data["std"])
            log_mean, log_std = float(data["log_mean"]), float(data["log_std"])
            contamination = _optional_float(data.get("contamination"))
            contamination_threshold = _optional_float(data.get("contamination_threshold"))
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"invalid calibration: {exc!r}") from exc
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise DataError(f"invalid calibration: count must be a positive integer, got {count!r}")
        if not all(np.isfinite([mean, std, log_mean, log_std, *quantiles.values()])) or min(
            std, log_std
        ) < 0:
            raise DataError("invalid calibration: statistics must be finite, std >= 0")
        return cls(count=count, mean=mean, std=std, quantiles=quantiles, log_mean=log_mean,
                   log_std=log_std, contamination=contamination,
                   contamination_threshold=contamination_threshold)


def _optional_float(value: Any) -> float | None:
    """``None`` stays ``None``; anything else must be a finite number."""
    if value is None:
        return None
    number = float(value)
    if not np.isfinite(number):
        raise ValueError(f"not a finite number: {value!r}")
    return number
