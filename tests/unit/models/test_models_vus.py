"""VUS-PR (``seismo.models.eval.vus``) on hand-built and generated series."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from seismo.models.errors import DataError
from seismo.models.eval.metrics import pr_auc
from seismo.models.eval.vus import range_pr_auc, vus_pr


def ranges(n: int, spans: list[tuple[int, int]]) -> np.ndarray:
    labels = np.zeros(n, bool)
    for start, stop in spans:
        labels[start:stop] = True
    return labels


def literal_range_ap(labels: np.ndarray, scores: np.ndarray, buffer: int) -> float:
    """The definition, one threshold and one row at a time (slow, for small series)."""
    n, half = len(labels), buffer // 2
    runs, start = [], None
    for i, flag in enumerate([*labels.tolist(), False]):
        if flag and start is None:
            start = i
        if not flag and start is not None:
            runs.append((start, i - 1))
            start = None
    weight = labels.astype(float)
    for first, last in runs:
        for d in range(1, half + 1):
            for row in (first - d, last + d):
                if 0 <= row < n:
                    weight[row] += np.sqrt(1 - d / buffer)
    weight = np.minimum(weight, 1)
    segments: list[list[int]] = []
    for first, last in runs:
        if segments and first - half <= segments[-1][1]:
            segments[-1][1] = last + half
        else:
            segments.append([first - half, last + half])
    positives, area, previous = labels.sum(), 0.0, 0.0
    for t in sorted(set(scores.tolist()), reverse=True):
        flagged = scores >= t
        hit = float((weight * flagged).sum())
        labelled = (2 * positives + float((weight * flagged * ~labels).sum())) / 2
        found = sum(flagged[max(a, 0) : b + 1].any() for a, b in segments) / len(segments)
        recall = min(hit / labelled, 1.0) * found
        area += (recall - previous) * hit / flagged.sum()
        previous = recall
    return area


def test_a_score_that_ranks_every_anomalous_row_first_gets_one():
    labels = ranges(400, [(50, 70), (200, 205), (390, 400)])
    scores = labels + np.random.default_rng(0).random(400) * 0.5
    for max_buffer in (0, 1, 10, 60):
        assert vus_pr(labels, scores, max_buffer) == pytest.approx(1.0)


def test_a_random_score_earns_about_the_anomaly_rate():
    labels = ranges(20_000, [(s, s + 40) for s in range(300, 20_000, 800)])
    rate = labels.mean()  # 5 %
    values = [range_pr_auc(labels, np.random.default_rng(seed).random(20_000), buffer=0)
              for seed in range(3)]  # fmt: skip
    assert all(abs(v - rate) < 0.01 for v in values), (rate, values)
    # with buffers a random score earns a little more, still far from a detector's
    assert vus_pr(labels, np.random.default_rng(9).random(20_000), 40) < 2 * rate


def test_a_score_late_inside_the_buffer_gets_credit_a_point_pr_auc_does_not_give():
    labels = ranges(1000, [(400, 420)])
    late = np.random.default_rng(1).random(1000) * 0.1
    late[410:430] += 1.0  # fires for the anomaly's second half and 10 rows after it
    point = pr_auc(labels.astype(int), late)
    assert range_pr_auc(labels, late, buffer=0) == pytest.approx(point, abs=0.02)
    assert vus_pr(labels, late, max_buffer=40) > point + 0.15
    by_buffer = [range_pr_auc(labels, late, buffer=b) for b in (0, 10, 20, 40)]
    assert by_buffer == sorted(by_buffer) and by_buffer[-1] > 0.8, by_buffer


def test_one_row_late_by_hand():
    labels = ranges(6, [(2, 3)])
    late = np.array([0.0, 0.0, 0.0, 1.0, 0.0, 0.0])
    # buffer 0: the top row is a false alarm (precision 0), then all six rows find it
    assert range_pr_auc(labels, late, buffer=0) == pytest.approx(1 / 6)
    # buffer 2: rows 1 and 3 weigh sqrt(1/2); the top row alone is worth that much
    w = np.sqrt(0.5)
    first = w / ((1 + 1 + w) / 2)
    expected = first * w + (1 - first) * (1 + 2 * w) / 6
    assert range_pr_auc(labels, late, buffer=2) == pytest.approx(expected)
    assert vus_pr(labels, late, max_buffer=2) == pytest.approx((2 / 6 + expected) / 3)


@pytest.mark.parametrize("seed", range(4))
def test_the_vectorised_curve_is_the_definition(seed):
    rng = np.random.default_rng(seed)
    labels = ranges(300, [(0, 4), (60, 75), (80, 82), (290, 300)][seed % 2 :])
    scores = np.round(labels * rng.normal(0.7, 1, 300) + rng.normal(0, 1, 300), 1)  # ties
    for buffer in (0, 1, 5, 12, 30):
        assert range_pr_auc(labels, scores, buffer) == pytest.approx(
            literal_range_ap(labels, scores, buffer), abs=1e-12)  # fmt: skip


def test_only_the_order_of_the_scores_counts():
    rng = np.random.default_rng(3)
    labels = ranges(500, [(100, 130), (300, 310)])
    scores = labels * 0.8 + rng.random(500)
    assert vus_pr(labels, scores, 20) == pytest.approx(vus_pr(labels, np.exp(3 * scores), 20))


def test_bad_input_is_refused():
    with pytest.raises(DataError, match="at least one anomalous"):
        vus_pr(np.zeros(10, bool), np.zeros(10), 4)
    with pytest.raises(DataError, match="shapes"):
        vus_pr(np.ones(10, bool), np.zeros(9), 4)
    with pytest.raises(DataError, match="NaN"):
        vus_pr(np.ones(3, bool), np.array([0.0, np.nan, 1.0]), 4)
    with pytest.raises(DataError, match="max_buffer"):
        vus_pr(np.ones(3, bool), np.zeros(3), -1)


def published_volume():
    """TSB-AD's (or the ``vus`` package's) VUS code, where one of them is installed.

    Neither is a dependency: TSB-AD 1.5 pins numpy < 2 and pulls in torch and
    transformers, ``vus`` 0.0.6 pulls in TensorFlow.
    """
    for module, cls in (("TSB_AD.evaluation.basic_metrics", "basic_metricor"),
                        ("vus.utils.metrics", "metricor")):  # fmt: skip
        try:
            return getattr(importlib.import_module(module), cls)().RangeAUC_volume_opt
        except ImportError:
            continue
    pytest.skip("neither TSB-AD nor vus is importable")


def test_with_250_thresholds_it_is_tsb_ads_vus_pr():
    volume = published_volume()
    rng = np.random.default_rng(7)
    for n, max_buffer in ((800, 0), (1500, 25), (2500, 60)):
        labels = np.zeros(n, bool)
        for start in rng.integers(0, n - 60, 5):
            labels[start : start + rng.integers(1, 60)] = True
        scores = np.convolve(labels * 1.5 + rng.normal(0, 1, n), np.ones(5) / 5, mode="same")
        expected = volume(labels.astype(int), scores, max_buffer, 250)[-1]
        assert vus_pr(labels, scores, max_buffer, thresholds=250) == pytest.approx(expected)
