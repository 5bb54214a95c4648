"""Training a challenger like its champion: same architecture, same settings.

The champion's artifact records its model config and its `TrainConfig`; a
challenger is trained on new rows with both, except for what the caller
overrides (``epochs``, ``seed``), and keeps the champion's name and feature
names, so the scorers can swap to it unchanged.

Examples
--------
>>> import numpy as np
>>> from seismo.models.config import DenseConfig, TrainConfig
>>> from seismo.models.training import train_autoencoder
>>> from seismo.models.artifact import build_artifact
>>> x = np.random.default_rng(0).normal(size=(80, 4))
>>> result = train_autoencoder(x, config=DenseConfig(n_features=4, hidden=(6, 2)),
...                            train=TrainConfig(epochs=2), device="cpu")
>>> champion = build_artifact(result, name="pumps", feature_names=["a", "b", "c", "d"])
>>> challenger = train_challenger(champion, x + 1.0, window={"events": 80}, device="cpu")
>>> challenger.name, challenger.feature_names
('pumps', ['a', 'b', 'c', 'd'])
>>> challenger.detector.config == champion.detector.config
True
>>> challenger.training["summary"]["train_config"]["epochs"], challenger.training["window"]
(2, {'events': 80})
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from seismo.models.artifact import Artifact, build_artifact
from seismo.models.config import TrainConfig
from seismo.models.errors import TrainingStopped
from seismo.models.training import train_autoencoder


def champion_train_config(champion: Artifact) -> TrainConfig:
    """The `TrainConfig` the champion was trained with (defaults where it is not recorded).

    A champion from before the neighbour term (or the range term) records no
    ``neighbours`` (``range_term``): its challenger gets the term only if the
    champion has one, so both score alike.
    """
    recorded = champion.training.get("summary", {}).get("train_config")
    given = dict(recorded) if isinstance(recorded, Mapping) else {}
    near = champion.detector.neighbours
    given.setdefault("neighbours", 0 if near is None else int(near.reference.shape[0]))
    given.setdefault("range_term", champion.detector.training_range is not None)
    return TrainConfig.from_dict(given)


def champion_range(champion: Artifact) -> tuple[np.ndarray, np.ndarray] | None:
    """The champion's range term in raw units (low, high), or ``None`` without one."""
    span, scaler = champion.detector.training_range, champion.detector.scaler
    return None if span is None else span.raw(scaler.mean, scaler.scale)


def train_challenger(
    champion: Artifact,
    x: np.ndarray,
    *,
    window: Mapping[str, Any],
    epochs: int | None = None,
    seed: int | None = None,
    device: str = "auto",
    should_stop: Callable[[], bool] | None = None,
    cover: tuple[np.ndarray, np.ndarray] | None = None,
) -> Artifact:
    """Train a model of the champion's kind on ``x`` ``(n, d)`` and package it.

    A champion's range term is handed on: the challenger's range covers ``cover``
    (raw bounds; the retrainer passes its reference version's, default the
    champion's) as well as ``x``'s, so a short or quiet window never narrows it.

    Parameters
    ----------
    champion : Artifact
        The model serving now; its architecture, config, training settings,
        name and feature names are reused.
    x : numpy.ndarray
        Training rows, ``(n, d)`` with the champion's ``d``.
    window : mapping
        JSON-able description of the training window, stored in the artifact.
    epochs, seed : int, optional
        Override the champion's training settings.
    device : str
        Where to train (see `seismo.models.device.select_device`).
    should_stop : callable, optional
        Asked after every epoch; when it returns true, training ends by
        raising `TrainingStopped` (the process is shutting down).
    """
    train = champion_train_config(champion)
    if epochs is not None:
        train = replace(train, epochs=epochs)
    if seed is not None:
        train = replace(train, seed=seed)
    def progress(epoch: int, _train_loss: float, _val_loss: float) -> None:
        if should_stop is not None and should_stop():
            raise TrainingStopped(f"challenger training stopped after epoch {epoch}")

    if cover is None:
        cover = champion_range(champion)
    result = train_autoencoder(x, config=champion.detector.config, train=train, device=device,
                               progress=progress, cover=cover)  # fmt: skip
    contamination = champion.calibration.contamination
    return build_artifact(
        result,
        name=champion.name,
        feature_names=list(champion.feature_names),
        training_window=window,
        contamination=contamination,
    )
