"""The scoring wrapper: scaler + autoencoder + device behind one batch contract.

`AutoencoderDetector.score_batch` maps rows ``(n, d)`` to scores ``(n,)``;
**higher = more anomalous** (mean squared reconstruction error in
standardised units; with a `~seismo.models.terms.training_range.TrainingRange`, plus
each feature's distance beyond its training range; with a
`~seismo.models.terms.neighbours.Neighbours` term, that error and the k-th neighbour
distance, each over its training median).

Examples
--------
>>> import numpy as np
>>> from seismo.models.config import DenseConfig
>>> from seismo.models.nets.dense import DenseAutoencoder
>>> from seismo.models.scaler import StandardScaler
>>> x = np.random.default_rng(0).normal(size=(5, 4))
>>> cfg = DenseConfig(n_features=4, hidden=(3, 2))
>>> det = AutoencoderDetector(DenseAutoencoder(cfg), StandardScaler.fit(x), config=cfg)
>>> det.score_batch(x).shape, det.feature_errors(x).shape
((5,), (5, 4))
>>> det.score_batch(np.empty((0, 4))).shape
(0,)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from seismo.models.device import select_device, to_device
from seismo.models.errors import DataError, SeismoError
from seismo.models.nets.architectures import ModelConfig
from seismo.models.nets.base import Autoencoder
from seismo.models.scaler import StandardScaler
from seismo.models.staging import HostStaging
from seismo.models.terms.neighbours import Neighbours
from seismo.models.terms.training_range import TrainingRange

SCORES: tuple[str, ...] = ("mse", "mae", "elbo")
"""How a row's score is formed: mean squared or absolute error over features, or
MSE plus the module's `~seismo.models.nets.base.Autoencoder.row_penalty` (a VAE's KL term)."""

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
    module : seismo.models.nets.base.Autoencoder
        A trained autoencoder mapping ``(m, d)`` to ``(m, d)``.
    scaler : StandardScaler
        Standardisation fitted on the training rows.
    config : ModelConfig
        The module's config; ``config.arch`` names its architecture.
    device : torch.device or str
        Where to run; strings go through `seismo.models.device.select_device`.
    chunk_rows : int
        Rows per forward pass.
    staging : bool or None
        Copy batches through one reused (pinned) host buffer with asynchronous
        copies (:class:`~seismo.models.staging.HostStaging`); default: on CUDA only.
    neighbours : Neighbours or None
        A k-nearest-neighbour term added to each row's score
        (:mod:`seismo.models.terms.neighbours`); it is not split by feature.
    training_range : TrainingRange or None
        Each feature's training range: the squared distance of a value beyond
        it (the distance, for a ``mae`` score) is added to that feature's error
        (:mod:`seismo.models.terms.training_range`).
    """

    def __init__(
        self,
        module: Autoencoder,
        scaler: StandardScaler,
        *,
        config: ModelConfig,
        device: torch.device | str = "cpu",
        chunk_rows: int = CHUNK_ROWS,
        staging: bool | None = None,
        neighbours: Neighbours | None = None,
        training_range: TrainingRange | None = None,
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
        use_staging = self.device.type == "cuda" if staging is None else staging
        self.staging = HostStaging(self.device) if use_staging else None
        self.neighbours = None if neighbours is None else neighbours.to(self.device)
        if training_range is not None and training_range.low.shape != (config.n_features,):
            raise DataError(
                f"training range has {tuple(training_range.low.shape)} features but the model "
                f"config has {config.n_features}"
            )
        self.training_range = (None if training_range is None
                               else training_range.to(self.device))  # fmt: skip
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
        """Squared reconstruction error per feature, in standardised units (absolute,
        for a ``mae`` score), plus the range term's share where the detector has one.

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
        """Anomaly score per row: mean squared (or absolute, see `SCORES`) error, with
        the range and neighbour terms when the detector has them.

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

    def map_rows(
        self,
        x: np.ndarray,
        fn: Callable[[torch.Tensor], torch.Tensor],
        width: int | None = None,
    ) -> np.ndarray:
        """Apply ``fn`` to the scaled rows of ``x`` in chunks, in eval mode, without gradients.

        Parameters
        ----------
        x : numpy.ndarray
            Shape ``(n, d)``, finite values; not modified.
        fn : callable
            Maps a scaled chunk ``(m, d)`` on the device to ``(m, ...)``; each
            output row is flattened.
        width : int, optional
            Columns of the result, required only when ``n`` may be 0.

        Returns
        -------
        numpy.ndarray
            Shape ``(n, width)``, float32.
        """
        array = self._validate(x)
        n = len(array)
        out = None if width is None else np.empty((n, width), dtype=np.float32)
        self.module.eval()
        with torch.inference_mode():
            for start in range(0, n, self.chunk_rows):
                stop = min(start + self.chunk_rows, n)
                chunk = fn(self._to_device(self.scaler.transform(array[start:stop])))
                values = chunk.reshape(stop - start, -1).float().cpu().numpy()
                if out is None:
                    out = np.empty((n, values.shape[1]), dtype=np.float32)
                out[start:stop] = values
        return np.empty((0, 0), dtype=np.float32) if out is None else out

    def _to_device(self, rows: np.ndarray) -> torch.Tensor:
        if self.staging is not None:
            return self.staging.stage(rows)
        return to_device(rows, self.device)

    def _run(self, x: np.ndarray, *, with_features: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Row scores and, if asked, per-feature errors: one forward pass per chunk."""

        def chunk(batch: torch.Tensor) -> torch.Tensor:
            per_feature, rows = self._errors(batch)
            if self.neighbours is not None:
                rows = self.neighbours.combine(rows, batch.float())
            return torch.cat([rows[:, None], per_feature], dim=1) if with_features else rows

        out = self.map_rows(x, chunk, width=1 + self.n_features if with_features else 1)
        scores = np.ascontiguousarray(out[:, 0])
        return scores, (np.ascontiguousarray(out[:, 1:]) if with_features else None)

    def _errors(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-feature errors ``(m, d)`` and row scores ``(m,)`` of one standardised chunk."""
        diff = self.module(batch) - batch
        per_feature = diff.abs() if self.score_kind == "mae" else diff.square()
        if self.training_range is not None:
            beyond = self.training_range.excess(batch)
            per_feature = per_feature + (beyond if self.score_kind == "mae" else beyond.square())
        rows = per_feature.mean(dim=1)
        if self.score_kind == "elbo":
            penalty = self.module.row_penalty(batch)
            if penalty is not None:
                rows = rows + penalty
        return per_feature, rows
