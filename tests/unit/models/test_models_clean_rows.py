"""Why ``seismo train --clean`` exists: on known-normal rows the trimmed loss and the
neighbour term (chosen for training rows that hold outliers) cost the k-sigma
threshold its precision. ``pytest -s`` prints the figures ``docs/protocol.md`` quotes."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from seismo.models.config import DenseConfig, TrainConfig, default_hidden
from seismo.models.training import train_autoencoder
from tests.pipes import SensorData

#: Neither outlier defence (``--clean`` before the range term, which the last test covers).
NO_DEFENCE = {"trim_share": 0.0, "neighbours": 0}


@cache  # the --clean model is the baseline of both cases
def flagged(train: TrainConfig) -> tuple[float, float]:
    """Precision and recall of ``log score > mean + 3 std`` of the validation log scores
    (the threshold ``seismo score`` starts from) on the pipe tests' generated events."""
    data = SensorData()
    config = DenseConfig(n_features=8, hidden=default_hidden(8))
    result = train_autoencoder(data.normal(6000, seed=1), config=config, train=train,
                               device="cpu")  # fmt: skip
    x, anomalous = data.with_anomalies(10_000, 0.01, seed=3)
    val = np.log(result.val_scores)
    flag = np.log(result.detector.score_batch(x)) > val.mean() + 3 * val.std()
    hits = int((flag & anomalous).sum())
    return hits / max(1, int(flag.sum())), hits / int(anomalous.sum())


@pytest.mark.parametrize("changed", [{"trim_share": 0.3}, {"neighbours": 2048}],
                         ids=["trimmed loss", "neighbour term"])  # fmt: skip
def test_on_clean_rows_each_outlier_defence_costs_the_threshold_its_precision(changed):
    base = dict(epochs=60, seed=0)
    clean = flagged(TrainConfig(**base, **NO_DEFENCE))
    other = flagged(TrainConfig(**base, **{**NO_DEFENCE, **changed}))
    print(f"clean rows, dense: no defence precision/recall {clean}, with {changed} {other}")
    assert clean[0] >= 0.9 and clean[1] == 1.0
    assert other[0] < 0.7 and other[1] == 1.0



def test_a_clean_model_flags_far_readings_on_one_channel_and_names_that_channel():
    """A stranger's case (docs/detection.md): four independent channels; a reading of 10 or
    20 std on one of them. Without the range term the README's ``--clean`` VAE missed a
    -10 std pressure reading (score 4.54 against a threshold of 4.60) and named another
    channel first; ``--clean`` now adds each value's distance beyond its training range."""
    from seismo.stream.offline.train import train_options_for

    rng = np.random.default_rng(5)
    scale, level = np.array([1.0, 5.0, 0.2, 30.0]), np.array([20.0, 1000.0, 50.0, 300.0])
    train_rows = rng.normal(size=(6000, 4)) * scale + level
    x = rng.normal(size=(2000, 4)) * scale + level
    spikes = rng.choice(len(x), size=16, replace=False)
    channels = np.arange(16) % 4
    for i, row in enumerate(spikes):
        x[row, channels[i]] += (-20, -10, 10, 20)[i // 4] * scale[channels[i]]
    clean = TrainConfig(seed=0, **train_options_for({}, window=False, clean=True))
    result = train_autoencoder(train_rows, train=clean, device="cpu")
    val = np.log(result.val_scores)
    scores, errors = result.detector.score_with_features(x)
    flagged = np.flatnonzero(np.log(scores) > val.mean() + 3 * val.std())
    assert set(spikes) <= set(flagged), sorted(set(spikes) - set(flagged))
    assert len(flagged) <= 20, len(flagged)  # 2000 normal rows: a handful of false alarms
    assert errors[spikes].argmax(axis=1).tolist() == channels.tolist()
