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
from seismo.models.training import _split, train_autoencoder


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
    """The rows it trained on lie inside their own range: the term adds exactly nothing
    to them, and the saved artifact scores exactly as the trained detector."""
    x = np.random.default_rng(3).normal(size=(400, 5)) * [1, 10, 0.1, 3, 1]
    train = TrainConfig(epochs=2, seed=0, range_term=True, neighbours=0)
    ranged = train_autoencoder(x, train=train, device="cpu")
    plain = AutoencoderDetector(ranged.detector.module, ranged.detector.scaler,
                                config=ranged.detector.config)  # fmt: skip
    span = ranged.detector.training_range
    assert span is not None and span.low.shape == (5,)
    assert bool((span.low < span.high).all())
    trained_on, _ = _split(len(x), train.val_fraction, np.random.default_rng(train.seed))
    np.testing.assert_array_equal(ranged.detector.score_batch(x[trained_on]),
                                  plain.score_batch(x[trained_on]))  # fmt: skip
    scored = ranged.detector.score_batch(x)
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


def test_a_covered_bound_that_a_training_row_sets_adds_nothing_to_its_training_score():
    """A challenger's window often holds its champion's extreme rows: where the covered
    range already holds a row's value, leaving the row out changes nothing."""
    x = np.random.default_rng(8).normal(size=(300, 3))
    x[10, 0] = 9.0
    train = TrainConfig(epochs=1, neighbours=0, range_term=True)
    champion = train_autoencoder(x, train=train, device="cpu").detector
    span = champion.training_range.raw(champion.scaler.mean, champion.scaler.scale)
    covered = train_autoencoder(x, train=train, device="cpu", cover=span)
    alone = train_autoencoder(x, train=train, device="cpu")
    trained_on, _ = _split(len(x), train.val_fraction, np.random.default_rng(train.seed))
    scores = covered.detector.score_batch(x[trained_on])
    np.testing.assert_allclose(covered.train_scores, scores, rtol=1e-6)
    assert (alone.train_scores - scores).max() > 1.0  # uncovered, the 9.0 row is left out


def test_a_challenger_keeps_the_range_term_and_covers_its_champions_range():
    """A narrow retrain window never narrows what counts as out of range."""
    from seismo.models.challenger import train_challenger

    x = np.random.default_rng(5).normal(size=(300, 3))
    result = train_autoencoder(x, train=TrainConfig(epochs=1, neighbours=0, range_term=True),
                               device="cpu")  # fmt: skip
    champion = build_artifact(result)
    quiet = x[np.abs(x).max(axis=1) < 1.0] * 0.5  # a window far inside the champion's range
    challenger = train_challenger(champion, quiet, window={}, device="cpu")
    assert challenger.detector.training_range is not None
    kept = champion.detector.training_range.raw(champion.detector.scaler.mean,
                                                champion.detector.scaler.scale)  # fmt: skip
    now = challenger.detector.training_range.raw(challenger.detector.scaler.mean,
                                                 challenger.detector.scaler.scale)  # fmt: skip
    np.testing.assert_allclose(now[0], np.minimum(kept[0], quiet.min(axis=0)), rtol=1e-5)
    np.testing.assert_allclose(now[1], np.maximum(kept[1], quiet.max(axis=0)), rtol=1e-5)
    inside = (kept[1] * 0.99)[None, :]  # inside the champion's range, outside the window's
    scaled = torch.from_numpy(challenger.detector.scaler.transform(inside))
    assert float(challenger.detector.training_range.excess(scaled).max()) == 0.0
    del champion.training["summary"]["train_config"]["range_term"]  # recorded before the term
    assert train_challenger(champion, x, window={}, device="cpu").detector.training_range


@pytest.mark.parametrize("score, neighbours", [("mse", 0), ("mae", 0), ("mse", 64)])
def test_training_scores_count_each_extreme_row_against_the_others(score, neighbours):
    """The --contamination quantile comes from training scores; a row that alone sets a
    bound is scored as if left out of the range, not as lying inside it (squared for
    mse, as is for mae, over the neighbour term's error median with it)."""
    x = np.random.default_rng(6).normal(size=(300, 2))
    x[7] = [9.0, 0.0]  # one row sets the first feature's high bound alone
    config = SparseConfig(n_features=2, hidden=(2,), score=score)

    def trained(range_term: bool):
        train = TrainConfig(epochs=1, neighbours=neighbours, range_term=range_term)
        return train, train_autoencoder(x, config=config, train=train, device="cpu")

    train, result = trained(True)
    _, plain = trained(False)  # the same model and neighbours: training ignores the range
    trained_on, _ = _split(len(x), train.val_fraction, np.random.default_rng(train.seed))
    at = int(np.flatnonzero(trained_on == 7)[0])
    second = np.sort(x[trained_on][:, 0])[-2]
    gap = (9.0 - second) / result.detector.scaler.scale[0]
    extra = (gap if score == "mae" else gap**2) / 2  # over the 2 features
    if neighbours:
        extra /= result.detector.neighbours.error_median
    added = result.train_scores - plain.train_scores
    assert added[at] == pytest.approx(extra, rel=1e-4)
    assert np.abs(np.delete(added, at)).max() < 0.2 * extra  # the other bounds' rows, a little


