"""Calibration statistics against numpy."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from seismo.models.calibration import QUANTILES, Calibration
from seismo.models.errors import DataError


def test_matches_numpy() -> None:
    scores = np.random.default_rng(0).gamma(2.0, size=1000).astype(np.float32)
    cal = Calibration.from_scores(scores)
    reference = scores.astype(np.float64)
    assert cal.count == 1000
    assert cal.mean == pytest.approx(reference.mean())
    assert cal.std == pytest.approx(reference.std())
    assert list(cal.quantiles) == list(QUANTILES)
    for key, value in cal.quantiles.items():
        assert value == pytest.approx(np.quantile(reference, float(key)))
    assert cal.threshold(3.0) == pytest.approx(reference.mean() + 3.0 * reference.std())


def test_single_score() -> None:
    cal = Calibration.from_scores(np.array([0.25]))
    assert (cal.count, cal.mean, cal.std) == (1, 0.25, 0.0)
    assert set(cal.quantiles.values()) == {0.25}


def test_json_round_trip_is_exact() -> None:
    cal = Calibration.from_scores(np.random.default_rng(1).random(50))
    text = json.dumps(cal.to_dict(), allow_nan=False)
    assert Calibration.from_dict(json.loads(text)) == cal


@pytest.mark.parametrize(
    "scores", [np.array([]), np.zeros((2, 2)), np.array([1.0, np.inf])], ids=["empty", "2-D", "inf"]
)
def test_rejects_bad_scores(scores: np.ndarray) -> None:
    with pytest.raises(DataError):
        Calibration.from_scores(scores)


@pytest.mark.parametrize(
    "data",
    [
        {"mean": 1.0, "std": 0.1, "quantiles": {}},
        {"count": 0, "mean": 1.0, "std": 0.1, "quantiles": {}},
        {"count": 3, "mean": "x", "std": 0.1, "quantiles": {}},
        {"count": 3, "mean": 1.0, "std": -1.0, "quantiles": {}},
        {"count": 3, "mean": 1.0, "std": 0.1, "quantiles": [1, 2]},
    ],
)
def test_from_dict_rejects(data: dict[str, object]) -> None:
    with pytest.raises(DataError, match="invalid calibration"):
        Calibration.from_dict(data)


@settings(max_examples=50, deadline=None)
@given(hnp.arrays(np.float64, st.integers(1, 200), elements=st.floats(0, 1e6)))
def test_quantiles_are_ordered_and_bounded(scores: np.ndarray) -> None:
    cal = Calibration.from_scores(scores)
    values = [cal.quantiles[key] for key in QUANTILES]
    assert values == sorted(values)
    assert scores.min() <= values[0] and values[-1] <= scores.max()
    assert cal.std >= 0


def test_contamination_threshold_flags_that_share_of_training_scores() -> None:
    train_scores = np.random.default_rng(3).lognormal(size=50_000)
    cal = Calibration.from_scores(train_scores[:1000]).with_contamination(train_scores, 10 / 50_000)
    flagged = int((train_scores > cal.contamination_threshold).sum())
    assert flagged == 10
    assert Calibration.from_dict(cal.to_dict()) == cal


def test_calibration_without_contamination_still_loads_old_artifacts() -> None:
    cal = Calibration.from_scores(np.array([1.0, 2.0, 3.0]))
    old = {k: v for k, v in cal.to_dict().items() if not k.startswith("contamination")}
    assert Calibration.from_dict(old) == cal
    assert cal.contamination is None and cal.contamination_threshold is None
