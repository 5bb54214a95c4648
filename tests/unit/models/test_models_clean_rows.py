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

CLEAN = {"trim_share": 0.0, "neighbours": 0}


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
    clean = flagged(TrainConfig(**base, **CLEAN))
    other = flagged(TrainConfig(**base, **{**CLEAN, **changed}))
    print(f"clean rows, dense: --clean precision/recall {clean}, with {changed} {other}")
    assert clean[0] >= 0.9 and clean[1] == 1.0
    assert other[0] < 0.7 and other[1] == 1.0

