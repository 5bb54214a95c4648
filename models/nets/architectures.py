"""Architecture registry: the name stored in an artifact -> config and module classes.

A new architecture (sparse, denoising, vae, conv1d, lstm, ...) registers one
`Architecture` here. Its config class is a frozen dataclass with a class-level
``arch`` name, an ``n_features`` attribute and ``to_dict``/``from_dict``; its module
class is a `seismo.models.nets.base.Autoencoder` built from that config alone. A config may
have a ``score`` field (``mse``, ``mae``, or ``elbo`` where the module has a
`~seismo.models.nets.base.Autoencoder.row_penalty`); without one, rows score by MSE.

Examples
--------
>>> {"dense", "conv1d", "lstm"} <= set(ARCHITECTURES)
True
>>> {"sparse", "denoising", "vae"} <= set(ARCHITECTURES)
True
>>> spec = get_architecture("dense")
>>> cfg = spec.config_cls.from_dict({"n_features": 4, "hidden": [2]})
>>> type(spec.build(cfg)).__name__
'DenseAutoencoder'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, NamedTuple, Protocol

from seismo.models.config import DenseConfig
from seismo.models.errors import SeismoError
from seismo.models.nets.base import Autoencoder
from seismo.models.nets.conv1d import Conv1dAutoencoder, Conv1dConfig
from seismo.models.nets.denoising import DenoisingAutoencoder, DenoisingConfig
from seismo.models.nets.dense import DenseAutoencoder
from seismo.models.nets.lstm import LSTMAutoencoder, LSTMConfig
from seismo.models.nets.sparse import SparseAutoencoder, SparseConfig
from seismo.models.nets.vae import VAEConfig, VariationalAutoencoder


class ModelConfig(Protocol):
    """What every architecture's config provides."""

    arch: ClassVar[str]

    @property
    def n_features(self) -> int:
        """Input width ``d``."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields for ``config.json``."""
        ...

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelConfig:
        """Inverse of `to_dict`; raises `SeismoError` when invalid."""
        ...


class Architecture(NamedTuple):
    """A registered architecture: its config class and its module class."""

    config_cls: type[ModelConfig]
    module_cls: type[Autoencoder]

    def build(self, config: ModelConfig) -> Autoencoder:
        """Instantiate a freshly initialised module for ``config``."""
        if type(config) is not self.config_cls:
            raise SeismoError(
                f"{self.module_cls.__name__} needs a {self.config_cls.__name__}, "
                f"got {type(config).__name__}"
            )
        return self.module_cls(config)


ARCHITECTURES: dict[str, Architecture] = {
    DenseConfig.arch: Architecture(DenseConfig, DenseAutoencoder),
    Conv1dConfig.arch: Architecture(Conv1dConfig, Conv1dAutoencoder),
    LSTMConfig.arch: Architecture(LSTMConfig, LSTMAutoencoder),
    SparseConfig.arch: Architecture(SparseConfig, SparseAutoencoder),
    DenoisingConfig.arch: Architecture(DenoisingConfig, DenoisingAutoencoder),
    VAEConfig.arch: Architecture(VAEConfig, VariationalAutoencoder),
}
"""Every architecture seismo can train and load, by the name artifacts record."""


def get_architecture(arch: str) -> Architecture:
    """Look up an architecture by name.

    Raises
    ------
    SeismoError
        If ``arch`` is not registered; the message lists the known names.
    """
    try:
        return ARCHITECTURES[arch]
    except (KeyError, TypeError) as exc:
        known = ", ".join(sorted(ARCHITECTURES))
        raise SeismoError(f"unknown architecture {arch!r} (known: {known})") from exc
