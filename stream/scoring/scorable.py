"""Keep non-finite numbers out of the math: which events the model can score.

A value that is finite in float32 can still overflow once standardised and
squared (``3e38`` with a scale below 1): its score is Inf or NaN, and
``NaN > threshold`` is false, so such an event would be neither flagged nor
kept out of the shared statistics, and one message would blind every scorer
of a model version. Two checks stop that, both pure:

- :func:`representable`, before scoring (and before a reading enters a
  device's window, where it would spoil every window it is part of): each
  value, standardised with the scaler's mean and scale, must square to a
  finite float32;
- :func:`finite_rows`, after scoring: the score and every per-feature error
  must be finite (a network can still overflow on finite inputs).

An event that fails either goes to the dead-letter topic with the reason
:data:`NOT_FINITE` and is never thresholded, learned or retrained on.

Examples
--------
>>> mean, scale = np.zeros(2), np.array([1.0, 0.5])
>>> representable(np.array([[1.0, 2.0], [1.0, 3e38]], dtype=np.float32), mean, scale).tolist()
[True, False]
>>> finite_rows(np.array([0.5, np.inf]), np.ones((2, 2))).tolist()
[True, False]
"""

from __future__ import annotations

import numpy as np

#: The dead-letter reason of an event the model cannot score with a finite result.
NOT_FINITE = "score is not finite"
#: Largest standardised magnitude whose square is still a finite float32.
MAX_STANDARDISED = float(np.sqrt(np.finfo(np.float32).max)) / 2


def representable(values: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Rows whose standardised values square to finite float32 numbers.

    Parameters
    ----------
    values : numpy.ndarray
        ``(n, c)`` readings.
    mean, scale : numpy.ndarray
        The scaler's ``(w * c,)`` statistics: for a window model, ``w`` time
        steps of ``c`` channels, time-major; a reading must fit every step.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` bool.

    >>> representable(np.array([[1e20]]), np.zeros(2), np.array([1.0, 1e10])).tolist()
    [False]
    """
    c = values.shape[1]
    mean = np.asarray(mean, dtype=np.float64).reshape(-1, c)
    scale = np.asarray(scale, dtype=np.float64).reshape(-1, c)
    if not len(values):
        return np.ones(0, dtype=bool)
    # The common case in one cheap pass: every value far inside the bound.
    bound = MAX_STANDARDISED * float(scale.min()) - float(np.abs(mean).max())
    if float(np.abs(values).max()) <= bound:
        return np.ones(len(values), dtype=bool)
    x = np.asarray(values, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        worst = np.abs(x[:, None, :] - mean[None]) / scale[None]
        ok = worst <= MAX_STANDARDISED
    return np.asarray(ok.all(axis=(1, 2)))


def finite_rows(scores: np.ndarray, feature_errors: np.ndarray) -> np.ndarray:
    """``(n,)`` bool: rows whose score and ``(n, d)`` per-feature errors are all finite."""
    errors = np.asarray(feature_errors)
    return np.isfinite(scores) & np.isfinite(errors).all(axis=1)
