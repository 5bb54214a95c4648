"""One retraining round on hand-made windows: exclusion of flagged events, regimes, gate."""

from __future__ import annotations

import numpy as np
import pytest

from seismo.models.artifact import Artifact, build_artifact
from seismo.models.config import DenseConfig, TrainConfig
from seismo.models.training import train_autoencoder
from seismo.stream.registry.promotion import GatePolicy
from seismo.stream.retrain.reservoir import Window
from seismo.stream.retrain.round import RoundOptions, run_round
from seismo.stream.scoring.stats import RunningStats
from seismo.stream.scoring.threshold import ThresholdRule
from tests.pipes import SensorData

A, B = SensorData(seed=7), SensorData(seed=8)
OPTIONS = RoundOptions(epochs=20, device="cpu")
POLICY = GatePolicy(min_train_size=500)


@pytest.fixture(scope="module")
def champion() -> Artifact:
    result = train_autoencoder(
        A.normal(3000, seed=1), config=DenseConfig(n_features=8, hidden=(16, 4)),
        train=TrainConfig(epochs=20), device="cpu",
    )  # fmt: skip
    return build_artifact(result, name="round")


def window_of(x: np.ndarray) -> Window:
    n = len(x)
    return Window(x.astype(np.float32), np.arange(n), np.zeros(n, np.int64), np.arange(n))


def threshold(champion: Artifact):
    return ThresholdRule(k=3.0, min_samples=1, space="log").current(
        RunningStats(), champion.calibration
    )


def test_flagged_events_are_left_out_of_training_and_a_good_challenger_wins(champion):
    x = A.normal(2500, seed=2)
    spikes = np.arange(0, 2500, 50)
    x[spikes, 0] += 8 * x[:, 0].std()
    result = run_round(champion, window_of(x), threshold(champion), options=OPTIONS,
                       policy=POLICY, trigger="test")  # fmt: skip
    window = result.challenger.training["window"]
    assert result.decision.promote, result.summary()
    assert window["excluded_flagged"] >= 0.9 * 40 and not window["regime_change"]
    assert window["trigger"] == "test" and window["events"] == 2000 - window["excluded_flagged"]


def test_a_new_regime_keeps_the_flagged_events_and_learns_it(champion):
    x = np.concatenate([A.normal(1000, seed=3), B.normal(2000, seed=4)])
    result = run_round(champion, window_of(x), threshold(champion), options=OPTIONS,
                       policy=POLICY, trigger="drift")  # fmt: skip
    summary = result.summary()
    assert summary["regime_change"] and summary["champion_alert_rate"] > 0.9
    assert result.challenger.training["window"]["excluded_flagged"] == 0
    assert result.decision.promote, summary
    assert summary["challenger_alert_rate"] <= POLICY.max_alert_rate


def test_too_little_data_trains_nothing(champion):
    result = run_round(champion, window_of(A.normal(400, seed=5)), threshold(champion),
                       options=OPTIONS, policy=POLICY, trigger="interval")  # fmt: skip
    assert result.challenger is None
    assert (result.decision.promote, result.decision.reason) == (False, "too_little_data")


def test_a_stop_during_training_abandons_the_round_within_an_epoch(champion) -> None:
    from dataclasses import replace

    from seismo.models.errors import TrainingStopped

    asked: list[int] = []

    def stopping() -> bool:
        asked.append(1)
        return len(asked) >= 2  # the process stops during the second epoch

    options = replace(OPTIONS, should_stop=stopping)
    with pytest.raises(TrainingStopped, match="after epoch 2"):
        run_round(champion, window_of(A.normal(2000, seed=5)), threshold(champion),
                  options=options, policy=POLICY, trigger="test")  # fmt: skip
    assert len(asked) == 2


