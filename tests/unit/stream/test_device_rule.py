"""The per-device rule, step by step against a naive model that keeps every value."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seismo.models.calibration import Calibration
from seismo.stream.scoring.devices.rule import DeviceRule, DeviceState, judge
from seismo.stream.scoring.stats import RunningStats

finite = st.floats(-5, 5, allow_nan=False, width=32)


def naive(calibration_logs, steps, rule):
    """Lists, re-averaged at every step: what the rule means when nothing is forgotten."""
    pool = list(calibration_logs)  # the unflagged smoothed log errors (and the calibration)
    recent, readings, out = [], [], []
    for log_error, reading in steps:
        recent = (recent + [log_error])[-rule.smooth :]
        smoothed = sum(recent) / len(recent)
        mean, std = np.mean(pool), np.std(pool)
        z = (smoothed - mean) / max(std, 1e-9)
        window_flag = z > rule.k
        if not window_flag or rule.learn_anomalies:
            pool.append(smoothed)
        level = 0.0
        if len(readings) >= rule.level_warmup:
            past = np.array(readings)
            level = float(np.max(np.abs(reading - past.mean(0)) / (past.std(0) + 1e-9)))
        readings.append(reading)
        out.append((window_flag or level > rule.k, window_flag, z, level))
    return out


@settings(max_examples=200, deadline=None)
@given(
    calibration=st.lists(finite, min_size=2, max_size=30),
    steps=st.lists(st.tuples(finite, st.lists(finite, min_size=2, max_size=2)), max_size=60),
    smooth=st.integers(1, 4),
    warmup=st.integers(1, 5),
    learn=st.booleans(),
)
def test_the_rule_matches_the_naive_model_while_nothing_is_forgotten(
    calibration, steps, smooth, warmup, learn
):
    calibration_logs = np.array(calibration, dtype=np.float64)
    cal = Calibration.from_scores(np.exp(calibration_logs))
    rule = DeviceRule(k=2.0, smooth=smooth, history=10_000, level_history=10_000,
                      level_warmup=warmup, learn_anomalies=learn)  # fmt: skip
    state = DeviceState.start("v1", cal, rule, channels=2)
    steps = [(le, np.array(r)) for le, r in steps]
    expected = naive(np.log(np.exp(calibration_logs)), steps, rule)
    for (log_error, reading), (flagged, window_flag, z, level) in zip(steps, expected, strict=True):
        v = judge(state, log_error, reading, rule)
        if abs(z - rule.k) > 1e-6:  # on the edge, rounding may decide either way
            assert v.window_flag == window_flag
        else:
            return  # the pools may differ from here on
        assert v.window_z == pytest.approx(z, rel=1e-6, abs=1e-4)
        if abs(level - rule.k) > 1e-6:
            assert v.flagged == flagged
        assert v.level_z == pytest.approx(level, rel=1e-6, abs=1e-4)


def test_the_window_statistics_forget_with_a_memory_of_history_windows():
    cal = Calibration.from_scores(np.exp(np.random.default_rng(0).normal(0, 0.1, 500)))
    rule = DeviceRule(k=3.0, smooth=1, history=100, level_history=0)
    state = DeviceState.start("v1", cal, rule, channels=1)
    assert state.window.count == 100  # the calibration weighs as much as the memory
    for _ in range(2000):  # the errors settle 0.2 higher, a little at a time
        judge(state, 0.2 + np.random.default_rng(1).normal(0, 0.01), np.zeros(1), rule)
    assert state.window.count == 100
    assert state.window.mean == pytest.approx(0.2, abs=0.01)


def test_a_new_model_version_starts_the_window_statistics_again_and_keeps_the_readings():
    old = Calibration.from_scores(np.exp(np.array([0.0, 0.1, -0.1])))
    new = Calibration.from_scores(np.exp(np.array([5.0, 5.1, 4.9])))
    rule = DeviceRule(smooth=3, level_warmup=2)
    state = DeviceState.start("v1", old, rule, channels=1)
    for r in (1.0, 2.0, 3.0):
        judge(state, 0.05, np.array([r]), rule)
    assert state.recent == [0.05, 0.05, 0.05]
    state.follow("v1", new, rule)  # the same version: nothing changes
    assert state.window.mean == pytest.approx(np.mean([0.0, 0.1, -0.1, 0.05, 0.05, 0.05]))
    state.follow("v2", new, rule)
    assert (state.version, state.recent) == ("v2", [])
    assert state.window.mean == pytest.approx(5.0) and state.window.count == 3
    assert state.level[0].count == 3 and state.level[0].mean == pytest.approx(2.0)
    v = judge(state, 5.0, np.array([2.0]), rule)  # normal for the new model
    assert not v.flagged


def test_the_level_check_waits_for_its_warmup_and_can_be_off():
    cal = Calibration.from_scores(np.exp(np.zeros(10) + np.arange(10) * 0.01))
    on = DeviceRule(smooth=1, level_warmup=3)
    state = DeviceState.start("v", cal, on, channels=1)
    verdicts = [judge(state, 0.05, np.array([r]), on) for r in (1.0, 1.1, 0.9, 50.0)]
    assert [v.level_flag for v in verdicts] == [False, False, False, True]
    assert verdicts[2].level_z == 0.0  # two readings seen: still warming up
    off = DeviceRule(smooth=1, level_history=0)
    state = DeviceState.start("v", cal, off, channels=1)
    state.warm(np.ones((400, 1)), off)
    assert not judge(state, 0.05, np.array([1e6]), off).flagged
    assert state.level[0].count == 0


@settings(max_examples=100)
@given(
    version=st.text(min_size=1, max_size=20),
    window=st.tuples(st.floats(0, 1e4), finite, st.floats(0, 1e4)),
    recent=st.lists(finite, max_size=6),
    level=st.lists(st.tuples(st.floats(0, 1e4), finite, st.floats(0, 1e4)), max_size=4),
    offsets=st.dictionaries(st.integers(0, 100), st.integers(0, 2**62), max_size=4),
    readings=st.lists(st.lists(finite, min_size=2, max_size=2), max_size=3),
    bounds=st.lists(st.tuples(finite, finite).map(sorted), max_size=3),
)
def test_a_state_reads_back_exactly_from_its_bytes(
    version, window, recent, level, offsets, readings, bounds
):
    state = DeviceState(version, RunningStats(*window), recent,
                        [RunningStats(*s) for s in level], offsets, readings,
                        [list(b) for b in bounds])  # fmt: skip
    assert DeviceState.from_bytes(state.to_bytes()) == state


@pytest.mark.parametrize("bad", [dict(k=0), dict(smooth=0), dict(history=0),
                                 dict(level_history=-1), dict(level_warmup=0),
                                 dict(level_history=10, level_warmup=11),
                                 dict(level_smooth=0), dict(level_k=0.0),
                                 dict(level_mode="median"),
                                 dict(level_tolerance=-0.1)])  # fmt: skip
def test_invalid_rules_are_refused(bad):
    with pytest.raises(ValueError):
        DeviceRule(**bad)


def test_the_smoothing_averages_the_last_windows_only():
    cal = Calibration.from_scores(np.exp(np.array([0.0, 0.2])))
    rule = DeviceRule(k=100.0, smooth=2, level_history=0)  # nothing flagged
    state = DeviceState.start("v", cal, rule, channels=1)
    smoothed = [judge(state, e, np.zeros(1), rule).smoothed for e in (1.0, 3.0, 5.0)]
    assert smoothed == [1.0, 2.0, 4.0]
    assert state.window.mean == pytest.approx(np.mean([0.0, 0.2, 1.0, 2.0, 4.0]))


def _levels(rule, readings, warm):
    cal = Calibration.from_scores(np.exp(np.zeros(10) + np.arange(10) * 0.01))
    state = DeviceState.start("v", cal, rule, channels=1)
    state.warm(np.asarray(warm, dtype=float)[:, None], rule)
    return [judge(state, 0.0, np.array([r]), rule) for r in readings], state


def test_the_level_check_judges_the_mean_of_the_last_level_smooth_readings():
    warm = np.random.default_rng(0).normal(10.0, 1.0, 400)
    spike_then_shift = [10.0, 16.0, 10.0, 10.0] + [16.0] * 8
    single, _ = _levels(DeviceRule(smooth=1, level_warmup=3), spike_then_shift, warm)
    short_mean, state = _levels(DeviceRule(smooth=1, level_warmup=3, level_smooth=4),
                                spike_then_shift, warm)  # fmt: skip
    assert single[1].level_flag and not short_mean[1].level_flag  # one spike: a quarter of it
    assert short_mean[1].level_z == pytest.approx(single[1].level_z / 4 + 0.75 * single[0].level_z,
                                                  abs=0.5)  # fmt: skip
    assert [v.level_flag for v in short_mean[4:]] == [False, False, True, True, True, True, True,
                                                      True]  # the shift, once the mean holds it
    assert state.readings == [[16.0]] * 4


def test_the_range_level_check_flags_only_readings_beyond_everything_seen():
    rule = DeviceRule(smooth=1, level_warmup=3, level_mode="range", level_tolerance=0.1)
    readings = [5.0, 10.5, 12.5, 11.0, -1.0, -3.0]
    verdicts, state = _levels(rule, readings, warm=[0.0, 10.0, 3.0])
    # 10.5 exceeds [0, 10] by 5 %, 12.5 exceeds [0, 10.5] by 19 %, -1.0 [0, 12.5] by 8 %,
    # -3.0 exceeds [-1, 12.5] by 15 %
    assert [v.level_flag for v in verdicts] == [False, False, True, False, False, True]
    assert verdicts[2].level_z == pytest.approx(2.0 / 10.5)
    assert state.bounds == [[-3.0, 12.5]]
    assert DeviceState.from_bytes(state.to_bytes()).bounds == [[-3.0, 12.5]]
