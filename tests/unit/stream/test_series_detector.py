"""The series detector: the scorer's per-device rule over one series, and the classic
rolling Gaussian it is compared with."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seismo.stream.bench.series_detector import SeriesRules, detect, episode_starts, rolling_z


def naive_rolling_z(x: np.ndarray, start: int, history: int) -> np.ndarray:
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
def test_rolling_z_equals_a_loop_over_the_past_readings(x, start, history):
    values = np.array(x, dtype=float)
    expected = naive_rolling_z(values, start, history)
    got = rolling_z(values, start, history)
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
    # the window check is the same run (same seeds, same retraining data); the level
    # check adds its rows
    assert np.array_equal(both.window_flags, window_only.flagged)
    weights = [[v.rsplit("-", 1)[1] for v in r.versions] for r in (both, window_only)]
    assert weights[0] == weights[1] and both.retrains == 1  # the same weights, version by version
    assert np.array_equal(both.flagged, window_only.flagged | (both.level_z > rules.k))
    assert np.array_equal(both.detections, episode_starts(both.flagged, 1 * both.span_rows))
    assert both.level_z[2200] > rules.k and both.flagged[2200]
    assert window_only.flagged[2600:2700].any()
    assert not (both.level_z[2600:2700] > rules.k).any()
    assert both.detections_by()["level"] >= 1 and both.detections_by()["window"] >= 1
    assert int(both.detections[:2200].sum()) == 0
    assert both.anomaly_score[2200] == 1.0
    assert not both.flagged[:600].any() and np.isnan(both.z[:600]).all()
    # no level check: its z-scores are zeros, the anomaly scores the window's alone
    assert not window_only.level_z.any()
    assert window_only.detections_by()["level"] == 0
    # what the benchmark's ablation uses instead of a second training
    derived = both.window_only()
    for name in ("flagged", "detections", "anomaly_score", "level_z", "z"):
        same = np.array_equal(getattr(derived, name), getattr(window_only, name), equal_nan=True)
        assert same, name


def test_the_level_check_measures_a_reading_against_the_readings_before_it():
    x, t = series()
    x[1500] += 6.0
    result = detect(x, t, probation=600, rules=SeriesRules(epochs=5))
    past = x[:1500]  # fewer than level_history readings: every one of them, equally
    expected = abs(x[1500] - past.mean()) / past.std()
    assert result.level_z[1500] == pytest.approx(expected, rel=1e-6)
    assert result.level_z[601] == pytest.approx(abs(x[601] - x[:601].mean()) / x[:601].std(),
                                                rel=1e-6)
