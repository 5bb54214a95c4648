"""A 1-D convolutional autoencoder over windows of a multichannel time series.

Rows are flattened windows (see `seismo.models.nets.sequence`): the module reshapes them
to ``(n, window, channels)``, convolves over time with the channels as conv
channels, squeezes the result through a linear bottleneck of ``latent`` units
and mirrors the encoder back to ``(n, window, channels)``, returned flattened
as ``(n, window * channels)``.

Examples
--------
>>> import torch
>>> cfg = Conv1dConfig(window=16, channels=3, filters=(8, 4), latent=6)
>>> cfg.n_features, cfg.min_window
(48, 3)
>>> Conv1dConfig.from_dict(cfg.to_dict()) == cfg
True
>>> model = Conv1dAutoencoder(cfg)
>>> model(torch.zeros(5, 48)).shape
torch.Size([5, 48])
>>> model.encode(torch.zeros(5, 48)).shape
torch.Size([5, 6])
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from seismo.models.config import _check_activation, _check_positive_int, _is_int
from seismo.models.errors import SeismoError
from seismo.models.nets.base import Autoencoder
from seismo.models.nets.dense import make_activation
from seismo.models.nets.sequence import (
    check_sequence_fields,
    sequence_config_from_dict,
    to_rows,
    to_windows,
)


def stage_lengths(window: int, stages: int) -> tuple[int, ...]:
    """Time steps before and after each stride-2 stage: ``window, ceil(window / 2), ...``.

    Examples
    --------
    >>> stage_lengths(16, 2)
    (16, 8, 4)
    >>> stage_lengths(13, 3)
    (13, 7, 4, 2)
    """
    lengths = [window]
    for _ in range(stages):
        lengths.append((lengths[-1] + 1) // 2)
    return tuple(lengths)


@dataclass(frozen=True)
class Conv1dConfig:
    """Architecture of a convolutional sequence autoencoder.

    Parameters
    ----------
    window : int
        Time steps per row; at least `min_window`.
    channels : int
        Channels per time step; rows have ``n_features = window * channels``.
    filters : tuple of int
        Conv channels of each encoder stage, outermost first. Every stage
        halves the time axis (stride 2, ``ceil`` for odd lengths); the decoder
        mirrors the stages back to ``channels``.
    kernel_size : int
        Odd width of every convolution, at least 3 (so stride 2 skips no step).
    latent : int
        Units of the linear bottleneck (the code `Conv1dAutoencoder.encode` returns).
    activation : str
        Activation after every convolution but the last, one of
        `seismo.models.config.ACTIVATIONS`.
    score : str
        Row score, ``"mse"`` or ``"mae"`` (`seismo.models.config.RECONSTRUCTION_SCORES`).
    """

    arch: ClassVar[str] = "conv1d"

    window: int
    channels: int
    filters: tuple[int, ...] = (16, 8)
    kernel_size: int = 5
    latent: int = 8
    activation: str = "relu"
    score: str = "mse"

    def __post_init__(self) -> None:
        check_sequence_fields(self.window, self.channels, self.score)
        if isinstance(self.filters, list):
            object.__setattr__(self, "filters", tuple(self.filters))
        if not isinstance(self.filters, tuple) or not self.filters:
            raise SeismoError(f"filters must be a non-empty tuple of widths, got {self.filters!r}")
        for width in self.filters:
            _check_positive_int("filters width", width)
        if not _is_int(self.kernel_size) or self.kernel_size < 3 or self.kernel_size % 2 == 0:
            raise SeismoError(f"kernel_size must be an odd integer >= 3, got {self.kernel_size!r}")
        _check_positive_int("latent", self.latent)
        _check_activation("activation", self.activation)
        if self.window < self.min_window:
            raise SeismoError(
                f"window {self.window} is too short for {len(self.filters)} stride-2 stages; "
                f"need window >= {self.min_window} (or fewer filters)"
            )

    @property
    def n_features(self) -> int:
        """Row width ``d = window * channels``."""
        return self.window * self.channels

    @property
    def min_window(self) -> int:
        """Shortest window for which every stage halves at least two steps."""
        return 2 ** (len(self.filters) - 1) + 1

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict (with the derived ``n_features``); `from_dict` reverses it."""
        data = asdict(self)
        data["filters"] = list(self.filters)
        data["n_features"] = self.n_features
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Conv1dConfig:
        """Build a config from `to_dict` output; raises `SeismoError` if invalid."""
        return sequence_config_from_dict(cls, data, tuple_fields=("filters",))


def _conv_stack(
    widths: list[int], lengths: tuple[int, ...], cfg: Conv1dConfig, *, transposed: bool
) -> nn.Sequential:
    """Stride-2 convolutions through ``widths``, each followed by the activation.

    ``lengths[i]`` is the number of time steps entering stage ``i``. A transposed
    stage from ``L`` to ``L'`` steps gets ``output_padding = L' - (2L - 1)`` (0 for
    odd ``L'``, 1 for even), so the decoder restores every length exactly.
    """
    pad = cfg.kernel_size // 2
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        if transposed:
            extra = lengths[i + 1] - (2 * lengths[i] - 1)
            conv: nn.Module = nn.ConvTranspose1d(
                n_in, n_out, cfg.kernel_size, stride=2, padding=pad, output_padding=extra
            )
        else:
            conv = nn.Conv1d(n_in, n_out, cfg.kernel_size, stride=2, padding=pad)
        layers += [conv, make_activation(cfg.activation)]
    return nn.Sequential(*layers)


class Conv1dAutoencoder(Autoencoder):
    """Conv1d encoder over time, linear bottleneck, mirrored transposed-conv decoder.

    Encoder: ``channels -> filters[0] -> ... -> filters[-1]`` conv channels,
    each stride-2 convolution followed by the activation, then flatten and a
    linear map to ``latent`` units. Decoder: linear back to
    ``filters[-1] x stage_lengths(...)[-1]``, the activation, then transposed
    convolutions through the reversed filters to ``channels``, the last one
    linear. The output has exactly ``window`` steps for every valid window.

    Parameters
    ----------
    config : Conv1dConfig
        Shape and hyperparameters.
    """

    def __init__(self, config: Conv1dConfig) -> None:
        super().__init__()
        self.config = config
        lengths = stage_lengths(config.window, len(config.filters))
        widths = [config.channels, *config.filters]
        bottom = (config.filters[-1], lengths[-1])
        self.encoder = _conv_stack(widths, lengths, config, transposed=False)
        self.to_latent = nn.Sequential(
            nn.Flatten(), nn.Linear(bottom[0] * bottom[1], config.latent)
        )
        self.from_latent = nn.Sequential(
            nn.Linear(config.latent, bottom[0] * bottom[1]),
            make_activation(config.activation),
            nn.Unflatten(1, bottom),
        )
        decoder = _conv_stack(widths[::-1], lengths[::-1], config, transposed=True)
        self.decoder = decoder[:-1]  # drop the last activation: a linear reconstruction

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Map rows ``(n, window * channels)`` to codes ``(n, latent)``."""
        windows = to_windows(x, self.config.window, self.config.channels)
        code: torch.Tensor = self.to_latent(self.encoder(windows.transpose(1, 2)))
        return code

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruct rows ``(n, window * channels)``; the output has the same shape."""
        steps: torch.Tensor = self.decoder(self.from_latent(self.encode(x)))
        return to_rows(steps.transpose(1, 2))
