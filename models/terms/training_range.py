"""A range term: how far a reading lies beyond what its channel did in training (issue 20).

An autoencoder trained on known-normal rows (``seismo train --clean``) can
carry one channel through its bottleneck almost unchanged; a reading far out
on that channel alone is then reconstructed far out too, and its error stays
small (docs/detection.md: a -10 sigma pressure reading scored below the
threshold). The range term adds, per feature, the squared distance of the
standardised value beyond the interval its column spanned on the training
rows:

    excess_j = max(0, x_j - high_j, low_j - x_j)

to the feature's reconstruction error (the absolute distance for a ``mae``
score), so the row score and ``top_features`` both see it. Inside the
training range it adds exactly nothing.

>>> import torch
>>> span = TrainingRange.fit(torch.tensor([[0.0, -1.0], [2.0, 1.0]]))
>>> span.low.tolist(), span.high.tolist()
([0.0, -1.0], [2.0, 1.0])
>>> span.excess(torch.tensor([[1.0, 0.0], [5.0, -3.0]])).tolist()
[[0.0, 0.0], [3.0, 2.0]]
>>> TrainingRange.from_dict(span.to_dict(), 2).high.tolist()
[2.0, 1.0]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from seismo.models.errors import ArtifactError


@dataclass(frozen=True, eq=False)
class TrainingRange:
    """Each standardised feature's lowest and highest value over the training rows.

    Attributes
    ----------
    low, high : torch.Tensor
        Shape ``(d,)``, float32, ``low <= high``, on the detector's device.
    """

    low: torch.Tensor
    high: torch.Tensor

    @classmethod
    def fit(cls, scaled: torch.Tensor) -> TrainingRange:
        """The range of ``(n, d)`` standardised training rows, ``n >= 1``."""
        rows = scaled.float()
        return cls(rows.amin(dim=0).contiguous(), rows.amax(dim=0).contiguous())

    def to(self, device: torch.device) -> TrainingRange:
        """The same range on ``device``."""
        return TrainingRange(self.low.to(device), self.high.to(device))

    def raw(self, mean: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The range in the data's own units, for the scaler's ``mean`` and ``scale``."""
        low = self.low.cpu().double().numpy() * scale + mean
        high = self.high.cpu().double().numpy() * scale + mean
        return low, high

    def covering(self, low: np.ndarray, high: np.ndarray, mean: np.ndarray,
                 scale: np.ndarray) -> TrainingRange:  # fmt: skip
        """This range widened to cover raw bounds ``low``/``high`` (in this scaler's units).

        >>> span = TrainingRange(torch.tensor([-1.0]), torch.tensor([1.0]))
        >>> wide = span.covering(np.array([5.0]), np.array([20.0]), np.array([10.0]),
        ...                      np.array([2.0]))
        >>> wide.low.tolist(), wide.high.tolist()
        ([-2.5], [5.0])
        """
        other_low = torch.from_numpy(((low - mean) / scale).astype(np.float32))
        other_high = torch.from_numpy(((high - mean) / scale).astype(np.float32))
        return TrainingRange(torch.minimum(self.low, other_low.to(self.low.device)),
                             torch.maximum(self.high, other_high.to(self.high.device)))

    def left_out_excess(self, rows: torch.Tensor, left_out: TrainingRange) -> torch.Tensor:
        """`excess` of training ``rows`` as if each were left out of the rows the range was
        fitted on: where a row's value is this range's bound, it is judged against
        ``left_out`` (`leaving_one_out`, widened as this range was). So the range term of
        training scores is not biased low against unseen rows (the ``--contamination``
        quantile), as the neighbour term leaves a row out of its own reference.

        >>> fitted = torch.tensor([[0.0], [1.0], [3.0]])
        >>> span = TrainingRange.fit(fitted)
        >>> span.left_out_excess(fitted, span.leaving_one_out(fitted)).tolist()
        [[1.0], [0.0], [2.0]]
        >>> twice = torch.tensor([[0.0], [0.0], [3.0]])  # a bound two rows hold stays
        >>> span = TrainingRange.fit(twice)
        >>> span.left_out_excess(twice, span.leaving_one_out(twice)).tolist()
        [[0.0], [0.0], [3.0]]
        """
        rows = rows.float()
        below = torch.where(rows == self.low, (left_out.low - rows).clamp(min=0.0), 0.0)
        above = torch.where(rows == self.high, (rows - left_out.high).clamp(min=0.0), 0.0)
        return self.excess(rows) + below + above

    def leaving_one_out(self, fitted: torch.Tensor) -> TrainingRange:
        """The range of the ``fitted`` rows (this range's) without the one row that alone
        sets a bound: per feature, the next lowest (highest) value there, the bound
        itself where two rows share it.

        >>> TrainingRange.fit(torch.tensor([[0.0], [1.0], [3.0]])).leaving_one_out(
        ...     torch.tensor([[0.0], [1.0], [3.0]])).high.tolist()
        [1.0]
        """
        fitted = fitted.float()
        if len(fitted) < 2:
            return self
        lowest = fitted.topk(2, dim=0, largest=False).values  # (2, d), ascending
        highest = fitted.topk(2, dim=0, largest=True).values  # (2, d), descending
        return TrainingRange(lowest[1].contiguous(), highest[1].contiguous())

    def excess(self, rows: torch.Tensor) -> torch.Tensor:
        """``(m, d)``: how far each standardised value lies outside its feature's range
        (0 inside it)."""
        return (rows - self.high).clamp(min=0.0) + (self.low - rows).clamp(min=0.0)

    def to_dict(self) -> dict[str, Any]:
        """What ``config.json`` keeps."""
        return {"low": self.low.cpu().tolist(), "high": self.high.cpu().tolist()}

    @classmethod
    def from_dict(cls, data: Any, n_features: int) -> TrainingRange:
        """Rebuild from `to_dict` output; raises `ArtifactError` if it does not fit."""
        try:
            low = np.array(data["low"], dtype=np.float32)
            high = np.array(data["high"], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"training_range: invalid section: {exc}") from exc
        problem = bounds_problem(low, high, n_features)
        if problem is not None:
            raise ArtifactError(f"training_range: {problem}")
        return cls(torch.from_numpy(low), torch.from_numpy(high))


def bounds_problem(low: np.ndarray, high: np.ndarray, n_features: int) -> str | None:
    """What is wrong with ``low``/``high`` as the bounds of ``n_features`` features, if
    anything (the artifact's section, or a reference range the retrainer carries on).

    >>> bounds_problem(np.array([0.0]), np.array([1.0]), 1) is None
    True
    >>> bounds_problem(np.array([1.0]), np.array([0.0]), 1)
    'needs finite bounds with low <= high'
    """
    if low.shape != (n_features,) or high.shape != (n_features,):
        return (f"low and high must hold {n_features} numbers each, got {low.shape} and "
                f"{high.shape}")  # fmt: skip
    if not (np.isfinite(low).all() and np.isfinite(high).all()) or (low > high).any():
        return "needs finite bounds with low <= high"
    return None
