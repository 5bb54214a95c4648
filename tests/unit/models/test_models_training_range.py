"""The range term (issue 20): a reading beyond its channel's training range counts even
where the autoencoder carries that channel through unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from seismo.models.artifact import build_artifact, load_artifact, save_artifact
from seismo.models.config import DenseConfig, TrainConfig
from seismo.models.detector import AutoencoderDetector
from seismo.models.errors import ArtifactError, DataError
from seismo.models.nets.sparse import SparseConfig
from seismo.models.scaler import StandardScaler
from seismo.models.terms.training_range import TrainingRange
from seismo.models.training import train_autoencoder


class Identity(nn.Module):
    """Carries every channel through: a perfect reconstruction of any row."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clone()


def identity_detector(x: np.ndarray, *, with_range: bool, score: str = "mse"):
    config = SparseConfig(n_features=x.shape[1], hidden=(2,), score=score)
    scaler = StandardScaler.fit(x)
    span = TrainingRange.fit(torch.from_numpy(scaler.transform(x))) if with_range else None
    return AutoencoderDetector(Identity(), scaler, config=config, training_range=span)


def test_a_reading_beyond_the_training_range_scores_by_its_distance_on_its_own_channel():
    x = np.random.default_rng(0).normal(size=(500, 4))
    plain = identity_detector(x, with_range=False)
    ranged = identity_detector(x, with_range=True)
    spike = x[:3].copy()
    spike[1, 2] = x[:, 2].max() + 10 * x[:, 2].std()  # 10 std beyond the highest reading
    assert plain.score_batch(spike).tolist() == [0.0, 0.0, 0.0]  # carried through: unseen
    scores, errors = ranged.score_with_features(spike)
    assert scores[0] == scores[2] == 0.0  # inside the range: nothing added
    assert errors[1].argmax() == 2 and errors[1, [0, 1, 3]].tolist() == [0.0, 0.0, 0.0]
    assert errors[1, 2] == pytest.approx(100.0, rel=1e-3)  # the excess, squared
    assert scores[1] == pytest.approx(100.0 / 4, rel=1e-3)  # the mean over the features
    low = x[:1].copy()
    low[0, 0] = x[:, 0].min() - 2 * x[:, 0].std()
    assert ranged.feature_errors(low)[0, 0] == pytest.approx(4.0, rel=1e-3)


def test_a_mae_score_adds_the_distance_itself():
    x = np.random.default_rng(1).normal(size=(200, 2))
    row = x[:1].copy()
    row[0, 1] = x[:, 1].max() + 3 * x[:, 1].std()
    errors = identity_detector(x, with_range=True, score="mae").feature_errors(row)
    assert errors[0, 1] == pytest.approx(3.0, rel=1e-3) and errors[0, 0] == 0.0


def test_a_range_of_another_width_is_refused():
    x = np.random.default_rng(2).normal(size=(50, 3))
    span = TrainingRange(torch.zeros(2), torch.ones(2))
    config = DenseConfig(n_features=3, hidden=(2,))
    with pytest.raises(DataError, match="training range has"):
        AutoencoderDetector(Identity(), StandardScaler.fit(x), config=config, training_range=span)


@pytest.mark.parametrize(
    "section, reason",
    [
        ({"low": [0.0, 1.0], "high": [1.0, 0.0]}, "low <= high"),
        ({"low": [0.0], "high": [1.0]}, "hold 2 numbers"),
        ({"low": [0.0, float("nan")], "high": [1.0, 1.0]}, "finite"),
        ({"high": [1.0, 1.0]}, "invalid section"),
        ("[0, 1]", "invalid section"),
    ],
)
def test_an_invalid_range_section_is_refused_with_its_reason(section, reason):
    with pytest.raises(ArtifactError, match=reason):
        TrainingRange.from_dict(section, 2)


def test_training_keeps_the_range_of_its_rows_through_the_artifact(tmp_path):
    """The training rows lie inside their own range: the term adds nothing to them, and
    the saved artifact scores exactly as the trained detector."""
    x = np.random.default_rng(3).normal(size=(400, 5)) * [1, 10, 0.1, 3, 1]
    ranged = train_autoencoder(x, train=TrainConfig(epochs=2, seed=0, range_term=True,
                                                    neighbours=0), device="cpu")  # fmt: skip
    plain = AutoencoderDetector(ranged.detector.module, ranged.detector.scaler,
                                config=ranged.detector.config)  # fmt: skip
    span = ranged.detector.training_range
    assert span is not None and span.low.shape == (5,)
    assert bool((span.low < span.high).all())
    # the rows it trained on: the validation rows are the 10 % whose scores may differ
    scored = ranged.detector.score_batch(x)
    same = np.isclose(scored, plain.score_batch(x), rtol=1e-6, atol=0)
    assert same.sum() >= 0.9 * len(x)
    far = x[:1] + [0, 0, 5.0, 0, 0]  # 50 std on the third channel
    assert ranged.detector.score_batch(far)[0] > plain.score_batch(far)[0] + 100
    saved = save_artifact(build_artifact(ranged), tmp_path / "model")
    loaded = load_artifact(saved, device="cpu")
    assert loaded.detector.training_range is not None
    np.testing.assert_array_equal(loaded.detector.score_batch(x), scored)
    assert train_autoencoder(x, train=TrainConfig(epochs=1, neighbours=0),
                             device="cpu").detector.training_range is None  # fmt: skip


def test_the_neighbour_term_keeps_the_range():
    x = np.random.default_rng(4).normal(size=(300, 3))
    both = train_autoencoder(x, train=TrainConfig(epochs=1, range_term=True, neighbours=64),
                             device="cpu").detector  # fmt: skip
    assert both.neighbours is not None and both.training_range is not None


def test_a_challenger_scores_like_its_champion_with_the_range_term():
    from seismo.models.challenger import train_challenger

    x = np.random.default_rng(5).normal(size=(300, 3))
    result = train_autoencoder(x, train=TrainConfig(epochs=1, neighbours=0, range_term=True),
                               device="cpu")  # fmt: skip
    champion = build_artifact(result)
    challenger = train_challenger(champion, x + 0.5, window={}, device="cpu")
    assert challenger.detector.training_range is not None
    del champion.training["summary"]["train_config"]["range_term"]  # recorded before the term
    assert train_challenger(champion, x, window={}, device="cpu").detector.training_range
