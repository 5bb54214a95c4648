"""What the sequence autoencoders (conv1d, lstm) share: row layout and config checks.

Sequence models still take the detector's flattened rows ``(n, d)``, with
``d = window * channels`` in **time-major** order::

    row[t * channels + c] == value of channel c at time step t

A module reshapes rows to windows ``(n, window, channels)`` with `to_windows`
on the way in and flattens its reconstruction back with `to_rows`, so the
detector, training, artifacts and the scorer are the same for every
architecture, and per-feature errors keep pointing at ``(t, c)``.

Examples
--------
>>> import torch
>>> rows = torch.arange(12.0).reshape(2, 6)   # 2 rows, window 3, channels 2
>>> windows = to_windows(rows, window=3, channels=2)
>>> windows.shape
torch.Size([2, 3, 2])
>>> windows[0, 2, 1] == rows[0, 2 * 2 + 1]
tensor(True)
>>> torch.equal(to_rows(windows), rows)
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, TypeVar

import torch

from seismo.models.config import (
    RECONSTRUCTION_SCORES,
    _check_choice,
    _check_positive_int,
    _known_fields,
)
from seismo.models.errors import SeismoError


class _Shaped(Protocol):
    @property
    def n_features(self) -> int: ...


C = TypeVar("C", bound=_Shaped)


def to_windows(x: torch.Tensor, window: int, channels: int) -> torch.Tensor:
    """Reshape flattened rows ``(n, window * channels)`` to ``(n, window, channels)``.

    Raises
    ------
    SeismoError
        If ``x`` is not 2-D with ``window * channels`` columns.
    """
    if x.ndim != 2 or x.shape[1] != window * channels:
        raise SeismoError(
            f"expected rows of shape (n, {window * channels}) = (n, window {window} x "
            f"channels {channels}), got {tuple(x.shape)}"
        )
    return x.reshape(x.shape[0], window, channels)


def to_rows(windows: torch.Tensor) -> torch.Tensor:
    """Flatten windows ``(n, window, channels)`` to time-major rows ``(n, window * channels)``."""
    return windows.reshape(windows.shape[0], -1)


def check_sequence_fields(window: object, channels: object, score: object) -> None:
    """Validate the fields every sequence config has; raise `SeismoError` if invalid.

    ``score`` is one of `seismo.models.config.RECONSTRUCTION_SCORES` (no ``elbo``:
    sequence modules have no row penalty).

    Examples
    --------
    >>> check_sequence_fields(16, 3, "mse")
    >>> check_sequence_fields(16, 0, "mse")
    Traceback (most recent call last):
    ...
    seismo.models.errors.SeismoError: channels must be a positive integer, got 0
    """
    _check_positive_int("window", window)
    _check_positive_int("channels", channels)
    _check_choice("score", score, RECONSTRUCTION_SCORES)


def sequence_config_from_dict(
    cls: type[C], data: Mapping[str, Any], tuple_fields: tuple[str, ...] = ()
) -> C:
    """Build a sequence config ``cls`` from its ``to_dict`` output.

    ``n_features`` is derived (``window * channels``), not a field: `to_dict`
    records it for readers of ``config.json``, and here it is accepted only if
    it agrees with the window and channels. Lists named in ``tuple_fields``
    become tuples (JSON has no tuples). Unknown or missing fields raise
    `SeismoError`.
    """
    if not isinstance(data, Mapping):
        raise SeismoError(f"{cls.__name__} needs a mapping, got {type(data).__name__}")
    stated = data.get("n_features")
    kwargs = _known_fields(cls, {k: v for k, v in data.items() if k != "n_features"})
    for name in tuple_fields:
        if isinstance(kwargs.get(name), list):
            kwargs[name] = tuple(kwargs[name])
    try:
        config = cls(**kwargs)
    except TypeError as exc:
        raise SeismoError(f"invalid {cls.__name__}: {exc}") from exc
    derived = config.n_features
    if stated is not None and stated != derived:
        raise SeismoError(f"{cls.__name__} n_features {stated!r} != window x channels = {derived}")
    return config
