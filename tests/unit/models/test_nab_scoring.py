"""NAB's scoring rules (seismo.models.eval.nab_scoring) against examples computed by hand.

S(p) = 2 / (1 + e^(5p)) - 1; S(-1) = 0.986614, S(-0.5) = 0.848284,
S(-0.25) = 0.553385, S(0.5) = -0.848284, S(1) = -0.986614.
"""

from __future__ import annotations

import math

import pytest

from seismo.models.eval.nab_scoring import (
    REWARD_LOW_FN,
    REWARD_LOW_FP,
    STANDARD,
    normalised,
    probation_length,
    series_score,
    window_rows,
)

S_M1, S_M05, S_M025, S_05, S_1 = 0.986614, 0.848284, 0.553385, -0.848284, -0.986614


def detections(n: int, at: list[int]) -> list[bool]:
    return [i in at for i in range(n)]


def test_the_earliest_detection_in_a_window_is_the_one_that_counts():
    # 40 rows (probation 6), window rows 20-23 (w = 4)
    rows = list(range(40))
    hits = series_score(rows, detections(40, [22, 21, 23]), [(20, 23)], STANDARD)
    # row 21: p = -(23 - 21 + 1) / 4 = -0.75 -> S(-0.75) / S(-1)
    expected = (2 / (1 + math.exp(-3.75)) - 1) / S_M1
    assert hits.raw == pytest.approx(expected, abs=1e-6)
    assert (hits.detected_windows, hits.false_positives) == (1, 0)


def test_false_positives_cost_by_their_distance_from_the_previous_window():
    rows = list(range(40))
    windows = [(20, 24)]  # w = 5, so p = |i - 24| / 4 after it
    early = series_score(rows, detections(40, [10, 20]), windows, STANDARD)
    assert early.raw == pytest.approx(1.0 - 0.11, abs=1e-6)  # before any window: -A_fp
    near = series_score(rows, detections(40, [20, 26]), windows, STANDARD)
    assert near.raw == pytest.approx(1.0 + 0.11 * S_05, abs=1e-6)  # p = 2 / 4
    far = series_score(rows, detections(40, [20, 28]), windows, STANDARD)
    assert far.raw == pytest.approx(1.0 + 0.11 * S_1, abs=1e-6)  # p = 4 / 4
    assert far.false_positives == 1


def test_probation_rows_and_windows_are_not_scored():
    assert probation_length(100) == 15 and probation_length(10_000) == 750
    rows = list(range(100))
    # a window inside probation does not count; a detection in probation costs nothing
    score = series_score(rows, detections(100, [3, 12, 50]), [(2, 5), (50, 59)], STANDARD)
    assert score.windows == 1 and score.raw == pytest.approx(1.0, abs=1e-6)


def test_profiles_weigh_misses_and_false_alarms_differently():
    rows = list(range(60))
    windows = [(20, 23), (40, 43)]
    found = detections(60, [22, 10])  # window 1 at p = -0.5, window 2 missed, one early FP
    tp = S_M05 / S_M1
    assert series_score(rows, found, windows, STANDARD).raw == pytest.approx(tp - 1 - 0.11, 1e-5)
    assert series_score(rows, found, windows, REWARD_LOW_FP).raw == pytest.approx(
        tp - 1 - 0.22, 1e-5)
    assert series_score(rows, found, windows, REWARD_LOW_FN).raw == pytest.approx(
        tp - 2 - 0.11, 1e-5)
    # normalised over two series: (raw - null) / (perfect - null) * 100
    one = series_score(rows, found, windows, STANDARD)
    other = series_score(rows, detections(60, [20, 40]), windows, STANDARD)
    assert normalised([one, other]) == pytest.approx(
        100 * ((tp - 1.11 + 2) - (-4)) / (4 - (-4)), 1e-5)


def test_windows_are_found_by_timestamp_even_with_repeated_stamps():
    stamps = ["t0", "t1", "t1", "t2", "t3", "t4"]
    assert window_rows(stamps, [("t1", "t3"), ("t9", "t4")]) == [(1, 4)]
