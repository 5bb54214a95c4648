"""Per-feature standardisation fitted on training rows and stored in the artifact.

Examples
--------
>>> import numpy as np
>>> x = np.array([[1.0, 10.0], [3.0, 10.0]])
>>> s = StandardScaler.fit(x)
>>> s.mean.tolist(), s.scale.tolist()
([2.0, 10.0], [1.0, 1.0])
>>> s.transform(x)
array([[-1.,  0.],
       [ 1.,  0.]], dtype=float32)
>>> s.inverse_transform(s.transform(x)).tolist()
[[1.0, 10.0], [3.0, 10.0]]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from seismo.models.errors import DataError


def _frozen_vector(name: str, values: Any) -> np.ndarray:
    try:
        vector = np.array(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"scaler {name} must be numeric: {exc}") from exc
    if vector.ndim != 1 or vector.size == 0:
        raise DataError(f"scaler {name} must be a non-empty 1-D vector, got shape {vector.shape}")
    if not np.all(np.isfinite(vector)):
        raise DataError(f"scaler {name} contains NaN or Inf")
    vector.setflags(write=False)
    return vector


def _as_matrix(x: Any, n_features: int | None = None) -> np.ndarray:
    """View ``x`` as a float64 array of shape (n, d), copying only when the dtype differs."""
    try:
        array = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"expected a numeric array of shape (n, d): {exc}") from exc
    if array.ndim != 2:
        raise DataError(f"expected a 2-D array of shape (n, d), got shape {array.shape}")
    if n_features is not None and array.shape[1] != n_features:
        raise DataError(f"expected {n_features} features per row, got {array.shape[1]}")
    return array


@dataclass(frozen=True, eq=False)
class StandardScaler:
    """Subtract a per-feature mean and divide by a per-feature scale.

    Both vectors are stored as read-only float64 arrays of shape ``(d,)``.
    Equality is identity (arrays have no single truth value); compare the
    vectors or `to_dict` output instead.

    Parameters
    ----------
    mean : numpy.ndarray
        Shape ``(d,)``.
    scale : numpy.ndarray
        Shape ``(d,)``, strictly positive.
    """

    mean: np.ndarray
    scale: np.ndarray

    def __post_init__(self) -> None:
        mean = _frozen_vector("mean", self.mean)
        scale = _frozen_vector("scale", self.scale)
        if mean.shape != scale.shape:
            raise DataError(f"scaler mean {mean.shape} and scale {scale.shape} differ in shape")
        if np.any(scale <= 0):
            raise DataError("scaler scale must be strictly positive")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "scale", scale)

    @property
    def n_features(self) -> int:
        """Number of features ``d``."""
        return int(self.mean.shape[0])

    @classmethod
    def fit(cls, x: np.ndarray, floor: float = 0.0) -> StandardScaler:
        """Fit mean and population standard deviation (ddof=0) of each column.

        A constant column gets scale 1.0 (or its floor, below), so it maps to
        0 instead of dividing by zero (or by rounding noise).

        Parameters
        ----------
        x : numpy.ndarray
            Shape ``(n, d)`` with ``n >= 1``, finite values.
        floor : float
            Smallest scale of a column, as a share of its mean's magnitude:
            ``scale = max(std, floor * |mean|)``. A sensor that barely moved
            while the scaler was fitted (a temperature over a few minutes)
            otherwise turns a drift well inside its normal range into many
            standard deviations. 0 (the default) keeps the plain std.

        Returns
        -------
        StandardScaler

        Examples
        --------
        >>> x = np.array([[24.00, 1.0], [24.02, 3.0]])   # 0.01 std at 24, 1.0 std at 2
        >>> StandardScaler.fit(x).scale.round(3).tolist()
        [0.01, 1.0]
        >>> StandardScaler.fit(x, floor=0.01).scale.round(3).tolist()
        [0.24, 1.0]
        """
        if not np.isfinite(floor) or floor < 0:
            raise DataError(f"scaler floor must be a number >= 0, got {floor!r}")
        array = _as_matrix(x)
        if array.shape[0] == 0 or array.shape[1] == 0:
            raise DataError(f"cannot fit a scaler on an empty array of shape {array.shape}")
        if not np.all(np.isfinite(array)):
            raise DataError("cannot fit a scaler on data with NaN or Inf")
        mean = array.mean(axis=0)
        std = np.where(np.ptp(array, axis=0) == 0, 0.0, array.std(axis=0))
        scale = np.maximum(std, floor * np.abs(mean))
        scale[scale == 0] = 1.0
        return cls(mean=mean, scale=scale)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Standardise rows; returns a new float32 array of shape ``(n, d)``.

        The input is never modified.
        """
        array = _as_matrix(x, self.n_features)
        return ((array - self.mean) / self.scale).astype(np.float32)

    def inverse_transform(self, z: np.ndarray) -> np.ndarray:
        """Map standardised rows back to original units (float64, shape ``(n, d)``)."""
        array = _as_matrix(z, self.n_features)
        return array * self.scale + self.mean

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"mean": [...], "scale": [...]}`` with plain Python floats."""
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StandardScaler:
        """Rebuild a scaler from `to_dict` output.

        Examples
        --------
        >>> StandardScaler.from_dict({"mean": [0.0], "scale": [2.0]}).scale
        array([2.])
        """
        try:
            return cls(mean=data["mean"], scale=data["scale"])
        except KeyError as exc:
            raise DataError(f"scaler is missing {exc.args[0]!r}") from exc


SCALINGS: tuple[str, ...] = ("standard", "minmax", "none")
"""How `fit_scaler` maps features: zero mean/unit variance, onto [0, 1], or as is."""


def fit_scaler(x: np.ndarray, scaling: str = "standard", floor: float = 0.0) -> StandardScaler:
    """Fit a scaler of the given kind; every kind is a `StandardScaler` (mean, scale).

    ``minmax`` maps the training range onto [0, 1] (for sigmoid outputs and
    binary cross-entropy); ``none`` leaves values unchanged (pixels in [0, 1]).
    ``floor`` applies to ``standard`` only (see `StandardScaler.fit`).

    Examples
    --------
    >>> x = np.array([[0.0, 10.0], [2.0, 30.0]])
    >>> fit_scaler(x, "minmax").transform(x).tolist()
    [[0.0, 0.0], [1.0, 1.0]]
    >>> fit_scaler(x, "none").transform(x).tolist()
    [[0.0, 10.0], [2.0, 30.0]]
    """
    if scaling == "standard":
        return StandardScaler.fit(x, floor)
    array = _as_matrix(x)
    if scaling == "minmax":
        low, span = array.min(axis=0), np.ptp(array, axis=0)
        return StandardScaler(mean=low, scale=np.where(span > 0, span, 1.0))
    if scaling == "none":
        return StandardScaler(mean=np.zeros(array.shape[1]), scale=np.ones(array.shape[1]))
    raise DataError(f"scaling {scaling!r} is not one of: {', '.join(SCALINGS)}")
