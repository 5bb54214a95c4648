"""The scoring wrapper: scaler + autoencoder + device behind one batch contract.

`AutoencoderDetector.score_batch` maps rows ``(n, d)`` to scores ``(n,)``;
**higher = more anomalous** (mean squared reconstruction error in
standardised units).

Examples
--------
>>> import numpy as np
>>> from models.config import DenseConfig
>>> from models.dense import DenseAutoencoder
>>> from models.scaler import StandardScaler
>>> x = np.random.default_rng(0).normal(size=(5, 4))
>>> cfg = DenseConfig(n_features=4, hidden=(3, 2))
>>> det = AutoencoderDetector(DenseAutoencoder(cfg), StandardScaler.fit(x), config=cfg)
>>> det.score_batch(x).shape, det.feature_errors(x).shape
((5,), (5, 4))
>>> det.score_batch(np.empty((0, 4))).shape
(0,)
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from models.device import select_device, to_device
from models.errors import DataError, SeismoError
from models.registry import ModelConfig
from models.scaler import StandardScaler

SCORES: tuple[str, ...] = ("mse", "mae", "elbo")
"""How a row's score is formed: mean squared or absolute error over features, or
MSE plus the module's `~models.base.Autoencoder.row_penalty` (a VAE's KL term)."""

CHUNK_ROWS = 65536
"""Default rows per forward pass; bounds device memory for very large inputs."""


class AutoencoderDetector:
    """Score rows by how badly an autoencoder reconstructs them.

    The detector owns the device placement and the scaling; the module is
    pure architecture. Scoring always runs ``module.eval()`` under
    `torch.inference_mode`, never mutates its input, and processes at most
    ``chunk_rows`` rows per forward pass.

    Parameters
    ----------
    module : torch.nn.Module
        A trained autoencoder mapping ``(m, d)`` to ``(m, d)``.
    scaler : StandardScaler
        Standardisation fitted on the training rows.
    config : ModelConfig
        The module's config; ``config.arch`` names its architecture.
    device : torch.device or str
        Where to run; strings go through `models.device.select_device`.
    chunk_rows : int
        Rows per forward pass.
    """

    def __init__(
        self,
        module: nn.Module,
        scaler: StandardScaler,
        *,
        config: ModelConfig,
        device: torch.device | str = "cpu",
        chunk_rows: int = CHUNK_ROWS,
    ) -> None:
        if scaler.n_features != config.n_features:
            raise DataError(
                f"scaler has {scaler.n_features} features but the model config has "
                f"{config.n_features}"
            )
        if chunk_rows < 1:
            raise SeismoError(f"chunk_rows must be positive, got {chunk_rows}")
        self.device = device if isinstance(device, torch.device) else select_device(device)
        self.module = module.to(self.device).eval()
        self.scaler = scaler
        self.config = config
        self.chunk_rows = chunk_rows
        self.score_kind: str = getattr(config, "score", "mse")
        if self.score_kind not in SCORES:
            raise SeismoError(f"score {self.score_kind!r} is not one of: {', '.join(SCORES)}")

    @property
    def arch(self) -> str:
        """Architecture name recorded in artifacts, e.g. ``"dense"``."""
        return self.config.arch

    @property
    def n_features(self) -> int:
        """Number of input features ``d``."""
        return self.config.n_features

    def feature_errors(self, x: np.ndarray) -> np.ndarray:
        """Squared reconstruction error per feature, in standardised units.

        Parameters
        ----------
        x : numpy.ndarray
            Shape ``(n, d)``, finite values; not modified.

        Returns
        -------
        numpy.ndarray
            Shape ``(n, d)``, float32, non-negative; larger = worse fit.
        """
        return self.score_with_features(x)[1]

    def score_batch(self, x: np.ndarray) -> np.ndarray:
        """Anomaly score per row: mean squared (or absolute, see `SCORES`) error.

        Parameters
        ----------
        x : numpy.ndarray
            Shape ``(n, d)``, finite values; not modified. ``n`` may be 0.

        Returns
        -------
        numpy.ndarray
            Shape ``(n,)``, float32, non-negative; **higher = more anomalous**.
        """
        return self._run(x, with_features=False)[0]

    def score_with_features(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(score_batch(x), feature_errors(x))`` from one forward pass."""
        scores, errors = self._run(x, with_features=True)
        assert errors is not None
        return scores, errors

    def _validate(self, x: np.ndarray) -> np.ndarray:
        try:
            array = np.asarray(x)
        except (TypeError, ValueError) as exc:
            raise DataError(f"cannot score input: {exc}") from exc
        if array.ndim != 2 or array.shape[1] != self.n_features:
            raise DataError(
                f"expected rows of shape (n, {self.n_features}), got shape {array.shape}"
            )
        if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
            raise DataError(f"expected real numeric rows, got dtype {array.dtype}")
        finite = np.isfinite(array).all(axis=1)
        if not finite.all():
            first = int(np.argmin(finite))
            raise DataError(f"row {first} (of {len(array)}) contains NaN or Inf")
        return array

    def _run(self, x: np.ndarray, *, with_features: bool) -> tuple[np.ndarray, np.ndarray | None]:
        array = self._validate(x)
        n = array.shape[0]
        scores = np.empty(n, dtype=np.float32)
        errors = np.empty((n, self.n_features), dtype=np.float32) if with_features else None
        self.module.eval()
        with torch.inference_mode():
            for start in range(0, n, self.chunk_rows):
                stop = min(start + self.chunk_rows, n)
                batch = to_device(self.scaler.transform(array[start:stop]), self.device)
                per_feature, rows = self._errors(batch)
                scores[start:stop] = rows.cpu().numpy()
                if errors is not None:
                    errors[start:stop] = per_feature.cpu().numpy()
        return scores, errors

    def _errors(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-feature errors ``(m, d)`` and row scores ``(m,)`` of one standardised chunk."""
        diff = self.module(batch) - batch
        per_feature = diff.abs() if self.score_kind == "mae" else diff.square()
        rows = per_feature.mean(dim=1)
        if self.score_kind == "elbo":
            penalty = getattr(self.module, "row_penalty", lambda _x: None)(batch)
            if penalty is not None:
                rows = rows + penalty
        return per_feature, rows
