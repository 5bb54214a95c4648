"""What a detector makes of rows: bottleneck codes, reconstructions, 2-D views.

The inputs of an evaluation report. Everything runs ``module.eval()`` under
`torch.inference_mode` on scaled rows, in chunks of ``detector.chunk_rows``.

Examples
--------
>>> import numpy as np
>>> from seismo.models.config import DenseConfig
>>> from seismo.models.nets.dense import DenseAutoencoder
>>> from seismo.models.detector import AutoencoderDetector
>>> from seismo.models.scaler import StandardScaler
>>> x = np.random.default_rng(0).normal(size=(6, 4))
>>> cfg = DenseConfig(n_features=4, hidden=(3, 3))
>>> det = AutoencoderDetector(DenseAutoencoder(cfg), StandardScaler.fit(x), config=cfg)
>>> latent_codes(det, x).shape, reconstruct(det, x).shape
((6, 3), (6, 4))
>>> pca_2d(latent_codes(det, x))[0].shape
(6, 2)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seismo.models.detector import AutoencoderDetector
from seismo.models.errors import DataError


def _nonempty(x: np.ndarray) -> np.ndarray:
    array = np.asarray(x, dtype=np.float64)
    if array.ndim == 2 and not len(array):
        raise DataError("no rows to encode or reconstruct")
    return array


def latent_codes(detector: AutoencoderDetector, x: np.ndarray) -> np.ndarray:
    """Bottleneck codes ``(n, k)`` of rows ``(n, d)``: ``module.encode(scaled x)``.

    Codes of more than two dimensions per row (e.g. convolutional feature
    maps) are flattened to ``k`` columns.
    """
    return detector.map_rows(_nonempty(x), detector.module.encode)


def reconstruct(detector: AutoencoderDetector, x: np.ndarray) -> np.ndarray:
    """Reconstructions of rows ``(n, d)`` in the original units (float64)."""
    scaled = detector.map_rows(_nonempty(x), detector.module)
    return detector.scaler.inverse_transform(scaled)


def pca_2d(codes: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """Project codes ``(n, k)`` onto their top two principal axes.

    Returns the ``(n, 2)`` projection and the share of variance on each axis.
    Codes of width 2 are only centred; width 1 gets a zero second column.

    >>> xy, share = pca_2d(np.array([[0.0, 0, 0], [2, 0, 0], [0, 1, 0], [2, 1, 0]]))
    >>> np.abs(xy).round(2).tolist(), share
    ([[1.0, 0.5], [1.0, 0.5], [1.0, 0.5], [1.0, 0.5]], (0.8, 0.2))
    """
    centred = np.asarray(codes, dtype=np.float64)
    centred = centred - centred.mean(axis=0)
    total = float((centred**2).sum()) or 1.0
    if centred.shape[1] <= 2:
        xy = np.pad(centred, ((0, 0), (0, 2 - centred.shape[1])))
    else:
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        xy = centred @ vt[:2].T
    share = (xy**2).sum(axis=0) / total
    return xy, (float(share[0]), float(share[1]))


def extremes(scores: np.ndarray, y: np.ndarray, label: int, count: int) -> tuple[np.ndarray, ...]:
    """Row indices of the ``count`` best- and worst-reconstructed rows labelled ``label``.

    Best = lowest score first; worst = highest score first.

    >>> best, worst = extremes(np.array([5.0, 1, 3, 9, 2]), np.array([0, 0, 1, 0, 0]), 0, 2)
    >>> best.tolist(), worst.tolist()
    ([1, 4], [3, 0])
    """
    rows = np.flatnonzero(np.asarray(y) == label)
    ordered = rows[np.argsort(np.asarray(scores)[rows], kind="mergesort")]
    return ordered[:count], ordered[::-1][:count]


def image_shape(n_features: int, given: str | None) -> tuple[int, int] | None:
    """The (height, width) of image rows: ``given`` as ``"HxW"``, or 28x28 for 784 features.

    >>> image_shape(784, None), image_shape(64, "8x8"), image_shape(10, None)
    ((28, 28), (8, 8), None)
    >>> image_shape(64, "9x9")
    Traceback (most recent call last):
    ...
    seismo.models.errors.DataError: image shape 9x9 has 81 pixels but rows have 64 features
    """
    if given is None:
        return (28, 28) if n_features == 784 else None
    height, sep, width = given.lower().partition("x")
    if not (sep and height.isdigit() and width.isdigit()) or int(height) * int(width) == 0:
        raise DataError(f"image shape must look like 28x28, got {given!r}")
    shape = (int(height), int(width))
    if shape[0] * shape[1] != n_features:
        raise DataError(
            f"image shape {given} has {shape[0] * shape[1]} pixels but rows have "
            f"{n_features} features"
        )
    return shape


@dataclass(frozen=True, eq=False)
class Gallery:
    """Image-shaped rows picked for a report, in original units.

    ``panels`` maps a caption (e.g. ``"anomaly (1), worst"``) to
    ``(originals (m, d), reconstructions (m, d), scores (m,))``.
    """

    shape: tuple[int, int]
    panels: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]


def build_gallery(
    detector: AutoencoderDetector,
    x: np.ndarray,
    y: np.ndarray,
    scores: np.ndarray,
    shape: tuple[int, int],
    count: int = 8,
) -> Gallery:
    """The ``count`` best- and worst-reconstructed rows of each class, reconstructed.

    ``x`` (n, d), labels ``y`` (n,) in {0, 1}, scores (n,), higher = worse.
    """
    panels = {}
    for label, name in ((0, "normal (0)"), (1, "anomaly (1)")):
        for which, rows in zip(("best", "worst"), extremes(scores, y, label, count), strict=True):
            if len(rows):
                originals = np.asarray(x, dtype=np.float64)[rows]
                panels[f"{name}, {which}"] = (
                    originals, reconstruct(detector, originals), np.asarray(scores)[rows]
                )
    return Gallery(shape=shape, panels=panels)
