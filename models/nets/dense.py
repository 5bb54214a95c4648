"""The fully connected autoencoder: architecture only, no device or scaling logic.

Examples
--------
>>> import torch
>>> from seismo.models.config import DenseConfig
>>> model = DenseAutoencoder(DenseConfig(n_features=6, hidden=(4, 2)))
>>> model(torch.zeros(3, 6)).shape
torch.Size([3, 6])
>>> model.encode(torch.zeros(3, 6)).shape
torch.Size([3, 2])
"""

from __future__ import annotations

import torch
from torch import nn

from seismo.models.config import DenseConfig
from seismo.models.nets.base import Autoencoder


def make_activation(name: str) -> nn.Module:
    """Return a fresh activation module for a name in `seismo.models.config.ACTIVATIONS`.

    Examples
    --------
    >>> make_activation("gelu")
    GELU(approximate='none')
    """
    factories: dict[str, type[nn.Module]] = {
        "relu": nn.ReLU,
        "tanh": nn.Tanh,
        "sigmoid": nn.Sigmoid,
        "gelu": nn.GELU,
        "leaky_relu": nn.LeakyReLU,
        "elu": nn.ELU,
    }
    return factories[name]()


def _stack(widths: list[int], activation: str, last: str | None) -> nn.Sequential:
    """Linear layers through ``widths`` with ``activation`` between them.

    ``last`` is the activation after the final layer, or ``None`` for none.
    """
    layers: list[nn.Module] = []
    pairs = list(zip(widths[:-1], widths[1:], strict=True))
    for i, (n_in, n_out) in enumerate(pairs):
        layers.append(nn.Linear(n_in, n_out))
        is_last = i == len(pairs) - 1
        if not is_last:
            layers.append(make_activation(activation))
        elif last is not None:
            layers.append(make_activation(last))
    return nn.Sequential(*layers)


class DenseAutoencoder(Autoencoder):
    """Mirror-image MLP autoencoder.

    The encoder maps ``n_features -> hidden[0] -> ... -> hidden[-1]`` with the
    configured activation after every layer except the last, so the
    bottleneck is linear. The decoder mirrors the widths back to
    ``n_features`` the same way, ending in ``output_activation`` (linear when
    ``None``).

    Parameters
    ----------
    config : DenseConfig
        Widths and activations.
    """

    def __init__(self, config: DenseConfig) -> None:
        super().__init__()
        self.config = config
        widths = [config.n_features, *config.hidden]
        self.encoder = _stack(widths, config.activation, None)
        self.decoder = _stack(widths[::-1], config.activation, config.output_activation)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(n, n_features)`` rows to ``(n, hidden[-1])`` codes."""
        code: torch.Tensor = self.encoder(x)
        return code

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruct ``(n, n_features)`` rows; the output has the same shape."""
        reconstruction: torch.Tensor = self.decoder(self.encoder(x))
        return reconstruction
