"""Configs, default widths and the architecture registry."""

from __future__ import annotations

import json
from typing import Any

import pytest

from seismo.models.config import ACTIVATIONS, DenseConfig, TrainConfig, default_hidden
from seismo.models.errors import SeismoError
from seismo.models.nets.architectures import ARCHITECTURES, get_architecture
from seismo.models.nets.dense import DenseAutoencoder


@pytest.mark.parametrize(
    ("n_features", "expected"),
    [
        (1, (16, 1)),
        (2, (16, 1)),
        (8, (16, 4)),
        (16, (32, 8)),
        (21, (42, 10)),
        (100, (200, 32)),
        (784, (256, 32)),
    ],
)
def test_default_hidden(n_features: int, expected: tuple[int, int]) -> None:
    assert default_hidden(n_features) == expected


def test_default_hidden_rule_everywhere() -> None:
    for d in range(1, 2000):
        first, bottleneck = default_hidden(d)
        assert 1 <= bottleneck <= 32
        assert d == 1 or bottleneck < d
        assert first >= 2 * bottleneck
        assert 16 <= first <= 256


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "16"])
def test_default_hidden_rejects(bad: Any) -> None:
    with pytest.raises(SeismoError):
        default_hidden(bad)


def test_dense_config_round_trips_through_json() -> None:
    cfg = DenseConfig(n_features=12, hidden=(6, 3), activation="tanh", output_activation="sigmoid")
    restored = DenseConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert restored == cfg
    assert isinstance(restored.hidden, tuple)


def test_dense_config_accepts_list_hidden_and_is_hashable() -> None:
    cfg = DenseConfig(n_features=4, hidden=[3, 2])  # type: ignore[arg-type]
    assert cfg.hidden == (3, 2)
    assert hash(cfg) == hash(DenseConfig(n_features=4, hidden=(3, 2)))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_features": 0, "hidden": (2,)},
        {"n_features": 4, "hidden": ()},
        {"n_features": 4, "hidden": (2, 0)},
        {"n_features": 4, "hidden": (2.0,)},
        {"n_features": 4, "hidden": "8"},
        {"n_features": 4, "hidden": (2,), "activation": "swish"},
        {"n_features": 4, "hidden": (2,), "output_activation": "softmax"},
    ],
)
def test_dense_config_validation(kwargs: dict[str, Any]) -> None:
    with pytest.raises(SeismoError):
        DenseConfig(**kwargs)


def test_every_listed_activation_is_valid() -> None:
    for name in ACTIVATIONS:
        DenseConfig(n_features=3, hidden=(2,), activation=name, output_activation=name)


def test_dense_config_from_dict_rejects_unknown_and_missing_fields() -> None:
    with pytest.raises(SeismoError, match="unknown DenseConfig field"):
        DenseConfig.from_dict({"n_features": 4, "hidden": [2], "dropout": 0.1})
    with pytest.raises(SeismoError, match="invalid DenseConfig"):
        DenseConfig.from_dict({"n_features": 4})


def test_train_config_defaults_and_round_trip() -> None:
    cfg = TrainConfig()
    # 20 epochs with a trimmed loss (30 % of each batch left out), no refit: chosen on
    # the ODDS protocol (docs/protocol.md, "Variants tried")
    assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.patience, cfg.loss) == (20, 64, 1e-3, 8, "mse")
    assert (cfg.trim_share, cfg.refit_share) == (0.3, 0.0)
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


@pytest.mark.parametrize(
    "kwargs",
    [
        {"epochs": 0},
        {"batch_size": -1},
        {"lr": 0.0},
        {"lr": float("nan")},
        {"weight_decay": -1e-4},
        {"val_fraction": 0.0},
        {"val_fraction": 1.0},
        {"patience": 0},
        {"seed": -1},
        {"loss": "cross-entropy"},
        {"scaling": "robust"},
        {"trim_share": -0.1},
        {"trim_share": 0.6},
        {"refit_share": float("nan")},
        {"refit_share": 1.0},
    ],
)
def test_train_config_validation(kwargs: dict[str, Any]) -> None:
    with pytest.raises(SeismoError):
        TrainConfig(**kwargs)


def test_registry_maps_dense() -> None:
    spec = ARCHITECTURES["dense"]
    assert spec.config_cls is DenseConfig
    assert spec.module_cls is DenseAutoencoder
    assert DenseConfig.arch == "dense"
    assert isinstance(spec.build(DenseConfig(n_features=4, hidden=(2,))), DenseAutoencoder)


def test_registry_unknown_arch_lists_known() -> None:
    with pytest.raises(SeismoError, match=r"unknown architecture 'gru' \(known: .*dense"):
        get_architecture("gru")


def test_registry_build_rejects_foreign_config() -> None:
    with pytest.raises(SeismoError, match="needs a DenseConfig"):
        get_architecture("dense").build(TrainConfig())  # type: ignore[arg-type]
