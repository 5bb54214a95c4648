"""The drift monitor: a sustained shift is reported, a burst and normal data are not."""

from __future__ import annotations

import numpy as np

from seismo.stream.scoring.drift import DriftMonitor


def feed(monitor: DriftMonitor, values: np.ndarray, batch: int = 50) -> list[int]:
    """Indexes of the batches after which drift was reported."""
    return [i for i, start in enumerate(range(0, len(values), batch))
            if monitor.observe(values[start : start + batch])]


def test_normal_scores_never_report_drift():
    rng = np.random.default_rng(0)
    assert feed(DriftMonitor(0.0, 1.0, m=1.0, window=500), rng.normal(size=20_000)) == []


def test_a_burst_of_anomalies_is_not_drift():
    rng = np.random.default_rng(1)
    values = rng.normal(size=5000)
    values[2000:2100] += 10  # 100 anomalies: the rolling mean rises for a while only
    assert feed(DriftMonitor(0.0, 1.0, m=1.0, window=500), values) == []


def test_a_new_regime_is_reported_after_a_window_then_again_after_another():
    rng = np.random.default_rng(2)
    values = np.concatenate([rng.normal(size=2000), rng.normal(loc=3.0, size=3000)])
    reports = feed(DriftMonitor(0.0, 1.0, m=1.0, window=500), values)
    first = reports[0] * 50
    assert 2000 + 500 <= first + 50 <= 2000 + 1200, "reported about one window after the shift"
    assert all(b - a >= 500 // 50 for a, b in zip(reports, reports[1:], strict=False))


def test_reset_forgets_the_window():
    monitor = DriftMonitor(0.0, 1.0, m=1.0, window=10)
    monitor.observe(np.full(9, 5.0))
    monitor.reset()
    assert np.isnan(monitor.rolling_median)
    assert not monitor.observe(np.full(9, 5.0))
