"""DenseAutoencoder: shapes and layer layout."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from seismo.models.config import DenseConfig
from seismo.models.nets.dense import DenseAutoencoder


@pytest.mark.parametrize("hidden", [(2,), (8, 4), (12, 6, 3)])
def test_shapes(hidden: tuple[int, ...]) -> None:
    model = DenseAutoencoder(DenseConfig(n_features=16, hidden=hidden))
    x = torch.randn(5, 16)
    assert model(x).shape == (5, 16)
    assert model.encode(x).shape == (5, hidden[-1])


def test_layer_layout_has_linear_bottleneck_and_mirrored_decoder() -> None:
    model = DenseAutoencoder(DenseConfig(n_features=10, hidden=(6, 3), activation="tanh"))
    enc = [type(m) for m in model.encoder]
    dec = [type(m) for m in model.decoder]
    assert enc == [nn.Linear, nn.Tanh, nn.Linear]
    assert dec == [nn.Linear, nn.Tanh, nn.Linear]
    widths = [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)]
    assert widths == [(10, 6), (6, 3), (3, 6), (6, 10)]


def test_output_activation_bounds_reconstruction() -> None:
    cfg = DenseConfig(n_features=4, hidden=(3,), output_activation="sigmoid")
    model = DenseAutoencoder(cfg)
    assert isinstance(model.decoder[-1], nn.Sigmoid)
    out = model(100 * torch.randn(50, 4))
    assert torch.all((out >= 0) & (out <= 1))


def test_state_dict_keys_are_stable() -> None:
    model = DenseAutoencoder(DenseConfig(n_features=4, hidden=(3, 2)))
    assert list(model.state_dict()) == [
        "encoder.0.weight",
        "encoder.0.bias",
        "encoder.2.weight",
        "encoder.2.bias",
        "decoder.0.weight",
        "decoder.0.bias",
        "decoder.2.weight",
        "decoder.2.bias",
    ]
