"""`seismo train` option handling: CLI options -> architecture config, pure."""

from __future__ import annotations

import pytest

from models.config import DenseConfig, default_hidden
from stream.errors import ConfigError
from stream.train_cmd import build_config, describe


def test_dense_defaults_come_from_the_dimension() -> None:
    config = build_config("dense", 21, {})
    assert config == DenseConfig(n_features=21, hidden=default_hidden(21))


def test_options_map_onto_config_fields() -> None:
    config = build_config(
        "dense", 784, {"hidden": "250,10", "activation": "tanh", "output_activation": "sigmoid"}
    )
    assert config == DenseConfig(
        n_features=784, hidden=(250, 10), activation="tanh", output_activation="sigmoid"
    )
    assert describe(config) == "dense autoencoder 784-250-10-250-784"


@pytest.mark.parametrize(
    ("arch", "options", "message"),
    [
        ("dense", {"kl_weight": 0.5}, "--kl-weight does not apply to --arch dense"),
        ("dense", {"hidden": "64,x"}, "--hidden expects comma-separated integers"),
        ("dense", {"activation": "swish"}, "--arch dense: activation 'swish' is not one of"),
        ("nope", {}, "unknown architecture 'nope'"),
    ],
)
def test_bad_options_are_one_line_config_errors(arch, options, message) -> None:
    with pytest.raises(ConfigError, match=message):
        build_config(arch, 8, options)


def test_none_means_not_given() -> None:
    assert build_config("dense", 8, {"kl_weight": None, "window": None}).n_features == 8
