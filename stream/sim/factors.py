"""Correlated feature rows for benchmarks: a few latent factors plus noise.

Like real sensor channels, the features move together, so an autoencoder has
structure to learn and a broken correlation to notice.
"""

from __future__ import annotations

import numpy as np


def factor_rows(n: int, d: int, seed: int) -> np.ndarray:
    """``n`` rows of ``d`` features driven by ``max(1, d // 4)`` latent factors plus noise.

    >>> x = factor_rows(1000, 16, seed=0)
    >>> x.shape, x.dtype, bool(abs(np.corrcoef(x.T)).mean() > 0.2)
    ((1000, 16), dtype('float32'), True)
    """
    rng = np.random.default_rng(seed)
    k = max(1, d // 4)
    basis = np.random.default_rng(12345).normal(size=(k, d))
    return (rng.normal(size=(n, k)) @ basis + 0.1 * rng.normal(size=(n, d))).astype(np.float32)
