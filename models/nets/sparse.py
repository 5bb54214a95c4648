"""The sparse autoencoder: a dense autoencoder whose code is penalised towards sparsity.

Two penalties, added to the reconstruction loss in `SparseAutoencoder.training_loss`:

- ``"l1"``: ``weight * mean(|code|)`` over the batch and the bottleneck units
  (an activity regulariser on a linear bottleneck, as in the dense model);
- ``"kl"``: ``weight * sum_j KL(rho || rho_hat_j)``, where the bottleneck ends
  in a sigmoid, ``rho_hat_j`` is unit ``j``'s mean activation over the batch
  and ``rho`` is `SparseConfig.target` (Ng's sparse autoencoder).

Scoring is unchanged: reconstruction error (``score="mse"`` or ``"mae"``);
the penalty shapes the code during training only.

Examples
--------
>>> import torch
>>> cfg = SparseConfig(n_features=6, hidden=(4, 2), penalty="kl")
>>> cfg.weight, cfg.target
(0.1, 0.05)
>>> model = SparseAutoencoder(cfg)
>>> model(torch.zeros(3, 6)).shape, model.encode(torch.zeros(3, 6)).shape
(torch.Size([3, 6]), torch.Size([3, 2]))
>>> SparseConfig.from_dict(cfg.to_dict()) == cfg
True
>>> float(kl_sparsity(torch.full((5, 3), 0.05), 0.05))
0.0
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import torch

from seismo.models.config import (
    RECONSTRUCTION_SCORES,
    DenseConfig,
    _check_choice,
    _check_non_negative,
    _is_real,
)
from seismo.models.errors import SeismoError
from seismo.models.nets.base import LossFn
from seismo.models.nets.dense import DenseAutoencoder, make_activation

PENALTIES: tuple[str, ...] = ("l1", "kl")
"""Sparsity penalties `SparseConfig.penalty` may name."""

DEFAULT_WEIGHTS: Mapping[str, float] = {"l1": 1e-3, "kl": 1e-1}
"""Penalty weight used when `SparseConfig.weight` is not given (see its docstring)."""

_EPS = 1e-6


@dataclass(frozen=True)
class SparseConfig(DenseConfig):
    """Architecture of a sparse autoencoder: a `DenseConfig` plus its penalty.

    Parameters
    ----------
    n_features, hidden, activation, output_activation
        As in `DenseConfig`; ``hidden[-1]`` is the penalised code.
    penalty : str
        ``"l1"`` (mean absolute code) or ``"kl"`` (KL divergence of the
        units' mean sigmoid activation from ``target``), see the module docstring.
    weight : float or None
        Multiplier of the penalty, ``>= 0``; ``None`` picks `DEFAULT_WEIGHTS`,
        chosen so that the penalty does not measurably worsen the
        reconstruction (which is what the detector scores). ``l1``: 1e-3, a
        penalty of about 1e-3 against a per-element MSE of 0.003-0.1 for a
        trained model on standardised data (``|code|`` is about 1 per unit), a
        gentle shrinkage. ``kl``: 0.1, as the divergence is a sum over the
        ``k`` code units (about 0.5 per unit at initialisation, 0 at the
        target); 0.01 hardly moves the mean activations, 1.0 pulls them to
        ``target`` but multiplies the reconstruction error several-fold.
        Larger weights buy sparser codes with worse fits.
    target : float
        Desired mean activation ``rho`` in ``(0, 1)`` of each code unit (``kl``
        only); 0.05 is the customary choice.
    score : str
        ``"mse"`` or ``"mae"``: how the detector turns errors into a row score.

    Examples
    --------
    >>> SparseConfig(n_features=4, hidden=(2,)).weight
    0.001
    >>> SparseConfig(n_features=4, hidden=(2,), penalty="kl", target=1.0)
    Traceback (most recent call last):
    ...
    seismo.models.errors.SeismoError: target must be in (0, 1), got 1.0
    """

    arch: ClassVar[str] = "sparse"

    penalty: str = "l1"
    weight: float | None = None
    target: float = 0.05
    score: str = "mse"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_choice("penalty", self.penalty, PENALTIES)
        if self.weight is None:
            object.__setattr__(self, "weight", DEFAULT_WEIGHTS[self.penalty])
        _check_non_negative("weight", self.weight)
        if not _is_real(self.target) or not 0 < self.target < 1:
            raise SeismoError(f"target must be in (0, 1), got {self.target!r}")
        _check_choice("score", self.score, RECONSTRUCTION_SCORES)


def l1_activity(code: torch.Tensor) -> torch.Tensor:
    """Mean absolute activation of ``code`` ``(n, k)``: a scalar ``>= 0``.

    Examples
    --------
    >>> float(l1_activity(torch.tensor([[1.0, -3.0], [0.0, 0.0]])))
    1.0
    """
    return code.abs().mean()


def kl_sparsity(activations: torch.Tensor, target: float) -> torch.Tensor:
    """``sum_j KL(rho || rho_hat_j)`` for activations ``(n, k)`` in ``[0, 1]``.

    ``rho_hat_j`` is the mean of column ``j`` over the ``n`` rows, clipped to
    ``[1e-6, 1 - 1e-6]`` so the divergence stays finite; the result is a scalar
    ``>= 0`` that is 0 exactly when every unit's mean activation equals
    ``target``.

    Examples
    --------
    >>> acts = torch.tensor([[0.1, 0.0], [0.0, 0.1]])
    >>> float(kl_sparsity(acts, 0.05))
    0.0
    >>> bool(kl_sparsity(torch.full((2, 2), 0.5), 0.05) > 0)
    True
    """
    rho_hat = activations.mean(dim=0).clamp(_EPS, 1 - _EPS)
    rho = torch.as_tensor(target, dtype=rho_hat.dtype, device=rho_hat.device)
    kl = rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))
    return kl.sum()


class SparseAutoencoder(DenseAutoencoder):
    """Dense autoencoder trained with a sparsity penalty on its code.

    The layers are those of `seismo.models.nets.dense.DenseAutoencoder` (same state-dict
    keys); with ``penalty="kl"`` the encoder ends in a sigmoid, so codes lie in
    ``(0, 1)`` and read as unit activations.

    Parameters
    ----------
    config : SparseConfig
        Widths, activations and penalty.
    """

    config: SparseConfig

    def __init__(self, config: SparseConfig) -> None:
        super().__init__(config)
        if config.penalty == "kl":
            self.encoder.append(make_activation("sigmoid"))

    def sparsity_penalty(self, code: torch.Tensor) -> torch.Tensor:
        """The weighted penalty of a batch of codes ``(n, k)``: a scalar ``>= 0``."""
        weight = self.config.weight
        assert weight is not None  # resolved by SparseConfig.__post_init__
        if self.config.penalty == "kl":
            return weight * kl_sparsity(code, self.config.target)
        return weight * l1_activity(code)

    def training_loss(self, x: torch.Tensor, loss_fn: LossFn) -> torch.Tensor:
        """Reconstruction loss of ``x`` ``(n, d)`` plus `sparsity_penalty` of its code."""
        code = self.encode(x)
        loss: torch.Tensor = loss_fn(self.decoder(code), x) + self.sparsity_penalty(code)
        return loss
