"""Hyperparameters of the autoencoder and of its training, as frozen dataclasses.

Nothing here imports torch: a config is plain data that travels inside the
model artifact (``config.json``) and is validated once, when it is built.

Examples
--------
>>> cfg = DenseConfig(n_features=16, hidden=default_hidden(16))
>>> cfg
DenseConfig(n_features=16, hidden=(32, 8), activation='relu', output_activation=None)
>>> DenseConfig.from_dict(cfg.to_dict()) == cfg
True
>>> DenseConfig.arch
'dense'
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

from seismo.models.errors import SeismoError

ACTIVATIONS: tuple[str, ...] = ("relu", "tanh", "sigmoid", "gelu", "leaky_relu", "elu")
"""Activation names a config may use; ``seismo.models.nets.dense`` maps them to modules."""

LOSSES: tuple[str, ...] = ("mse", "mae", "huber", "bce")
"""Training losses ``TrainConfig.loss`` may name (``bce`` needs outputs in [0, 1]:
a sigmoid output activation and ``scaling="minmax"`` or data already in [0, 1])."""

SCALINGS: tuple[str, ...] = ("standard", "minmax", "none")
"""Feature scalings ``TrainConfig.scaling`` may name (see `seismo.models.scaler.fit_scaler`)."""

RECONSTRUCTION_SCORES: tuple[str, ...] = ("mse", "mae")
"""Score kinds of every architecture; ``elbo`` (`seismo.models.detector.SCORES`) also
needs a module with a row penalty, such as the VAE."""


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_positive_int(name: str, value: object) -> None:
    if not _is_int(value) or value <= 0:  # type: ignore[operator]
        raise SeismoError(f"{name} must be a positive integer, got {value!r}")


def _check_activation(name: str, value: object) -> None:
    if value not in ACTIVATIONS:
        known = ", ".join(ACTIVATIONS)
        raise SeismoError(f"{name} {value!r} is not one of: {known}")


def _check_non_negative(name: str, value: object) -> None:
    if not _is_real(value) or value < 0:  # type: ignore[operator]
        raise SeismoError(f"{name} must be a finite number >= 0, got {value!r}")


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise SeismoError(f"{name} {value!r} is not one of: {', '.join(choices)}")


def _known_fields(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise SeismoError(f"unknown {cls.__name__} field(s): {', '.join(unknown)}")
    return {k: v for k, v in data.items() if k in names}


def default_hidden(n_features: int) -> tuple[int, ...]:
    """Pick hidden layer widths for a dense autoencoder of ``n_features`` inputs.

    The bottleneck is ``clamp(n_features // 2, 1, 32)``: narrower than the
    input (so the model cannot learn the identity) but wide enough for the
    few latent factors that drive correlated sensor channels. The first hidden
    layer is ``clamp(2 * n_features, 16, 256)``, overcomplete for small inputs,
    which trains faster and more reliably.

    Parameters
    ----------
    n_features : int
        Number of input features ``d``.

    Returns
    -------
    tuple of int
        ``(first, bottleneck)``.

    Examples
    --------
    >>> default_hidden(8)
    (16, 4)
    >>> default_hidden(16)
    (32, 8)
    >>> default_hidden(21)
    (42, 10)
    >>> default_hidden(784)
    (256, 32)
    >>> default_hidden(3)
    (16, 1)
    """
    _check_positive_int("n_features", n_features)
    bottleneck = min(max(n_features // 2, 1), 32)
    first = min(max(2 * n_features, 16), 256)
    return (first, bottleneck)


@dataclass(frozen=True)
class DenseConfig:
    """Architecture of a fully connected autoencoder.

    Parameters
    ----------
    n_features : int
        Input and output width ``d``.
    hidden : tuple of int
        Encoder widths, outermost first; the last is the (linear) bottleneck.
        The decoder mirrors them back to ``n_features``.
    activation : str
        Activation between hidden layers, one of `ACTIVATIONS`.
    output_activation : str or None
        Optional activation on the reconstruction; ``None`` keeps it linear,
        which suits standardised inputs.
    """

    arch: ClassVar[str] = "dense"

    n_features: int
    hidden: tuple[int, ...]
    activation: str = "relu"
    output_activation: str | None = None

    def __post_init__(self) -> None:
        _check_positive_int("n_features", self.n_features)
        if isinstance(self.hidden, list):
            object.__setattr__(self, "hidden", tuple(self.hidden))
        if not isinstance(self.hidden, tuple) or not self.hidden:
            raise SeismoError(f"hidden must be a non-empty tuple of widths, got {self.hidden!r}")
        for width in self.hidden:
            _check_positive_int("hidden layer width", width)
        _check_activation("activation", self.activation)
        if self.output_activation is not None:
            _check_activation("output_activation", self.output_activation)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict; `from_dict` reverses it."""
        data = asdict(self)
        data["hidden"] = list(self.hidden)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DenseConfig:
        """Build a config from `to_dict` output; raises `SeismoError` if invalid."""
        kwargs = _known_fields(cls, data)
        if isinstance(kwargs.get("hidden"), list):
            kwargs["hidden"] = tuple(kwargs["hidden"])
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise SeismoError(f"invalid {cls.__name__}: {exc}") from exc


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of `seismo.models.training.train_autoencoder`.

    Parameters
    ----------
    epochs : int
        Upper bound on passes over the training rows. Training data taken
        from a live stream holds some anomalies, and the longer an
        autoencoder trains on every row the better it learns to reconstruct
        them too, which hides them; the trimmed loss (``trim_share``) is what
        makes a longer fit safe. The default, 20, with ``trim_share`` 0.3,
        was chosen on the ODDS protocol (``docs/protocol.md``, "Variants
        tried"): 5 epochs (the earlier default) underfits sets whose
        outliers differ in fine structure (letter, vowels).
    batch_size : int
        Rows per optimiser step.
    lr : float
        Adam learning rate.
    weight_decay : float
        Adam L2 penalty.
    val_fraction : float
        Share of rows held out, in ``(0, 1)``; they drive early stopping and the
        calibration of the score.
    patience : int
        Stop after this many epochs without a lower validation loss.
    seed : int
        Seeds torch and the shuffling, so a run is repeatable on one device.
    loss : str
        Training loss, one of `LOSSES`.
    scaling : str
        Feature scaling fitted on the training rows, one of `SCALINGS`.
    scale_floor : float
        With ``standard`` scaling, the smallest scale of a feature as a share
        of its mean's magnitude (see `seismo.models.scaler.StandardScaler.fit`); 0
        keeps the plain standard deviation.
    trim_share : float
        Share of each minibatch, in ``[0, 0.5]``, left out of the loss: the
        rows whose reconstruction loss is highest (a trimmed loss, robust to
        the anomalies that training data taken from a stream holds). 0 trains
        on every row. Set it above the share of anomalies the training data
        may hold; clean data loses little by it (the worst-fitting normal
        rows still shape the model in the batches where they are not the
        worst). The default, 0.3, was chosen on the ODDS protocol
        (``docs/protocol.md``).
    refit_share : float
        Share of the training rows, in ``[0, 0.5]``, dropped before a second
        fit: the model is trained, scores its own training rows, and a fresh
        model (same seed) is trained without the highest-scored ``refit_share``
        of them. 0 (the default) trains once; on the ODDS protocol a refit
        did not help (``docs/protocol.md``).
    neighbours : int
        Reference rows of the k-nearest-neighbour term
        (:mod:`seismo.models.terms.neighbours`): a row's score adds its squared
        distance to the ``neighbour_k``-th nearest of that many sampled training
        rows, both terms over their training medians. 0 scores by the
        reconstruction error alone. The default, 2048, was chosen on the ODDS
        protocol (``docs/protocol.md``); it costs a ``(batch, 2048)`` matrix
        product per batch (``seismo bench --neighbours 2048`` measures it). Window models
        (``seismo train --window``), ``--clean`` and the time-series benchmarks use 0.
    neighbour_k : int
        Which neighbour the distance is to (PyOD's kNN default, 5).
    range_term : bool
        Add to each feature's error how far its standardised value lies beyond
        the range it spanned on the training rows (squared, for the ``mse``
        score; :mod:`seismo.models.terms.training_range`). Off by default: on
        training rows that hold anomalies the range spans them and the term
        changed nothing on the ODDS protocol; ``seismo train --clean`` turns it
        on (chosen on the protocol's clean setting, ``docs/protocol.md``).

    Examples
    --------
    >>> TrainConfig(epochs=5).epochs
    5
    >>> TrainConfig(val_fraction=1.0)
    Traceback (most recent call last):
    ...
    seismo.models.errors.SeismoError: val_fraction must be in (0, 1), got 1.0
    """

    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    val_fraction: float = 0.1
    patience: int = 8
    seed: int = 0
    loss: str = "mse"
    scaling: str = "standard"
    scale_floor: float = 0.0
    trim_share: float = 0.3
    refit_share: float = 0.0
    neighbours: int = 2048
    neighbour_k: int = 5
    range_term: bool = False

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "patience", "neighbour_k"):
            _check_positive_int(name, getattr(self, name))
        if not _is_int(self.seed) or self.seed < 0:
            raise SeismoError(f"seed must be a non-negative integer, got {self.seed!r}")
        if not _is_real(self.lr) or self.lr <= 0:
            raise SeismoError(f"lr must be a positive number, got {self.lr!r}")
        if not _is_real(self.weight_decay) or self.weight_decay < 0:
            raise SeismoError(f"weight_decay must be a number >= 0, got {self.weight_decay!r}")
        if not _is_real(self.val_fraction) or not 0 < self.val_fraction < 1:
            raise SeismoError(f"val_fraction must be in (0, 1), got {self.val_fraction!r}")
        if self.loss not in LOSSES:
            raise SeismoError(f"loss {self.loss!r} is not one of: {', '.join(LOSSES)}")
        if self.scaling not in SCALINGS:
            raise SeismoError(f"scaling {self.scaling!r} is not one of: {', '.join(SCALINGS)}")
        if not _is_real(self.scale_floor) or not 0 <= self.scale_floor < 1:
            raise SeismoError(f"scale_floor must be in [0, 1), got {self.scale_floor!r}")
        for name in ("trim_share", "refit_share"):
            value = getattr(self, name)
            if not _is_real(value) or not 0 <= value <= 0.5:
                raise SeismoError(f"{name} must be in [0, 0.5], got {value!r}")
        if not _is_int(self.neighbours) or self.neighbours < 0:
            raise SeismoError(f"neighbours must be an integer >= 0, got {self.neighbours!r}")
        if not isinstance(self.range_term, bool):
            raise SeismoError(f"range_term must be true or false, got {self.range_term!r}")

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict; `from_dict` reverses it."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Build a config from `to_dict` output; raises `SeismoError` if invalid."""
        return cls(**_known_fields(cls, data))
