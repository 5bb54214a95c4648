"""Evaluation metrics against scikit-learn (a test-only dependency) and by their properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from seismo.models.calibration import Calibration
from seismo.models.errors import ArtifactError, DataError
from seismo.models.eval.metrics import (
    Confusion,
    average_ranks,
    classification_report,
    confusion,
    evaluate,
    pr_auc,
    pr_curve,
    roc_auc,
    roc_curve,
    select_threshold,
)


def random_case(seed: int, n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """Continuous scores, anomalies shifted up: essentially no ties."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.2).astype(np.int64)
    y[:2] = [0, 1]
    return y, rng.gamma(2.0, size=n) + 1.5 * y


def tie_case(seed: int, n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """Scores from five values only: ties inside and across the classes."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(np.int64)
    y[:2] = [0, 1]
    return y, rng.integers(0, 5, size=n).astype(np.float64) + y * rng.integers(0, 2, size=n)


CASES = [random_case(0), random_case(1, n=17), tie_case(2), tie_case(3, n=9)]
CASE_IDS = ["random", "random-small", "ties", "ties-small"]


@pytest.mark.parametrize(("y", "s"), CASES, ids=CASE_IDS)
def test_ranking_metrics_match_sklearn(y: np.ndarray, s: np.ndarray) -> None:
    assert roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    assert pr_auc(y, s) == pytest.approx(skm.average_precision_score(y, s), abs=1e-12)


@pytest.mark.parametrize(("y", "s"), CASES, ids=CASE_IDS)
def test_curves_match_sklearn(y: np.ndarray, s: np.ndarray) -> None:
    ours, theirs = roc_curve(y, s), skm.roc_curve(y, s, drop_intermediate=False)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-12)
    ours, theirs = pr_curve(y, s), skm.precision_recall_curve(y, s)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-12)


@pytest.mark.parametrize(("y", "s"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("quantile", [0.0, 0.5, 0.9, 1.0])
def test_thresholded_metrics_match_sklearn(y: np.ndarray, s: np.ndarray, quantile: float) -> None:
    threshold = float(np.quantile(s, quantile))
    pred = (s > threshold).astype(np.int64)
    result = evaluate(y, s, threshold=threshold, threshold_rule="test")
    tn, fp, fn, tp = skm.confusion_matrix(y, pred, labels=[0, 1]).ravel()
    assert result.confusion == Confusion(tn=tn, fp=fp, fn=fn, tp=tp)
    assert result.confusion.as_matrix() == skm.confusion_matrix(y, pred, labels=[0, 1]).tolist()
    p, r, f, _ = skm.precision_recall_fscore_support(
        y, pred, average="binary", zero_division=0
    )
    assert (result.precision, result.recall, result.f1) == pytest.approx((p, r, f), abs=1e-12)
    assert result.accuracy == pytest.approx(skm.accuracy_score(y, pred))
    expected = skm.classification_report(y, pred, labels=[0, 1], zero_division=0)
    assert classification_report(result.confusion) == expected


@pytest.mark.parametrize("digits", [2, 4])
def test_report_layout_matches_sklearn_with_long_names(digits: int) -> None:
    y, s = tie_case(5)
    pred = (s > 2).astype(np.int64)
    names = ("normal (0)", "a very long anomaly name")
    expected = skm.classification_report(
        y, pred, labels=[0, 1], target_names=list(names), digits=digits, zero_division=0
    )
    assert classification_report(confusion(y, pred == 1), names=names, digits=digits) == expected


def test_nothing_flagged_gives_zero_precision() -> None:
    y, s = random_case(4)
    result = evaluate(y, s, threshold=float(s.max()), threshold_rule="max")
    assert result.confusion.tp == result.confusion.fp == 0
    assert (result.precision, result.recall, result.f1) == (0.0, 0.0, 0.0)


def test_json_dict_keys_and_counts() -> None:
    y, s = random_case(6)
    document = evaluate(y, s, threshold=2.0, threshold_rule="fixed").to_json_dict()
    required = {"roc_auc", "pr_auc", "precision", "recall", "f1", "threshold", "n", "n_anomalies"}
    assert required <= set(document)
    assert document["n"] == y.size and document["n_anomalies"] == int(y.sum())
    assert sum(map(sum, document["confusion_matrix"])) == y.size


def test_perfect_and_inverted_separation() -> None:
    y = np.array([0, 0, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.8, 0.9])
    assert roc_auc(y, s) == 1.0 and pr_auc(y, s) == 1.0
    assert roc_auc(y, -s) == 0.0


@pytest.mark.parametrize(
    ("y", "message"),
    [
        (np.zeros(4, dtype=np.int64), "both normal (0) and anomalous (1)"),
        (np.ones(4, dtype=np.int64), "both normal (0) and anomalous (1)"),
        (np.array([0, 1, 2, 1]), "labels must be 0"),
        (np.array([0, 1, 1]), "equal 1-D shapes"),
    ],
)
def test_bad_labels_are_one_line_data_errors(y: np.ndarray, message: str) -> None:
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        roc_auc(y, np.arange(4.0))


def test_non_finite_scores_are_rejected() -> None:
    with pytest.raises(DataError, match="NaN or Inf"):
        pr_auc(np.array([0, 1]), np.array([0.0, np.nan]))


CAL = Calibration(count=50, mean=2.0, std=0.5, quantiles={}, log_mean=0.5, log_std=0.25)


def test_select_threshold_spaces() -> None:
    value, rule = select_threshold(CAL, k=3.0, space="log")
    assert value == pytest.approx(np.exp(0.5 + 3 * 0.25)) and "log" in rule
    value, rule = select_threshold(CAL, k=2.0, space="linear")
    assert value == pytest.approx(3.0) and "linear" in rule


def test_select_threshold_contamination() -> None:
    with_ratio = CAL.with_contamination(np.arange(101.0), 0.1)
    value, rule = select_threshold(with_ratio, "contamination")
    assert value == pytest.approx(90.0) and "0.1" in rule
    with pytest.raises(ArtifactError, match="no contamination threshold"):
        select_threshold(CAL, "contamination")


label_score_pairs = st.integers(min_value=2, max_value=60).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 1), min_size=n, max_size=n),
        st.lists(st.integers(-5, 5) | st.floats(-1e3, 1e3), min_size=n, max_size=n),
    )
)


@settings(max_examples=200, deadline=None)
@given(label_score_pairs)
def test_reversed_scores_give_one_minus_auc(pair: tuple[list[int], list[float]]) -> None:
    y, s = np.array(pair[0]), np.array(pair[1], dtype=np.float64)
    assume(0 < y.sum() < y.size)
    assert roc_auc(y, -s) == pytest.approx(1.0 - roc_auc(y, s), abs=1e-12)
    assert roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(label_score_pairs)
def test_average_precision_bounds_and_sklearn(pair: tuple[list[int], list[float]]) -> None:
    y, s = np.array(pair[0]), np.array(pair[1], dtype=np.float64)
    assume(0 < y.sum() < y.size)
    ap = pr_auc(y, s)
    assert 0.0 < ap <= 1.0 + 1e-12  # some anomaly is ranked somewhere: AP > 0
    assert ap == pytest.approx(skm.average_precision_score(y, s), abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(-3, 3), min_size=1, max_size=40))
def test_average_ranks_match_definition(values: list[int]) -> None:
    array = np.array(values, dtype=np.float64)
    ranks = average_ranks(array)
    expected = [(array < v).sum() + ((array == v).sum() + 1) / 2 for v in array]
    np.testing.assert_allclose(ranks, expected)
    assert ranks.sum() == pytest.approx(array.size * (array.size + 1) / 2)
