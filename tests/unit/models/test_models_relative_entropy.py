"""NAB's relative-entropy detector: the test statistic's quantile and the detector's verdicts,
checked against a literal transcription of NAB's loop (histograms and KL one by one)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from seismo.models.eval.relative_entropy import chi2_isf, chi2_sf, relative_entropy_flags

# upper 1 % and 5 % points of the chi-squared distribution (any printed table)
TABLE = {(0.01, 1): 6.635, (0.01, 2): 9.210, (0.01, 4): 13.277, (0.01, 5): 15.086,
         (0.05, 3): 7.815, (0.05, 6): 12.592}  # fmt: skip


@pytest.mark.parametrize(("alpha", "df"), sorted(TABLE))
def test_the_quantile_matches_the_printed_table(alpha, df):
    assert chi2_isf(alpha, df) == pytest.approx(TABLE[(alpha, df)], abs=1e-3)
    assert chi2_sf(chi2_isf(alpha, df), df) == pytest.approx(alpha, rel=1e-6)


def test_the_quantile_refuses_impossible_arguments():
    with pytest.raises(ValueError, match="alpha"):
        chi2_isf(1.5, 4)
    with pytest.raises(ValueError, match="df"):
        chi2_isf(0.01, 0)


def literal(x, low, high, bins=5, window=52, alpha=0.01, rare=1):
    """NAB's loop as written there: quantise, histogram, compare with every hypothesis."""
    step = (high - low) / bins
    hypotheses, counts, flags = [], [], []
    threshold = chi2_isf(alpha, bins - 1)
    for t in range(len(x)):
        if t < window - 1:
            flags.append(False)
            continue
        levels = [math.ceil((v - low) / step) for v in x[t - window + 1 : t + 1]]
        hist = np.histogram(levels, bins=bins, range=(0, bins))[0].astype(float)
        p = hist / hist.sum()
        if not hypotheses:
            hypotheses.append(p)
            counts.append(1)
            flags.append(False)
            continue
        best, index = math.inf, -1
        for i, q in enumerate(hypotheses):
            kl = sum(a * math.log(a / b) if b > 0 else math.inf for a, b in zip(p, q) if a > 0)
            if 2 * window * kl < threshold and 2 * window * kl < best:
                best, index = 2 * window * kl, i
        if index >= 0:
            counts[index] += 1
            flags.append(counts[index] <= rare)
        else:
            hypotheses.append(p)
            counts.append(1)
            flags.append(True)
    return np.array(flags)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_detector_matches_nabs_loop_on_random_walks_and_regime_changes(seed):
    rng = np.random.default_rng(seed)
    x = np.r_[rng.normal(0, 1, 300), rng.normal(2, 0.5, 200), np.cumsum(rng.normal(0, 0.3, 300))]
    fast = relative_entropy_flags(x, x.min(), x.max())
    assert fast.tolist() == literal(x, x.min(), x.max()).tolist()
    assert fast.any()
    rare = relative_entropy_flags(x, x.min(), x.max(), rare=3)
    assert rare.tolist() == literal(x, x.min(), x.max(), rare=3).tolist()
    assert rare.sum() > fast.sum()  # a hypothesis stays anomalous for its first agreements


def test_a_steady_cycle_is_never_flagged_and_a_new_level_is():
    cycle = np.tile([0.0, 1.0, 2.0, 3.0, 4.0], 100)
    assert not relative_entropy_flags(cycle, 0.0, 4.0).any()
    shifted = np.r_[cycle, np.full(100, 4.0)]
    flags = relative_entropy_flags(shifted, 0.0, 4.0)
    assert flags[500:].any() and not flags[:500].any()


def test_clip_folds_readings_beyond_the_bounds_into_the_edge_levels():
    # bounds from a stretch before a surge: without clip the surge's readings fall out of
    # the histogram (NAB's histogram drops them), so a window wholly in it has no verdict
    x = np.r_[np.tile([0.0, 1.0, 2.0, 3.0, 4.0], 60), np.full(120, 9.0)]
    whole = 300 + 52
    assert not relative_entropy_flags(x, 0.0, 4.0)[whole:].any()
    clipped = relative_entropy_flags(x, 0.0, 4.0, clip=True)
    assert clipped[300:].any() and not clipped[:300].any()
