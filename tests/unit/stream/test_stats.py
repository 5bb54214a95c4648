"""The rolling statistics against numpy, step by step."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from seismo.stream.scoring.stats import RunningStats

batches = st.lists(
    st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=0, max_size=50),
    min_size=1,
    max_size=20,
)


@settings(max_examples=200, deadline=None)
@given(batches)
def test_merging_batches_matches_numpy_after_every_step(parts):
    state = RunningStats()
    seen: list[float] = []
    for part in parts:
        state = state.merge(RunningStats.from_scores(part))
        seen.extend(part)
        if not seen:
            assert state == RunningStats()
            continue
        x = np.asarray(seen)
        assert state.count == len(seen)
        scale = max(1.0, float(np.abs(x).max()))
        assert abs(state.mean - x.mean()) <= 1e-9 * scale
        assert abs(state.variance - x.var()) <= 1e-7 * scale * scale


def test_merge_is_symmetric_and_leaves_inputs_unchanged():
    a = RunningStats.from_scores([1.0, 5.0, 9.0])
    b = RunningStats.from_scores([2.0, 2.5])
    ab, ba = a.merge(b), b.merge(a)
    assert np.isclose(ab.mean, ba.mean) and np.isclose(ab.m2, ba.m2)
    assert a == RunningStats.from_scores([1.0, 5.0, 9.0])


def test_window_caps_count_keeps_mean_and_variance_and_forgets_the_past():
    rng = np.random.default_rng(0)
    state = RunningStats()
    for _ in range(50):
        state = state.merge(RunningStats.from_scores(rng.normal(0.0, 1.0, 100)), window=1000)
    assert state.count == 1000
    before = state
    for _ in range(50):  # the distribution moves: the capped state follows
        state = state.merge(RunningStats.from_scores(rng.normal(10.0, 1.0, 100)), window=1000)
    assert before.mean < 0.5
    assert 9.5 < state.mean < 10.5
    assert state.std < 2.0


def test_window_cap_of_a_single_merge_equals_scaling():
    merged = RunningStats.from_scores(np.arange(10.0)).merge(
        RunningStats.from_scores(np.arange(10.0, 20.0)), window=5
    )
    exact = RunningStats.from_scores(np.arange(20.0))
    assert merged.count == 5
    assert np.isclose(merged.mean, exact.mean)
    assert np.isclose(merged.variance, exact.variance)


def test_std_of_empty_and_constant_states_is_zero():
    assert RunningStats().std == 0.0
    assert RunningStats.from_scores([3.0, 3.0, 3.0]).std == 0.0
