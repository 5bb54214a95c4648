"""Detectors for `seismo.models.eval.odds_bench`: seismo's default model and PyOD baselines.

Each factory returns a `~seismo.models.eval.odds_bench.FitFn`: ``fit(x_train, seed)``
trains on standardised rows ``(n, d)`` and returns a function scoring rows
``(m, d) -> (m,)``, **higher = more anomalous**. PyOD (``pip install
seismo[bench]``) is imported only when one of its detectors is built.

Examples
--------
>>> import numpy as np
>>> x = np.random.default_rng(0).normal(size=(40, 3))
>>> score = seismo_default(device="cpu")(x, 0)
>>> score(x[:5]).shape
(5,)
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from seismo.models.config import TrainConfig
from seismo.models.errors import SeismoError
from seismo.models.eval.odds_bench import FitFn, ScoreFn
from seismo.models.nets.vae import VAEConfig
from seismo.models.training import default_config, train_autoencoder

SEISMO = "seismo"
"""Name of seismo's default model in the benchmark tables."""

PYOD_DETECTORS: dict[str, tuple[str, str]] = {
    "pyod AutoEncoder": ("pyod.models.auto_encoder", "AutoEncoder"),
    "pyod VAE": ("pyod.models.vae", "VAE"),
    "pyod IForest": ("pyod.models.iforest", "IForest"),
    "pyod ECOD": ("pyod.models.ecod", "ECOD"),
    "pyod KNN": ("pyod.models.knn", "KNN"),
}
"""Table name -> (module, class) of the PyOD baselines, all built with PyOD's defaults."""

DETECTOR_KEYS: dict[str, str] = {
    "seismo": SEISMO,
    **{name.removeprefix("pyod ").lower(): name for name in PYOD_DETECTORS},
}
"""``--detectors`` key -> table name: ``seismo``, ``autoencoder``, ``vae``, ``iforest``,
``ecod``, ``knn``."""


class MissingPyOD(SeismoError):
    """PyOD (or a module it needs) is not installed."""


def seismo_default(device: str = "auto", overrides: Mapping[str, Any] | None = None) -> FitFn:
    """What ``seismo train --seed SEED`` builds with every other option at its default.

    That is `seismo.models.training.train_autoencoder` with the default model config
    and ``TrainConfig(seed=seed)``; ``overrides`` (e.g. ``{"neighbours": 0}``, the
    protocol's variants) replace `TrainConfig` fields, and ``vae_score`` the default
    VAE's score kind (``elbo`` or ``mse``, `seismo.models.nets.vae.VAE_SCORES`).
    """
    given = dict(overrides or {})
    score = given.pop("vae_score", None)
    TrainConfig(**given)  # an invalid variant fails here, before any data is read
    if score is not None:
        VAEConfig(n_features=1, hidden=(1,), score=score)

    def fit(x_train: np.ndarray, seed: int) -> ScoreFn:
        train = TrainConfig(**{**given, "seed": seed})
        config = default_config(x_train.shape[1])
        if score is not None and isinstance(config, VAEConfig):
            config = replace(config, score=score)
        result = train_autoencoder(x_train, config=config, train=train, device=device)
        return result.detector.score_batch

    return fit


def pyod_version() -> str | None:
    """PyOD's version string, or ``None`` when it is not installed."""
    try:
        module = importlib.import_module("pyod")
    except ImportError:
        return None
    return str(getattr(module, "__version__", "unknown"))


def _pyod_class(module_name: str, class_name: str) -> Any:
    try:
        return getattr(importlib.import_module(module_name), class_name)
    except ImportError as exc:
        raise MissingPyOD(
            f"PyOD baselines need PyOD: pip install 'seismo[bench]' ({exc}); "
            "or pass --no-pyod"
        ) from exc


def pyod_detector(name: str) -> FitFn:
    """A PyOD baseline from `PYOD_DETECTORS` with PyOD's default hyperparameters.

    Only ``random_state`` (set to the split's seed) and ``verbose=0`` are
    passed, and only to the detectors that take them (ECOD and KNN are
    deterministic and take neither), so runs are repeatable and quiet.
    Scores are PyOD's ``decision_function`` (higher = more anomalous).
    """
    module_name, class_name = PYOD_DETECTORS[name]
    cls = _pyod_class(module_name, class_name)
    accepted = inspect.signature(cls).parameters

    def fit(x_train: np.ndarray, seed: int) -> ScoreFn:
        wanted: dict[str, Any] = {"random_state": seed, "verbose": 0}
        model = cls(**{k: v for k, v in wanted.items() if k in accepted})
        model.fit(x_train)
        return lambda x: np.asarray(model.decision_function(x), dtype=np.float64)

    return fit


def build_detectors(
    with_pyod: bool = True, device: str = "auto", keys: Sequence[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, FitFn]:
    """Seismo's default model, then (unless ``with_pyod`` is false) the PyOD baselines.

    ``keys`` (`DETECTOR_KEYS`, e.g. ``["seismo", "knn"]``) keeps only those,
    in table order. Raises `MissingPyOD` up front, before any training, when
    PyOD is wanted but missing, and `SeismoError` for an unknown key.

    >>> list(build_detectors(with_pyod=False))
    ['seismo']
    """
    wanted = set(DETECTOR_KEYS) if keys is None else set(keys)
    unknown = sorted(wanted - set(DETECTOR_KEYS))
    if unknown:
        known = ", ".join(DETECTOR_KEYS)
        raise SeismoError(f"--detectors: unknown {', '.join(unknown)}; known: {known}")
    names = {DETECTOR_KEYS[k] for k in wanted}
    detectors: dict[str, FitFn] = {}
    if SEISMO in names:
        detectors[SEISMO] = seismo_default(device, overrides)
    if with_pyod:
        for name in PYOD_DETECTORS:
            if name in names:
                detectors[name] = pyod_detector(name)
    return detectors
