"""train_autoencoder: learning, score direction, early stopping, input checks."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from seismo.models.config import DenseConfig, TrainConfig
from seismo.models.errors import DataError, SeismoError
from seismo.models.training import MIN_ROWS, TrainResult, train_autoencoder

RowMaker = Callable[..., np.ndarray]
TINY = TrainConfig(epochs=3, batch_size=32)


def test_training_lowers_the_loss(inliers: np.ndarray) -> None:
    history: list[tuple[int, float, float]] = []
    train = TrainConfig(epochs=8, batch_size=64, lr=3e-3, patience=8)
    result = train_autoencoder(
        inliers, train=train, device="cpu", progress=lambda *a: history.append(a)
    )
    epochs = [h[0] for h in history]
    assert epochs == list(range(1, result.summary["epochs_run"] + 1))
    assert history[-1][1] < 0.5 * history[0][1]
    assert result.summary["val_loss"] < 0.5 * history[0][2]


def test_summary_and_best_weights_restored(trained: TrainResult) -> None:
    summary = trained.summary
    expected_keys = {"epochs_run", "best_epoch", "train_loss", "val_loss", "n_train", "n_val"}
    assert set(summary) >= expected_keys | {"seconds", "device", "train_config"}
    assert summary["n_train"] + summary["n_val"] == 1200
    assert summary["n_val"] == 120 and trained.val_scores.shape == (120,)
    assert 1 <= summary["best_epoch"] <= summary["epochs_run"] <= 30
    assert summary["device"] == "cpu"
    # MSE loss over the held-out rows is the mean of their scores: the kept
    # weights are those of the best validation epoch.
    assert trained.val_scores.mean() == pytest.approx(summary["val_loss"], rel=1e-4)
    assert not trained.detector.module.training


def test_outliers_score_higher_than_inliers(
    trained: TrainResult, manifold_rows: RowMaker, off_manifold_rows: RowMaker
) -> None:
    normal = trained.detector.score_batch(manifold_rows(400, seed=11))
    anomalous = trained.detector.score_batch(off_manifold_rows(400, seed=12))
    assert np.median(anomalous) > 2 * np.quantile(normal, 0.99)
    auc = (anomalous[:, None] > normal[None, :]).mean()
    assert auc > 0.99


def test_same_seed_same_model(inliers: np.ndarray) -> None:
    runs = [train_autoencoder(inliers[:200], train=TINY, device="cpu") for _ in range(2)]
    for a, b in zip(runs[0].detector.module.parameters(), runs[1].detector.module.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    other = train_autoencoder(inliers[:200], train=TrainConfig(epochs=3, seed=1), device="cpu")
    assert not np.array_equal(other.val_scores, runs[0].val_scores)


def test_early_stopping_stops_on_noise() -> None:
    noise = np.random.default_rng(5).normal(size=(300, 8))
    train = TrainConfig(epochs=300, batch_size=32, lr=1e-2, patience=2)
    result = train_autoencoder(noise, train=train, device="cpu")
    assert result.summary["epochs_run"] < 300
    assert result.summary["epochs_run"] - result.summary["best_epoch"] == 2


def test_input_not_mutated_and_custom_config(inliers: np.ndarray) -> None:
    x = inliers[:100].copy()
    config = DenseConfig(n_features=16, hidden=(6,), activation="tanh")
    result = train_autoencoder(x, config=config, train=TINY, device="cpu")
    np.testing.assert_array_equal(x, inliers[:100])
    assert result.detector.config is config


def test_constant_feature_is_fine(inliers: np.ndarray) -> None:
    x = np.column_stack([inliers[:100], np.full(100, 7.0)])
    result = train_autoencoder(x, train=TINY, device="cpu")
    assert np.all(np.isfinite(result.val_scores))


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (np.zeros((MIN_ROWS - 1, 3)), "at least 10 rows"),
        (np.zeros(50), "shape"),
        (np.zeros((50, 0)), "shape"),
        (np.zeros((50, 2, 2)), "shape"),
        (np.array([["a", "b"]] * 20), "numeric"),
        (np.vstack([np.zeros((20, 3)), [[np.inf, 0, 0]]]), "1 row"),
    ],
)
def test_rejects_bad_data(x: np.ndarray, match: str) -> None:
    with pytest.raises(DataError, match=match):
        train_autoencoder(x, train=TINY, device="cpu")


def test_rejects_config_for_other_width(inliers: np.ndarray) -> None:
    with pytest.raises(DataError, match="expects 8 features"):
        train_autoencoder(inliers, config=DenseConfig(n_features=8, hidden=(2,)), device="cpu")


def test_divergence_is_reported(inliers: np.ndarray) -> None:
    x = inliers[:100] * 1e30
    with pytest.raises(SeismoError):
        train_autoencoder(x, train=TrainConfig(epochs=2, lr=1e30), device="cpu")


# --- contamination-robust training: trimmed loss and refit --------------------------------


def test_trimmed_loss_leaves_out_the_worst_rows_and_their_gradient() -> None:
    from seismo.models.training import trimmed_loss

    target = torch.zeros(10, 3)
    recon = torch.full((10, 3), 0.5, requires_grad=True)
    with torch.no_grad():
        recon[7] = 10.0  # one badly reconstructed row
    plain, trimmed = trimmed_loss("mse", 0.0), trimmed_loss("mse", 0.1)
    assert plain(recon, target).item() == pytest.approx((9 * 0.25 + 100.0) / 10)
    loss = trimmed(recon, target)
    assert loss.item() == pytest.approx(0.25)
    loss.backward()
    assert recon.grad is not None
    assert torch.all(recon.grad[7] == 0) and torch.all(recon.grad[:7] != 0)
    # at least one row is always kept; any loss of LOSSES works per row
    assert float(trimmed_loss("mae", 0.5)(recon[:1], target[:1])) == pytest.approx(0.5)


def _contaminated(manifold_rows: RowMaker, off_manifold_rows: RowMaker) -> np.ndarray:
    rows = np.concatenate([manifold_rows(540, seed=21), 3.0 * off_manifold_rows(60, seed=22)])
    return rows[np.random.default_rng(0).permutation(len(rows))]


def test_trimmed_training_fits_the_inliers_better(
    manifold_rows: RowMaker, off_manifold_rows: RowMaker
) -> None:
    x = _contaminated(manifold_rows, off_manifold_rows)
    config = DenseConfig(n_features=16, hidden=(32, 4))
    base = TrainConfig(epochs=40, batch_size=64, lr=3e-3, patience=40, neighbours=0)
    errors = {}
    for share in (0.0, 0.2):
        train = TrainConfig(**{**base.to_dict(), "trim_share": share})
        detector = train_autoencoder(x, config=config, train=train, device="cpu").detector
        errors[share] = float(np.median(detector.score_batch(manifold_rows(300, seed=23))))
    # the outliers no longer pull the model: clean rows reconstruct clearly better
    assert errors[0.2] < 0.8 * errors[0.0]


def test_refit_drops_the_top_scored_training_rows(
    manifold_rows: RowMaker, off_manifold_rows: RowMaker
) -> None:
    x = _contaminated(manifold_rows, off_manifold_rows)
    once = train_autoencoder(x, train=TrainConfig(epochs=5), device="cpu")
    train = TrainConfig(epochs=5, refit_share=0.1)
    refit = train_autoencoder(x, train=train, device="cpu")
    n_train = once.summary["n_train"]
    assert once.summary["n_refit_dropped"] == 0
    assert refit.summary["n_refit_dropped"] == int(0.1 * n_train)
    assert refit.summary["n_train"] == n_train - int(0.1 * n_train)
    assert refit.train_scores.shape == once.train_scores.shape  # scored on every training row
    assert not np.array_equal(refit.val_scores, once.val_scores)
