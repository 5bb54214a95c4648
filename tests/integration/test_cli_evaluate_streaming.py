"""`seismo evaluate --streaming`, a subprocess: the file replayed through the scorer's
rolling threshold rule gives the stream's recall, not the calibration threshold's.

The file's normal rows are noisier than the training rows, so the rolling
threshold rises well above the calibration threshold; its anomalies sit
between the two. The calibration figure flags them, the stream does not, and
the ``--streaming`` figure is exactly what the rule
(:func:`seismo.stream.offline.replay.replay_threshold`) gives.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from seismo.models.artifact import build_artifact, load_artifact, save_artifact
from seismo.models.config import TrainConfig
from seismo.models.training import train_autoencoder
from seismo.stream.offline.replay import replay_threshold
from seismo.stream.scoring.threshold import ThresholdRule
from tests.pipes import run_seismo

RUN_TIMEOUT_S = 120.0


def test_streaming_recall_is_the_rolling_rules_and_differs_from_the_calibrations(tmp_path: Path):
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(3, 6))

    def rows(n: int, third: float) -> np.ndarray:
        """Rows on a plane of R^6, pushed ``third`` along a third direction."""
        z = rng.normal(size=(n, 3)) * np.array([1.0, 1.0, third])
        return (z @ basis + 0.1 * rng.normal(size=(n, 6))).astype(np.float32)

    result = train_autoencoder(rows(1500, 0.0), device="cpu",
                               train=TrainConfig(epochs=20, seed=0, patience=5, trim_share=0.0,
                                                   neighbours=0))  # clean rows  # fmt: skip
    model = save_artifact(build_artifact(result, name="streaming"), tmp_path / "model")
    artifact = load_artifact(model, device="cpu")
    rule = ThresholdRule(k=3.0, min_samples=300, space="log")
    calibrated = rule.calibrated(artifact.calibration).value

    live = rows(1500, 2.0)  # off the plane: the live scores, and the rolling threshold, rise
    live_scores = artifact.detector.score_batch(live)
    candidates = rows(5000, 2.0)
    scores = artifact.detector.score_batch(candidates)
    between = candidates[(scores > 1.5 * calibrated) & (scores < np.quantile(live_scores, 0.9))]
    assert len(between) >= 40, "no anomalies between the two thresholds"
    x = np.r_[live, between[:40]]
    y = np.r_[np.zeros(len(live), dtype=np.int64), np.ones(len(between[:40]), dtype=np.int64)]
    data = tmp_path / "live.npz"
    np.savez(data, X=x, y=y)

    done = run_seismo("evaluate", "--model", str(model), "--data", str(data), "--json",
                      "--streaming", "--min-samples", "300", "--stats-window", "1000",
                      "--device", "cpu", timeout=RUN_TIMEOUT_S)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    streaming = report["streaming"]

    replay = replay_threshold(artifact.detector.score_batch(x), artifact.calibration, rule,
                              stats_window=1000)  # fmt: skip
    expected_recall = float(replay.flags[y == 1].mean())
    assert streaming["recall"] == expected_recall
    assert report["recall"] > 0.9 and streaming["recall"] < report["recall"]
    assert streaming["threshold_max"] > 2 * streaming["threshold_calibration"]
    assert streaming["threshold_calibration"] == report["threshold"]

    human = run_seismo("evaluate", "--model", str(model), "--data", str(data), "--streaming",
                       "--min-samples", "300", "--stats-window", "1000", "--device", "cpu",
                       timeout=RUN_TIMEOUT_S)  # fmt: skip
    assert human.returncode == 0, human.stderr[-3000:]
    assert f"{streaming['recall']:.4f} through the rolling threshold" in human.stdout
