"""Shared fixtures for the models unit tests: low-rank data and one small trained model."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest
import torch

from seismo.models.config import DenseConfig, TrainConfig, default_hidden
from seismo.models.training import TrainResult, train_autoencoder

N_FEATURES = 16
LATENT = 4


RowMaker = Callable[..., np.ndarray]


def _manifold_rows(n: int, *, seed: int) -> np.ndarray:
    """Rows near a 4-dimensional linear subspace of R^16: ``z @ W + 0.1 * noise``."""
    basis = np.random.default_rng(1234).normal(size=(LATENT, N_FEATURES))
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, LATENT))
    return z @ basis + 0.1 * rng.normal(size=(n, N_FEATURES))


def _off_manifold_rows(n: int, *, seed: int) -> np.ndarray:
    """Rows with the same per-feature spread but no low-rank structure."""
    return 2.0 * np.random.default_rng(seed).normal(size=(n, N_FEATURES))


FAST_TRAIN = TrainConfig(epochs=30, batch_size=64, lr=3e-3, patience=5, seed=0, trim_share=0.0,
                         neighbours=0)
"""Clean rows, so no trimmed loss: the validation loss is then the mean validation score."""


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Tiny models train far faster on one thread, especially on a busy CI machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def manifold_rows() -> RowMaker:
    """Factory ``manifold_rows(n, seed=...)`` of on-manifold (normal) rows."""
    return _manifold_rows


@pytest.fixture(scope="session")
def off_manifold_rows() -> RowMaker:
    """Factory ``off_manifold_rows(n, seed=...)`` of anomalous rows."""
    return _off_manifold_rows


@pytest.fixture(scope="session")
def inliers() -> np.ndarray:
    return _manifold_rows(1200, seed=1)


@pytest.fixture(scope="session")
def trained(inliers: np.ndarray) -> TrainResult:
    """One dense model (MSE-scored) trained once per session; tests must not mutate it."""
    config = DenseConfig(n_features=inliers.shape[1], hidden=default_hidden(inliers.shape[1]))
    return train_autoencoder(inliers, config=config, train=FAST_TRAIN, device="cpu")
