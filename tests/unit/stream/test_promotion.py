"""The promotion gate on hand-built z-scores: each rule, each reason."""

from __future__ import annotations

import numpy as np
import pytest

from seismo.stream.registry.promotion import GatePolicy, decide

K = 3.0
POLICY = GatePolicy(min_train_size=100, max_alert_rate=0.03, p99_margin=1.0, min_anomalies=5)
NORMAL = np.random.default_rng(0).normal(size=990).clip(-2.9, 2.9)
ANOMALIES = np.full(10, 8.0)
CHAMPION = np.concatenate([NORMAL, ANOMALIES])


def test_a_challenger_as_good_as_the_champion_is_promoted():
    d = decide(CHAMPION, CHAMPION * 0.95, k=K, n_train=5000, policy=POLICY)
    assert (d.promote, d.reason) == (True, "promoted")
    assert d.metrics["agreement"] == 1.0 and d.metrics["champion_anomalies"] == 10
    assert not d.metrics["regime_change"]


def test_too_little_training_data_is_never_promoted():
    d = decide(CHAMPION, CHAMPION, k=K, n_train=99, policy=POLICY)
    assert (d.promote, d.reason) == (False, "too_little_data")


def test_a_challenger_raising_false_alerts_is_rejected():
    noisy = np.concatenate([NORMAL + 1.5, ANOMALIES])  # ~7% of normal events above k
    d = decide(CHAMPION, noisy, k=K, n_train=5000, policy=POLICY)
    assert (d.promote, d.reason) == (False, "alerts_too_often")
    assert d.metrics["challenger_alert_rate"] > POLICY.max_alert_rate


def test_a_challenger_with_a_heavier_tail_is_rejected():
    tail = NORMAL.copy()
    tail[np.argsort(tail)[-20:]] = 4.5  # 2% of normal events at z = 4.5: p99 too high
    d = decide(CHAMPION, np.concatenate([tail, ANOMALIES]), k=K, n_train=5000,
               policy=GatePolicy(min_train_size=100, max_alert_rate=0.05, min_anomalies=5))
    assert (d.promote, d.reason) == (False, "worse_p99")


def test_a_challenger_that_learnt_the_anomalies_is_rejected():
    poisoned = np.concatenate([NORMAL, np.full(10, 1.0)])
    d = decide(CHAMPION, poisoned, k=K, n_train=5000, policy=POLICY)
    assert (d.promote, d.reason) == (False, "forgets_anomalies")
    assert d.metrics["agreement"] == 0.0


def test_few_anomalies_do_not_decide():
    champion = np.concatenate([NORMAL, [8.0, 8.0]])
    challenger = np.concatenate([NORMAL, [1.0, 1.0]])
    assert decide(champion, challenger, k=K, n_train=5000, policy=POLICY).promote


@pytest.mark.parametrize("share", [0.6, 1.0])
def test_a_new_regime_is_judged_on_every_recent_event(share):
    n_drifted = int(1000 * share)
    champion = np.concatenate([NORMAL[: 1000 - n_drifted], np.full(n_drifted, 9.0)])
    learnt = np.random.default_rng(1).normal(size=1000).clip(-2.9, 2.9)
    d = decide(champion, learnt, k=K, n_train=5000, policy=POLICY)
    assert d.metrics["regime_change"] and (d.promote, d.reason) == (True, "promoted")
    stale = decide(champion, champion, k=K, n_train=5000, policy=POLICY)
    assert (stale.promote, stale.reason) == (False, "alerts_too_often")


def test_both_models_must_be_judged_on_the_same_events():
    with pytest.raises(ValueError, match="same events"):
        decide(CHAMPION, CHAMPION[:-1], k=K, n_train=5000)
