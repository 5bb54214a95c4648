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
        if low.shape != (n_features,) or high.shape != (n_features,):
            raise ArtifactError(
                f"training_range: low and high must hold {n_features} numbers each, got "
                f"{low.shape} and {high.shape}"
            )
        if not (np.isfinite(low).all() and np.isfinite(high).all()) or (low > high).any():
            raise ArtifactError("training_range: needs finite bounds with low <= high")
        return cls(torch.from_numpy(low), torch.from_numpy(high))
