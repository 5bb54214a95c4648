"""The series detector's two checks: the window model and the reading's level."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from models.series_detector import SeriesRules, detect, episode_starts, level_z


def naive_level_z(x: np.ndarray, start: int, history: int) -> np.ndarray:
    z = np.zeros(len(x))
    for i in range(max(start, 1), len(x)):
        past = x[max(0, i - history) : i]
        z[i] = abs(x[i] - past.mean()) / (past.std() + 1e-9)
    return z


@settings(max_examples=300, deadline=None)
@given(
    x=st.lists(st.integers(-1000, 1000), min_size=1, max_size=60),
    start=st.integers(0, 70),
    history=st.integers(1, 80),
)
def test_level_z_equals_a_loop_over_the_past_readings(x, start, history):
    values = np.array(x, dtype=float)
    expected = naive_level_z(values, start, history)
    got = level_z(values, start, history)
    spread = np.array([values[max(0, i - history) : i].std() if i else 0.0
                       for i in range(len(values))])  # fmt: skip
    varied = spread > 0.1  # integers that are not all equal spread at least ~0.13 here
    assert np.allclose(got[varied], expected[varied], rtol=1e-6)
    # a constant past: zero where the reading equals it, else far out (std ~ 0)
    flat = ~varied & (np.arange(len(values)) >= max(start, 1))
    assert np.all((expected[flat] == 0) == (got[flat] < 1e-3))
    assert np.all(got[flat][expected[flat] > 0] > 1e3)
    assert not got[: max(start, 1)].any()


def series(n: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(n) * 300.0
    rng = np.random.default_rng(seed)
    return np.sin(2 * np.pi * t / 86400) + rng.normal(0, 0.05, n), t


def test_a_row_is_flagged_by_either_check_and_only_episodes_become_detections():
    x, t = series()
    x[2200] += 6.0  # one reading far out of range
    x[2600:2700] = x[2600]  # a stuck stretch: each reading in range, the shape wrong
    rules = SeriesRules(epochs=15)
    both = detect(x, t, probation=600, rules=rules)
    window_only = detect(x, t, probation=600, rules=SeriesRules(epochs=15, level=False))
    reading = level_z(x, 600, rules.level_history)
    # the window part is the same run (same seed); the level check adds its rows
    assert np.array_equal(both.flagged, window_only.flagged | (reading > rules.k))
    assert np.array_equal(both.detections, episode_starts(both.flagged, 1 * both.span_rows))
    assert both.flagged[2200] and reading[2200] > rules.k
    assert window_only.flagged[2600:2700].any() and not (reading[2600:2700] > rules.k).any()
    assert both.detections_by()["level"] >= 1 and both.detections_by()["window"] >= 1
    assert int(both.detections[:2200].sum()) == 0
    assert both.anomaly_score[2200] == 1.0
    # no level check: its z-scores are zeros, the anomaly scores the window's alone
    assert not window_only.level_z.any()
    assert window_only.detections_by()["level"] == 0
    # what the benchmark's ablation uses instead of a second training
    derived = both.window_only()
    for name in ("flagged", "detections", "anomaly_score", "level_z"):
        assert np.array_equal(getattr(derived, name), getattr(window_only, name)), name
