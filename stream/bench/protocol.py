"""The protocol that keeps a benchmark from fitting its test (``docs/protocol.md``).

Every default is chosen on a *tuning* part of the shared data and reported
on an *evaluation* part it was not chosen on; then the parts swap. A part
is a whole group of files, never rows of one file, so nothing of the
evaluation part leaks into the tuning part:

- NAB: by category (``realKnownCause``, ``artificialWithAnomaly``, ...):
  the evaluation part is one category, the tuning part the others (leave one
  category out);
- ODDS/ADBench: by data set, the sets sorted by name and dealt alternately
  into two halves; fold 0 tunes on the first half, fold 1 on the second;
- SKAB: by experiment folder (``valve1``, ``valve2``, ``other``), as NAB.

``--split all`` keeps everything (the figures of earlier releases).

>>> keys = ["artificialWithAnomaly/a.csv", "realKnownCause/b.csv", "realKnownCause/c.csv"]
>>> select(keys, group_of_path, "eval", holdout="realKnownCause")
['realKnownCause/b.csv', 'realKnownCause/c.csv']
>>> select(keys, group_of_path, "tune", holdout="realKnownCause")
['artificialWithAnomaly/a.csv']
>>> halves(["mnist", "cardio", "shuttle", "optdigits"], fold=0)
(['cardio', 'optdigits'], ['mnist', 'shuttle'])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, TypeVar

from seismo.stream.errors import ConfigError

Split = Literal["tune", "eval", "all"]
SPLITS: tuple[Split, ...] = ("tune", "eval", "all")
T = TypeVar("T")


def group_of_path(key: str) -> str:
    """The folder of a ``folder/file`` key: a NAB category, a SKAB experiment folder.

    >>> group_of_path("realKnownCause/nyc_taxi.csv")
    'realKnownCause'
    """
    return key.split("/", 1)[0]


def select(items: Sequence[T], group_of: Callable[[T], str], split: Split,
           holdout: str | None) -> list[T]:  # fmt: skip
    """The items of one part: ``eval`` holds the ``holdout`` group, ``tune`` the others.

    Raises
    ------
    ConfigError
        For an unknown split, a missing holdout, or a holdout no item belongs to.
    """
    if split not in SPLITS:
        raise ConfigError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    if split == "all":
        return list(items)
    groups = sorted({group_of(i) for i in items})
    if holdout is None:
        raise ConfigError(f"--split {split} needs --holdout, one of {', '.join(groups)}")
    if holdout not in groups:
        raise ConfigError(f"--holdout {holdout!r} is none of {', '.join(groups)}")
    chosen = [i for i in items if (group_of(i) == holdout) == (split == "eval")]
    if not chosen:
        raise ConfigError(f"--split {split} with --holdout {holdout} leaves nothing to run")
    return chosen


def halves(names: Sequence[str], fold: int) -> tuple[list[str], list[str]]:
    """``(tune, eval)``: the names sorted and dealt alternately; fold 1 swaps the halves.

    >>> halves(["a", "b", "c"], fold=1)
    (['b'], ['a', 'c'])
    """
    if fold not in (0, 1):
        raise ConfigError(f"--fold must be 0 or 1, got {fold}")
    ordered = sorted(names)
    first, second = ordered[0::2], ordered[1::2]
    return (first, second) if fold == 0 else (second, first)


def select_sets(names: Sequence[str], split: Split, fold: int) -> list[str]:
    """The data sets of one part of the ODDS protocol (see :func:`halves`).

    >>> select_sets(["cardio", "mnist", "shuttle"], "eval", fold=0)
    ['mnist']
    """
    if split not in SPLITS:
        raise ConfigError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    if split == "all":
        return list(names)
    tune, evaluation = halves(names, fold)
    return tune if split == "tune" else evaluation
