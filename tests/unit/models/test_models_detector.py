"""AutoencoderDetector: the scoring contract, on hand-built and trained models."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch import nn

from seismo.models.config import DenseConfig
from seismo.models.detector import AutoencoderDetector
from seismo.models.errors import SeismoError
from seismo.models.scaler import StandardScaler
from seismo.models.training import TrainResult

RowMaker = Callable[..., np.ndarray]


class ZeroModel(nn.Module):
    """Reconstructs every row as the mean (zero in standardised units)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


class ModeSpy(nn.Module):
    """Identity that records whether it ran in training mode and under inference mode."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[bool, bool]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append((self.training, torch.is_inference_mode_enabled()))
        return x.clone()


def hand_built(module: nn.Module, x: np.ndarray, chunk_rows: int = 65536) -> AutoencoderDetector:
    cfg = DenseConfig(n_features=x.shape[1], hidden=(2,))
    return AutoencoderDetector(module, StandardScaler.fit(x), config=cfg, chunk_rows=chunk_rows)


def test_scores_are_mean_squared_standardised_error() -> None:
    x = np.random.default_rng(0).normal(5.0, 3.0, size=(20, 4))
    det = hand_built(ZeroModel(), x)
    z = (x - x.mean(0)) / x.std(0)
    np.testing.assert_allclose(det.feature_errors(x), z**2, rtol=1e-5)
    np.testing.assert_allclose(det.score_batch(x), (z**2).mean(axis=1), rtol=1e-5)


def test_scoring_runs_in_eval_and_inference_mode() -> None:
    spy = ModeSpy()
    det = hand_built(spy, np.random.default_rng(0).normal(size=(8, 3)))
    spy.train()
    det.score_batch(np.zeros((2, 3)))
    assert spy.calls == [(False, True)]


def test_chunking_gives_the_same_answer() -> None:
    x = np.random.default_rng(1).normal(size=(103, 4))
    spy = ModeSpy()
    chunked = hand_built(spy, x, chunk_rows=10)
    whole = hand_built(ZeroModel(), x)
    assert chunked.score_batch(x).shape == (103,)
    assert len(spy.calls) == 11
    chunked.module = ZeroModel()
    np.testing.assert_array_equal(chunked.score_batch(x), whole.score_batch(x))


def test_contract_on_trained_model(trained: TrainResult, manifold_rows: RowMaker) -> None:
    det = trained.detector
    x = manifold_rows(50, seed=7)
    before = x.copy()
    scores, errors = det.score_with_features(x)
    np.testing.assert_array_equal(x, before)
    assert det.n_features == 16 and det.arch == "dense"
    assert scores.shape == (50,) and scores.dtype == np.float32
    assert errors.shape == (50, 16) and errors.dtype == np.float32
    assert np.all(scores >= 0) and np.all(errors >= 0)
    np.testing.assert_allclose(scores, errors.mean(axis=1), rtol=1e-5)
    np.testing.assert_allclose(det.score_batch(x), scores, rtol=1e-6)
    np.testing.assert_allclose(det.feature_errors(x), errors, rtol=1e-6)


def test_dtypes_and_empty_batches(trained: TrainResult, manifold_rows: RowMaker) -> None:
    det = trained.detector
    x = manifold_rows(5, seed=8)
    np.testing.assert_allclose(
        det.score_batch(x.astype(np.float32)), det.score_batch(x), rtol=1e-4, atol=1e-6
    )
    assert det.score_batch(np.round(x).astype(np.int64)).shape == (5,)
    scores, errors = det.score_with_features(np.empty((0, 16)))
    assert scores.shape == (0,) and errors.shape == (0, 16)
    assert det.feature_errors(np.empty((0, 16), dtype=np.float32)).dtype == np.float32


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (np.zeros(16), "shape"),
        (np.zeros((3, 15)), "shape"),
        (np.zeros((1, 3, 16)), "shape"),
        (np.array([["a"] * 16]), "numeric"),
        (np.zeros((2, 16), dtype=bool), "numeric"),
        (np.vstack([np.zeros(16), np.full(16, np.nan)]), "row 1"),
    ],
)
def test_rejects_bad_input(trained: TrainResult, x: np.ndarray, match: str) -> None:
    with pytest.raises(SeismoError, match=match):
        trained.detector.score_batch(x)


def test_rejects_mismatched_scaler() -> None:
    cfg = DenseConfig(n_features=3, hidden=(2,))
    with pytest.raises(SeismoError, match="scaler has 4 features"):
        AutoencoderDetector(ZeroModel(), StandardScaler.fit(np.eye(4)), config=cfg)
