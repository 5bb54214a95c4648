"""The denoising autoencoder: reconstruct clean rows from corrupted ones.

While the module is in training mode (``module.train()``), `DenoisingAutoencoder`
corrupts its input before encoding it; the inherited training loss
``loss_fn(module(x), x)`` then compares that reconstruction with the clean
``x``. In eval mode, which is how the detector always scores, the forward pass
is the plain, deterministic dense autoencoder. Like `torch.nn.Dropout`, the
noise comes from torch's global generator, which training seeds.

Examples
--------
>>> import torch
>>> cfg = DenoisingConfig(n_features=6, hidden=(4, 2), noise="mask")
>>> model = DenoisingAutoencoder(cfg).eval()
>>> x = torch.ones(3, 6)
>>> bool(torch.equal(model(x), model(x)))
True
>>> model(x).shape, model.encode(x).shape
(torch.Size([3, 6]), torch.Size([3, 2]))
>>> DenoisingConfig.from_dict(cfg.to_dict()) == cfg
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from seismo.models.config import (
    RECONSTRUCTION_SCORES,
    DenseConfig,
    _check_choice,
    _check_non_negative,
)
from seismo.models.errors import SeismoError
from seismo.models.nets.dense import DenseAutoencoder

NOISES: tuple[str, ...] = ("gaussian", "mask")
"""Corruptions `DenoisingConfig.noise` may name."""


@dataclass(frozen=True)
class DenoisingConfig(DenseConfig):
    """Architecture of a denoising autoencoder: a `DenseConfig` plus its corruption.

    Parameters
    ----------
    n_features, hidden, activation, output_activation
        As in `DenseConfig`.
    noise : str
        ``"gaussian"`` adds ``N(0, noise_level**2)`` to every feature;
        ``"mask"`` sets each feature to 0 with probability ``noise_level``
        (masking noise; 0 is the training mean under standard scaling, so a
        masked feature reads as "unknown, assume typical").
    noise_level : float
        Gaussian standard deviation in scaled units (``>= 0``), or the mask
        probability (in ``[0, 1)``). The default 0.2 is a fifth of a feature's
        spread, or one feature in five hidden: enough that the model must use
        the correlations between features instead of copying them, small
        enough that the corrupted rows still look like the data. 0 disables
        the corruption.
    score : str
        ``"mse"`` or ``"mae"``: how the detector turns errors into a row score.

    Examples
    --------
    >>> DenoisingConfig(n_features=4, hidden=(2,))
    DenoisingConfig(n_features=4, hidden=(2,), activation='relu', output_activation=None, \
noise='gaussian', noise_level=0.2, score='mse')
    >>> DenoisingConfig(n_features=4, hidden=(2,), noise="mask", noise_level=1.0)
    Traceback (most recent call last):
    ...
    seismo.models.errors.SeismoError: mask noise_level must be in [0, 1), got 1.0
    """

    arch: ClassVar[str] = "denoising"

    noise: str = "gaussian"
    noise_level: float = 0.2
    score: str = "mse"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_choice("noise", self.noise, NOISES)
        _check_non_negative("noise_level", self.noise_level)
        if self.noise == "mask" and self.noise_level >= 1:
            raise SeismoError(f"mask noise_level must be in [0, 1), got {self.noise_level!r}")
        _check_choice("score", self.score, RECONSTRUCTION_SCORES)


def corrupt(x: torch.Tensor, noise: str, level: float) -> torch.Tensor:
    """Return a corrupted copy of ``x`` (any shape); ``x`` is not modified.

    Parameters
    ----------
    x : torch.Tensor
        Clean (scaled) values.
    noise : str
        One of `NOISES`.
    level : float
        Gaussian standard deviation, or the probability of zeroing a value.

    Examples
    --------
    >>> x = torch.ones(2, 3)
    >>> bool(torch.equal(corrupt(x, "gaussian", 0.0), x))
    True
    >>> set(corrupt(torch.ones(100, 10), "mask", 0.5).unique().tolist()) == {0.0, 1.0}
    True
    """
    if noise == "gaussian":
        return x + level * torch.randn_like(x)
    keep = torch.rand_like(x) >= level
    return x * keep


class DenoisingAutoencoder(DenseAutoencoder):
    """Dense autoencoder that corrupts its input while training.

    The layers and state-dict keys are those of `seismo.models.nets.dense.DenseAutoencoder`.
    `encode` never corrupts; `forward` corrupts only when ``self.training``.

    Parameters
    ----------
    config : DenoisingConfig
        Widths, activations and corruption.
    """

    config: DenoisingConfig

    def __init__(self, config: DenoisingConfig) -> None:
        super().__init__(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruct ``(n, n_features)`` rows, from a corrupted copy in training mode."""
        if self.training and self.config.noise_level > 0:
            x = corrupt(x, self.config.noise, self.config.noise_level)
        return super().forward(x)
