"""The contract every autoencoder module follows: architecture only.

A module maps rows ``(n, d)`` to reconstructions ``(n, d)`` (sequence models
reshape internally to ``(n, window, channels)``, so the detector, the
artifact and the scorer stay the same for every architecture). Training and
scoring talk to modules only through the methods below; an architecture
changes its objective by overriding them:

- `Autoencoder.training_loss`: the scalar minimised in training and used for
  early stopping (sparse adds an activity penalty, denoising corrupts the
  input while ``self.training``, a VAE adds the weighted KL term).
- `Autoencoder.row_penalty`: an optional ``(n,)`` term added to each row's
  score when the detector scores with ``score="elbo"`` (the VAE's KL).

Examples
--------
>>> import torch
>>> from torch import nn
>>> import torch.nn.functional as F
>>> class Identity(Autoencoder):
...     def __init__(self):
...         super().__init__()
...         self.lin = nn.Linear(2, 2)
...     def encode(self, x):
...         return self.lin(x)
...     def forward(self, x):
...         return self.lin(x)
>>> m = Identity()
>>> m.training_loss(torch.zeros(3, 2), F.mse_loss).shape
torch.Size([])
>>> m.row_penalty(torch.zeros(3, 2)) is None
True
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``loss_fn(reconstruction, target) -> scalar``, e.g. `torch.nn.functional.mse_loss`."""


class Autoencoder(nn.Module):
    """Base class of seismo's autoencoders (see the module docstring)."""

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(n, d)`` rows to ``(n, k)`` codes (the latent space)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruct ``(n, d)`` rows; deterministic in eval mode."""
        raise NotImplementedError

    def training_loss(self, x: torch.Tensor, loss_fn: LossFn) -> torch.Tensor:
        """The scalar to minimise for a minibatch ``x`` (default: reconstruction loss)."""
        loss: torch.Tensor = loss_fn(self(x), x)
        return loss

    def row_penalty(self, x: torch.Tensor) -> torch.Tensor | None:
        """An extra per-row score term ``(n,)``, or ``None`` (the default)."""
        return None
