"""The HTM-style anomaly likelihood (``seismo benchmark-nab --likelihood-tail``)."""

from __future__ import annotations

import numpy as np
import pytest

from seismo.models.eval.likelihood import LEARNING, likelihood_flags, tail_probability


def test_on_a_steady_gaussian_score_the_share_flagged_is_the_tail():
    severity = np.random.default_rng(1).normal(1.0, 0.2, 60_000)
    p = tail_probability(severity, short=1)[LEARNING:]
    for tail in (0.05, 0.01):
        assert tail * 0.8 < float(np.mean(p < tail)) < tail * 1.2


def test_a_burst_is_flagged_and_nothing_is_before_the_learning_period_ends():
    rng = np.random.default_rng(2)
    severity = rng.uniform(0.0, 0.5, 5000)
    severity[100:110] = 3.0  # inside the learning period: never flagged
    severity[4000:4010] = 3.0
    flags = likelihood_flags(severity, start=50, tail=1e-4)
    assert not flags[: 50 + LEARNING].any()
    assert flags[4000:4012].any() and not flags[LEARNING + 50 : 4000].any()


def test_one_enormous_score_does_not_hide_a_later_burst():
    """Scores are clipped before they enter: an unclipped 1e12 would widen the spread of
    the averages for the next 8640 rows and hide the burst."""
    severity = np.random.default_rng(3).uniform(0.0, 0.5, 6000)
    severity[1000] = 1e12
    severity[3000:3010] = 3.0
    assert likelihood_flags(severity, start=0, tail=1e-4)[3000:3012].any()


@pytest.mark.parametrize("tail", [0.0, 1.0, -0.1])
def test_a_tail_outside_zero_to_one_is_refused(tail):
    with pytest.raises(ValueError, match="between 0 and 1"):
        likelihood_flags(np.zeros(10), start=0, tail=tail)
