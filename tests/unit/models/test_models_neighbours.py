"""The k-nearest-neighbour term of the score: fitted by default, stored, checksummed,
and seeing what the reconstruction error cannot."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from seismo.models.artifact import build_artifact, load_artifact, save_artifact
from seismo.models.challenger import champion_train_config
from seismo.models.config import DenseConfig, TrainConfig
from seismo.models.errors import ArtifactError, SeismoError
from seismo.models.terms.neighbours import Neighbours
from seismo.models.training import train_autoencoder

DEFAULT = TrainConfig(epochs=15, batch_size=64, lr=3e-3, seed=0)  # neighbours: the default


def test_the_default_adds_the_neighbour_term_and_window_like_configs_can_leave_it_out(
    inliers: np.ndarray,
) -> None:
    assert TrainConfig().neighbours == 2048 and TrainConfig().neighbour_k == 5
    near = train_autoencoder(inliers, train=DEFAULT, device="cpu").detector.neighbours
    assert near is not None and near.k == 5
    assert near.reference.shape == (1080, 16)  # every training row: fewer than 2048 (10 % val)
    alone = train_autoencoder(inliers, train=TrainConfig(epochs=1, neighbours=0), device="cpu")
    assert alone.detector.neighbours is None
    with pytest.raises(SeismoError, match="neighbours must be an integer >= 0"):
        TrainConfig(neighbours=-1)


def test_a_row_on_the_manifold_in_a_gap_of_the_training_rows_scores_higher_with_it() -> None:
    """What the autoencoder misses: a reading of a shape it knows, where no row ever was.

    Training rows lie on a plane in two clusters (first factor beyond +-1.5); the
    row at the plane's centre, between them, reconstructs as well as any.
    """
    basis = np.random.default_rng(1234).normal(size=(2, 16))
    rng = np.random.default_rng(5)
    z = rng.normal(size=(1200, 2))
    z[:, 0] = np.sign(z[:, 0]) * (1.5 + np.abs(z[:, 0]))
    rows = z @ basis + 0.05 * rng.normal(size=(1200, 16))
    seen, train_rows = rows[:200], rows[200:]
    gap = np.zeros((1, 2)) @ basis
    cfg = DenseConfig(n_features=16, hidden=(32, 2))
    both = train_autoencoder(train_rows, config=cfg, train=DEFAULT, device="cpu").detector
    plain = TrainConfig(**{**DEFAULT.to_dict(), "neighbours": 0})
    alone = train_autoencoder(train_rows, config=cfg, train=plain, device="cpu").detector

    def rank_of_gap(detector) -> float:  # share of unseen normal rows scored below the gap row
        return float(np.mean(detector.score_batch(seen) < detector.score_batch(gap)[0]))

    assert rank_of_gap(both) >= 0.95  # 0.985 here
    assert rank_of_gap(alone) < 0.8  # 0.675 here: the gap reconstructs like a normal row


def test_the_reference_rows_travel_in_the_checksummed_weights_and_score_alike(
    inliers: np.ndarray, tmp_path: Path
) -> None:
    artifact = build_artifact(train_autoencoder(inliers, train=DEFAULT, device="cpu"))
    saved = save_artifact(artifact, tmp_path / "model")
    config = json.loads((saved / "config.json").read_text())
    assert config["neighbours"]["k"] == 5 and config["neighbours"]["rows"] == 1080
    loaded = load_artifact(saved, device="cpu")
    np.testing.assert_array_equal(loaded.detector.score_batch(inliers[:200]),
                                  artifact.detector.score_batch(inliers[:200]))  # fmt: skip
    assert loaded.calibration == artifact.calibration


def test_a_config_without_its_reference_rows_is_refused_in_one_line() -> None:
    reference = torch.zeros(3, 2)
    meta = {"k": 1, "rows": 3, "error_median": 1.0, "distance_median": 1.0}
    assert Neighbours.from_parts(meta, reference, 2).k == 1
    with pytest.raises(ArtifactError, match="must come together"):
        Neighbours.from_parts(meta, None, 2)
    with pytest.raises(ArtifactError, match=r"reference of shape \(3, 2\), expected \(3, 4\)"):
        Neighbours.from_parts(meta, reference, 4)
    with pytest.raises(ArtifactError, match="NaN or Inf"):
        Neighbours.from_parts(meta, torch.full((3, 2), float("nan")), 2)
    with pytest.raises(ArtifactError, match="must be integers"):
        Neighbours.from_parts({**meta, "k": 1.5}, reference, 2)
    with pytest.raises(ArtifactError, match="medians must be positive"):
        Neighbours.from_parts({**meta, "distance_median": 0.0}, reference, 2)


def test_a_challenger_scores_like_its_champion(inliers: np.ndarray) -> None:
    with_term = build_artifact(train_autoencoder(inliers, train=DEFAULT, device="cpu"))
    assert champion_train_config(with_term).neighbours == 2048
    without = TrainConfig(**{**DEFAULT.to_dict(), "neighbours": 0})
    champion = build_artifact(train_autoencoder(inliers, train=without, device="cpu"))
    del champion.training["summary"]["train_config"]["neighbours"]  # recorded before the term
    assert champion_train_config(champion).neighbours == 0