def test_copies_of_one_reading_that_widen_the_calibration_are_not_promoted(champion):
    """A red-team finding: a producer sent 600 near-copies of one ordinary reading among
    3 000; the champion did not flag them, the challenger memorised them, and its
    calibration (validation errors, copies included) widened eighteenfold while its
    z-scores on the held-back slice looked fine: promoted, recall 0.12 after the swap."""
    rng = np.random.default_rng(0)
    normal = A.normal(3000, seed=31)
    copies = A.normal(1, seed=5) + rng.normal(0, 1e-4, size=(600, 8)).astype(np.float32)
    x = np.concatenate([normal, copies])[rng.permutation(3600)]  # spread over the window
    result = run_round(champion, window_of(x), threshold(champion), options=OPTIONS,
                       policy=POLICY, trigger="interval")  # fmt: skip
    summary = result.summary()
    assert (result.decision.promote, result.decision.reason) == (
        False, "calibration_out_of_bounds"), summary
    assert summary["calibration_ratio"] > POLICY.max_calibration_change
    assert not summary["regime_change"]


def test_a_window_of_one_repeated_reading_is_not_promoted(champion):
    """Its calibration is degenerate (a threshold a millionth of the champion's): after a
    swap every event alerted, and none was ever learnt."""
    x = np.repeat(A.normal(1, seed=5), 1500, axis=0)
    result = run_round(champion, window_of(x), threshold(champion), options=OPTIONS,
                       policy=POLICY, trigger="interval")  # fmt: skip
    assert result.decision.reason == "calibration_out_of_bounds", result.summary()
    assert result.summary()["calibration_ratio"] < 1 / POLICY.max_calibration_change**2


def test_the_bound_is_the_published_versions_so_a_bad_version_that_got_through_is_left(
    champion,
):
    """A reviewer's finding: measured against the current champion, a wide version that
    got through (here: promoted with the bound switched off) made every clean challenger
    look too narrow, and rounds could move the bound step by step. Every promoted version
    records the published one as its reference, and the bound is measured against it."""
    from dataclasses import replace

    rng = np.random.default_rng(0)
    copies = A.normal(1, seed=5) + rng.normal(0, 1e-4, size=(600, 8)).astype(np.float32)
    poisoned = np.concatenate([A.normal(3000, seed=31), copies])[rng.permutation(3600)]
    unbounded = replace(POLICY, max_calibration_change=1e9)
    bad = run_round(champion, window_of(poisoned), threshold(champion), options=OPTIONS,
                    policy=unbounded, trigger="interval")  # fmt: skip
    assert bad.decision.promote and bad.summary()["calibration_ratio"] > 4
    assert bad.challenger.training["window"]["reference"]["version"] == champion.version

    clean = run_round(bad.challenger, window_of(A.normal(3000, seed=32)), threshold(bad.challenger),
                      options=OPTIONS, policy=POLICY, trigger="interval")  # fmt: skip
    summary = clean.summary()
    assert clean.decision.promote, summary
    assert 1 / 4 < summary["calibration_ratio"] < 4, "against the published version"
    assert clean.challenger.training["window"]["reference"]["version"] == champion.version


def test_a_range_champion_hands_its_reference_range_on_to_the_challenger():
    """The challenger's range covers the recorded reference range, and records it again."""
    from dataclasses import asdict

    result = train_autoencoder(A.normal(3000, seed=1), train=TrainConfig(
        epochs=5, neighbours=0, range_term=True), device="cpu")  # fmt: skip
    first = build_artifact(result, name="round")
    low, high = first.detector.training_range.raw(first.detector.scaler.mean,
                                                  first.detector.scaler.scale)  # fmt: skip
    wide = {"low": (low - 50).tolist(), "high": (high + 50).tolist()}
    champion = build_artifact(result, name="round", training_window={"reference": {
        "version": "v0", "calibration": asdict(first.calibration), "range": wide}})
    outcome = run_round(champion, window_of(A.normal(2500, seed=2)), threshold(champion),
                        options=OPTIONS, policy=POLICY, trigger="test")  # fmt: skip
    challenger = outcome.challenger
    assert challenger.training["window"]["reference"]["range"] == wide
    now = challenger.detector.training_range.raw(challenger.detector.scaler.mean,
                                                 challenger.detector.scaler.scale)  # fmt: skip
    np.testing.assert_allclose(now[0], wide["low"], rtol=1e-5)
    np.testing.assert_allclose(now[1], wide["high"], rtol=1e-5)
