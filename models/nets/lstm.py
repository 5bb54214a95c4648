"""An LSTM sequence-to-sequence autoencoder over windows of a multichannel time series.

Rows are flattened windows (see `seismo.models.nets.sequence`). The encoder LSTM reads the
``window`` steps; its last hidden state goes through a linear map to the
``latent`` code. The decoder repeats the code at every step, runs a second
LSTM and maps each step's hidden state to ``channels`` values, returned
flattened as ``(n, window * channels)``.

Examples
--------
>>> import torch
>>> cfg = LSTMConfig(window=10, channels=2, hidden=16, latent=4)
>>> cfg.n_features
20
>>> LSTMConfig.from_dict(cfg.to_dict()) == cfg
True
>>> model = LSTMAutoencoder(cfg)
>>> model(torch.zeros(3, 20)).shape
torch.Size([3, 20])
>>> model.encode(torch.zeros(3, 20)).shape
torch.Size([3, 4])
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from seismo.models.config import _check_positive_int
from seismo.models.nets.base import Autoencoder
from seismo.models.nets.sequence import (
    check_sequence_fields,
    sequence_config_from_dict,
    to_rows,
    to_windows,
)


@dataclass(frozen=True)
class LSTMConfig:
    """Architecture of an LSTM sequence autoencoder.

    Parameters
    ----------
    window : int
        Time steps per row.
    channels : int
        Channels per time step; rows have ``n_features = window * channels``.
    hidden : int
        Hidden units of the encoder and the decoder LSTM.
    latent : int
        Size of the code `LSTMAutoencoder.encode` returns.
    layers : int
        Stacked layers in each LSTM.
    score : str
        Row score, ``"mse"`` or ``"mae"`` (`seismo.models.config.RECONSTRUCTION_SCORES`).

    Examples
    --------
    >>> LSTMConfig(window=8, channels=2, layers=0)
    Traceback (most recent call last):
    ...
    seismo.models.errors.SeismoError: layers must be a positive integer, got 0
    """

    arch: ClassVar[str] = "lstm"

    window: int
    channels: int
    hidden: int = 32
    latent: int = 8
    layers: int = 1
    score: str = "mse"

    def __post_init__(self) -> None:
        check_sequence_fields(self.window, self.channels, self.score)
        for name in ("hidden", "latent", "layers"):
            _check_positive_int(name, getattr(self, name))

    @property
    def n_features(self) -> int:
        """Row width ``d = window * channels``."""
        return self.window * self.channels

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict (with the derived ``n_features``); `from_dict` reverses it."""
        return {**asdict(self), "n_features": self.n_features}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LSTMConfig:
        """Build a config from `to_dict` output; raises `SeismoError` if invalid."""
        return sequence_config_from_dict(cls, data)


class LSTMAutoencoder(Autoencoder):
    """LSTM encoder -> linear code -> code repeated per step -> LSTM decoder -> linear per step.

    Parameters
    ----------
    config : LSTMConfig
        Shape and hyperparameters.
    """

    def __init__(self, config: LSTMConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = nn.LSTM(config.channels, config.hidden, config.layers, batch_first=True)
        self.to_latent = nn.Linear(config.hidden, config.latent)
        self.decoder = nn.LSTM(config.latent, config.hidden, config.layers, batch_first=True)
        self.output = nn.Linear(config.hidden, config.channels)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Map rows ``(n, window * channels)`` to codes ``(n, latent)``."""
        windows = to_windows(x, self.config.window, self.config.channels)
        _, (last_hidden, _) = self.encoder(windows)
        code: torch.Tensor = self.to_latent(last_hidden[-1])
        return code

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruct rows ``(n, window * channels)``; the output has the same shape."""
        code = self.encode(x)
        repeated = code.unsqueeze(1).repeat(1, self.config.window, 1)
        steps, _ = self.decoder(repeated)
        return to_rows(self.output(steps))
