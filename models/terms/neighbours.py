"""A k-nearest-neighbour term beside the reconstruction error (issue 20, tabular).

An autoencoder misses outliers that lie near its learnt manifold but far
from every training row (ODDS ``vowels``, ``letter``); the distance to the
k-th nearest training row sees them. A detector with :class:`Neighbours`
scores a row as

    error / median training error + distance² / median training distance²

both terms squared distances in the standardised space, each divided by
its median over the training rows, so neither dominates by its units and
the score stays positive (the rolling threshold and the device rule take
its logarithm). The reference is a fixed random sample of at most
``rows`` standardised training rows; scoring a batch costs one
``(batch, rows)`` matrix product and a top-k.

>>> import torch
>>> reference = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
>>> near = Neighbours(reference, k=1, error_median=2.0, distance_median=1.0)
>>> rows = torch.tensor([[0.0, 0.1], [3.0, 4.0]])
>>> [round(v, 4) for v in near.squared_distances(rows).tolist()]
[0.01, 18.0]
>>> [round(v, 4) for v in near.combine(torch.tensor([2.0, 2.0]), rows).tolist()]
[1.01, 19.0]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from seismo.models.errors import ArtifactError

#: Key of the reference rows in the artifact's safetensors file.
REFERENCE_KEY = "neighbours.reference"
#: Smallest median a term is divided by (a training set of identical rows).
MEDIAN_FLOOR = 1e-12
#: Smallest distance median, as a share of the reference rows' mean squared norm: with
#: many repeated rows (whole-number readings, a stuck sensor) most k-th distances are 0,
#: and the float32 rounding of ``|a|² + |b|² - 2ab`` must not become the scale.
RELATIVE_DISTANCE_FLOOR = 1e-3
#: Rows per distance block: bounds the (block, rows) matrix on the device.
BLOCK_ROWS = 4096


@dataclass(frozen=True, eq=False)
class Neighbours:
    """The reference rows and the two medians that put both terms on one scale.

    Attributes
    ----------
    reference : torch.Tensor
        ``(m, d)`` standardised training rows, float32, on the detector's device.
    k : int
        The distance is to the k-th nearest reference row.
    error_median, distance_median : float
        Medians over the training rows of the reconstruction error and of the
        squared k-th neighbour distance (a reference row not counting itself).
    """

    reference: torch.Tensor
    k: int
    error_median: float
    distance_median: float
    _ref_norms: torch.Tensor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # the reference's squared norms, once: every scored batch needs them
        object.__setattr__(self, "_ref_norms", self.reference.square().sum(dim=1))

    def to(self, device: torch.device) -> Neighbours:
        """The same neighbours with the reference on ``device``."""
        return Neighbours(self.reference.to(device), self.k, self.error_median,
                          self.distance_median)  # fmt: skip

    def squared_distances(self, rows: torch.Tensor, skip_self: bool = False) -> torch.Tensor:
        """Squared distance of each standardised row to its k-th nearest reference row
        (with ``skip_self``, the ``k + 1``-th: the row itself is in the reference)."""
        return self._nearest(rows, self.k + (1 if skip_self else 0))[:, -1]

    def _nearest(self, rows: torch.Tensor, count: int) -> torch.Tensor:
        """The ``count`` smallest squared distances of each row, ascending."""
        ref, ref_norms = self.reference, self._ref_norms
        count = min(count, len(ref))
        out = []
        for block in rows.split(BLOCK_ROWS):
            d2 = torch.addmm(ref_norms[None, :], block, ref.T, alpha=-2.0)
            d2.add_(block.square().sum(dim=1, keepdim=True)).clamp_(min=0.0)
            out.append(d2.topk(count, dim=1, largest=False, sorted=True).values)
        return torch.cat(out) if out else rows.new_zeros((0, count))

    def combine(self, errors: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """The row score: both terms over their training medians, added."""
        distance = self.squared_distances(rows) / self.distance_median
        return errors / self.error_median + distance

    def to_dict(self) -> dict[str, Any]:
        """What ``config.json`` keeps (the reference rows go to the weights file)."""
        return {"k": self.k, "rows": int(self.reference.shape[0]),
                "error_median": self.error_median,
                "distance_median": self.distance_median}  # fmt: skip

    @classmethod
    def from_parts(cls, meta: Any, reference: torch.Tensor | None, n_features: int) -> Neighbours:
        """Rebuild from ``config.json``'s section and the weights file's reference rows."""
        if not isinstance(meta, dict) or reference is None:
            raise ArtifactError("neighbours: config section and reference rows must come together")
        try:
            k, rows = meta["k"], meta["rows"]
            medians = float(meta["error_median"]), float(meta["distance_median"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"neighbours: invalid section {meta!r}") from exc
        if not all(type(v) is int for v in (k, rows)):
            raise ArtifactError(f"neighbours: k and rows must be integers, got {k!r}, {rows!r}")
        if not bool(torch.isfinite(reference).all()):
            raise ArtifactError("neighbours: the reference rows hold NaN or Inf")
        if reference.shape != (rows, n_features) or not 1 <= k <= rows:
            raise ArtifactError(
                f"neighbours: reference of shape {tuple(reference.shape)}, expected "
                f"({rows}, {n_features}) and 1 <= k <= rows"
            )
        if not all(np.isfinite(m) and m > 0 for m in medians):
            raise ArtifactError(f"neighbours: medians must be positive, got {medians}")
        return cls(reference.float().contiguous(), k, *medians)


def fit_neighbours(
    scaled: torch.Tensor, errors: torch.Tensor, rows: int, k: int, rng: np.random.Generator
) -> tuple[Neighbours, torch.Tensor] | None:
    """Sample the reference from ``scaled`` training rows, take both medians, and score them.

    ``errors`` are the reconstruction errors of the same rows. Returns the term
    and the training rows' combined scores, a reference row not counting itself
    as its own neighbour (so a ``--contamination`` quantile of them is not biased
    low); ``None`` when there are too few rows for ``k`` neighbours besides a row.

    >>> rows = torch.tensor([[0.0], [1.0], [2.0], [4.0]])
    >>> near, scores = fit_neighbours(rows, torch.ones(4), rows=3, k=1,
    ...                               rng=np.random.default_rng(0))
    >>> near.reference.shape[0], near.error_median, scores.shape
    (3, 1.0, torch.Size([4]))
    >>> fit_neighbours(rows, torch.ones(4), rows=1, k=1, rng=np.random.default_rng(0)) is None
    True
    >>> same = torch.ones(50, 3)  # identical rows: the scale is not rounding noise
    >>> near, _ = fit_neighbours(same, torch.ones(50), rows=20, k=5, rng=np.random.default_rng(0))
    >>> near.distance_median
    0.003
    """
    n = len(scaled)
    size = min(rows, n)
    if size < k + 1:
        return None
    chosen = torch.from_numpy(np.sort(rng.choice(n, size=size, replace=False))).to(scaled.device)
    in_reference = torch.zeros(n, dtype=torch.bool, device=scaled.device)
    in_reference[chosen] = True
    reference = scaled[chosen].float().contiguous()
    nearest = Neighbours(reference, k, 1.0, 1.0)._nearest(scaled, k + 1)  # one pass for both
    distances = torch.where(in_reference, nearest[:, -1], nearest[:, k - 1])
    floor = RELATIVE_DISTANCE_FLOOR * float(reference.square().sum(dim=1).mean())
    near = Neighbours(reference, k, max(float(errors.float().median()), MEDIAN_FLOOR),
                      max(float(distances.median()), floor, MEDIAN_FLOOR))  # fmt: skip
    return near, errors / near.error_median + distances / near.distance_median