def test_an_artifact_with_the_range_term_is_refused_by_a_seismo_that_reads_format_1_only(tmp_path):
    """An older seismo would load it without the term and score lower than its calibration
    assumes; the format version makes it refuse the model in one line instead."""
    from seismo.models.artifact_io import parse_config

    x = np.random.default_rng(7).normal(size=(200, 3))
    ranged = build_artifact(train_autoencoder(
        x, train=TrainConfig(epochs=1, neighbours=0, range_term=True), device="cpu"))
    plain = build_artifact(train_autoencoder(x, train=TrainConfig(epochs=1, neighbours=0),
                                             device="cpu"))  # fmt: skip
    ranged_dir = save_artifact(ranged, tmp_path / "ranged")
    plain_dir = save_artifact(plain, tmp_path / "plain")
    payload = (ranged_dir / "config.json").read_bytes()
    with pytest.raises(ArtifactError, match="unsupported format_version 2 .*reads 1 to 1"):
        parse_config(payload, ranged_dir / "config.json", 1)
    assert parse_config((plain_dir / "config.json").read_bytes(), plain_dir, 1)
    assert load_artifact(ranged_dir, device="cpu").detector.training_range is not None


def test_the_retrainer_covers_its_reference_versions_range_not_each_champions():
    """A version promoted by mistake must not widen every later range: a promoted version
    carries its reference's range on, as it carries the reference's calibration."""
    from dataclasses import asdict

    from seismo.stream.retrain.round import reference_range

    x = np.random.default_rng(9).normal(size=(200, 2))
    result = train_autoencoder(x, train=TrainConfig(epochs=1, neighbours=0, range_term=True),
                               device="cpu")  # fmt: skip
    published = build_artifact(result)
    own, carried = reference_range(published)
    assert own is not None and carried  # published by hand: its own range, carried on
    np.testing.assert_allclose(own[0], published.detector.training_range.raw(
        published.detector.scaler.mean, published.detector.scaler.scale)[0])  # fmt: skip
    reference = {"version": "v1", "calibration": asdict(published.calibration)}
    promoted = build_artifact(result, training_window={"reference": {
        **reference, "range": {"low": [-1.0, -2.0], "high": [1.0, 2.0]}}})
    span, carried = reference_range(promoted)
    assert [v.tolist() for v in span] == [[-1.0, -2.0], [1.0, 2.0]] and carried
    for record in ({"low": [0.0]}, None):  # unreadable, or promoted before ranges were kept
        older = build_artifact(result, training_window={"reference": {**reference,
                                                                      "range": record}})
        span, carried = reference_range(older)
        np.testing.assert_array_equal(span[0], own[0])
        assert not carried  # its own, widened range is not passed off as the reference's
    plain = build_artifact(train_autoencoder(x, train=TrainConfig(epochs=1, neighbours=0),
                                             device="cpu"))  # fmt: skip
    assert reference_range(plain) == (None, False)


def test_a_refit_scores_its_dropped_rows_against_the_range_as_it_is():
    x = np.random.default_rng(10).normal(size=(300, 2))
    x[:5] *= 6.0  # rows a refit drops, some beyond the kept rows' range
    train = TrainConfig(epochs=1, neighbours=0, range_term=True, refit_share=0.1)
    result = train_autoencoder(x, train=train, device="cpu")
    trained_on, _ = _split(len(x), train.val_fraction, np.random.default_rng(train.seed))
    as_is = result.detector.score_batch(x[trained_on])
    left_out = np.flatnonzero(~np.isclose(result.train_scores, as_is, rtol=1e-6))
    assert result.summary["n_refit_dropped"] > 0
    assert 0 < len(left_out) <= 4  # only rows that alone set a bound of the kept rows
    assert (result.train_scores[left_out] > as_is[left_out]).all()