"""PyOD's benchmark protocol on labelled outlier sets (ODDS), as plain functions.

For every data set and seed: a seeded, stratified 60/40 train/test split;
standardisation with the statistics of the training split; each detector
trained **unsupervised on the whole training split, outliers included**;
the test split scored (higher = more anomalous) and ranked against its
labels by ROC-AUC and average precision (PR-AUC). Every detector sees the
same split. File reading and writing lives in ``seismo.stream.bench.odds``;
the PyOD adapters in `seismo.models.eval.odds_detectors`.

Examples
--------
>>> y = np.array([0] * 8 + [1] * 2)
>>> train, test = stratified_split(y, seed=0)
>>> len(train), len(test), int(y[train].sum()), int(y[test].sum())
(6, 4, 1, 1)
>>> x = np.random.default_rng(0).normal(size=(10, 3))
>>> x[y == 1] += 5
>>> data = {"toy": (x, y)}
>>> runs = run_benchmark(data, {"norm": lambda _x, _s: _norm}, seeds=[0, 1])
>>> [(r.dataset, r.detector, r.seed, r.roc_auc) for r in runs]
[('toy', 'norm', 0, 1.0), ('toy', 'norm', 1, 1.0)]
>>> summarise(runs)[0].roc_auc_mean
1.0
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from seismo.models.errors import DataError
from seismo.models.eval.metrics import pr_auc, roc_auc

ScoreFn = Callable[[np.ndarray], np.ndarray]
"""Scores rows ``(n, d)`` -> ``(n,)``, higher = more anomalous."""

FitFn = Callable[[np.ndarray, int], ScoreFn]
"""``fit(x_train, seed)`` trains a detector on ``(n, d)`` rows and returns its `ScoreFn`."""

Progress = Callable[["Run"], None]

TRAIN_FRACTION = 0.6
"""Share of each class that goes to the training split (PyOD's benchmark uses 60/40)."""

DATASETS: dict[str, str] = {
    "arrhythmia": "arrhythmia",
    "breastw": "4_breastw",
    "cardio": "6_cardio",
    "ionosphere": "18_Ionosphere",
    "letter": "20_letter",
    "mammography": "23_mammography",
    "mnist": "24_mnist",
    "musk": "25_musk",
    "optdigits": "26_optdigits",
    "pima": "29_Pima",
    "satimage-2": "31_satimage-2",
    "shuttle": "32_shuttle",
    "vowels": "40_vowels",
    "wbc": "wbc",
}
"""Default data sets: short name -> file stem of the ``.npz`` (keys ``X``, ``y``), in name order.

Every distinct set of ``../shared/data/odds`` (its ``SOURCES.md``), each once:
the ADBench ``Classical`` files, and three ODDS sets converted from PyOD's
``.mat``. Left out as duplicates: ODDS ``ionosphere`` (the same rows and
labels as ADBench ``18_Ionosphere``, scaled differently) and ADBench
``42_WBC`` (223 rows of the original Wisconsin breast-cancer data, which
``4_breastw`` holds in full; were both in, one half of the protocol would be
tuned on rows the other half reports). ``wbc`` is ODDS's Wisconsin
*Diagnostic* set, a different data set despite the name."""


def _norm(x: np.ndarray) -> np.ndarray:
    """Row norm; a stand-in detector for the examples."""
    return np.asarray(np.linalg.norm(x, axis=1))


@dataclass(frozen=True)
class Run:
    """One detector on one split of one data set."""

    dataset: str
    detector: str
    seed: int
    roc_auc: float
    pr_auc: float
    seconds: float


@dataclass(frozen=True)
class Summary:
    """Mean and (population) standard deviation over the seeds of one data set and detector."""

    dataset: str
    detector: str
    n_seeds: int
    roc_auc_mean: float
    roc_auc_std: float
    pr_auc_mean: float
    pr_auc_std: float
    seconds_mean: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of the fields."""
        return asdict(self)


def stratified_split(
    y: np.ndarray, seed: int, train_fraction: float = TRAIN_FRACTION
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split keeping each class's share: ``round(train_fraction * n_c)`` rows per class.

    Parameters
    ----------
    y : numpy.ndarray
        Shape ``(n,)``, class labels (0 = inlier, 1 = outlier).
    seed : int
        Seeds a `numpy.random.default_rng`; the same seed gives the same split.
    train_fraction : float
        In ``(0, 1)``.

    Returns
    -------
    tuple of numpy.ndarray
        ``(train_idx, test_idx)``, sorted row indexes that together cover ``range(n)``.
    """
    labels = np.asarray(y)
    if labels.ndim != 1:
        raise DataError(f"labels must be 1-D, got shape {labels.shape}")
    if not 0 < train_fraction < 1:
        raise DataError(f"train_fraction must be in (0, 1), got {train_fraction}")
    rng = np.random.default_rng(seed)
    train_parts = []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        train_parts.append(members[: round(train_fraction * len(members))])
    train = np.sort(np.concatenate(train_parts))
    test = np.setdiff1d(np.arange(len(labels)), train)
    return train, test


def standardise(x_train: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Z-score both splits with the training split's mean and std (constant columns: std 1).

    >>> a, b = standardise(np.array([[0.0, 1.0], [2.0, 1.0]]), np.array([[4.0, 3.0]]))
    >>> a.tolist(), b.tolist()
    ([[-1.0, 0.0], [1.0, 0.0]], [[3.0, 2.0]])
    """
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std[std == 0] = 1.0
    return (x_train - mean) / std, (x_test - mean) / std


def evaluate_split(
    x: np.ndarray, y: np.ndarray, seed: int, fit: FitFn, inliers_only: bool = False
) -> tuple[float, float, float]:
    """Split, standardise, fit on the training split, score the test split.

    With ``inliers_only`` (the clean setting) the training split's outliers are
    dropped before standardising and fitting; the test split is scored whole.
    Returns ``(roc_auc, pr_auc, seconds)`` on the test split; ``seconds`` counts
    fitting and scoring.
    """
    train, test = stratified_split(y, seed)
    if inliers_only:
        train = train[y[train] == 0]
    x_train, x_test = standardise(x[train].astype(np.float64), x[test].astype(np.float64))
    started = time.perf_counter()
    scores = np.asarray(fit(x_train, seed)(x_test), dtype=np.float64).ravel()
    seconds = time.perf_counter() - started
    return roc_auc(y[test], scores), pr_auc(y[test], scores), seconds


def run_benchmark(
    data: Mapping[str, tuple[np.ndarray, np.ndarray]],
    detectors: Mapping[str, FitFn],
    seeds: Iterable[int],
    progress: Progress | None = None,
    inliers_only: bool = False,
) -> list[Run]:
    """Every detector on every seed's split of every data set (same split for all detectors).

    Parameters
    ----------
    data : mapping
        Name -> ``(X (n, d), y (n,))`` with labels 0/1.
    detectors : mapping
        Name -> `FitFn`.
    seeds : iterable of int
        One split (and detector seed) per value.
    progress : callable, optional
        Called with each `Run` as it finishes.
    inliers_only : bool
        Train on the training split's inliers only (`evaluate_split`).
    """
    seed_list = list(seeds)
    runs = []
    for dataset, (x, y) in data.items():
        labels = np.asarray(y).astype(np.int64).ravel()
        for seed in seed_list:
            for name, fit in detectors.items():
                try:
                    roc, pr, seconds = evaluate_split(np.asarray(x), labels, seed, fit,
                                                      inliers_only)  # fmt: skip
                except DataError as exc:  # e.g. a detector's NaN scores: say where
                    raise DataError(f"{dataset}, seed {seed}, {name}: {exc}") from exc
                run = Run(dataset, name, seed, roc, pr, seconds)
                runs.append(run)
                if progress is not None:
                    progress(run)
    return runs


def summarise(runs: Sequence[Run]) -> list[Summary]:
    """Mean ± std over seeds per (data set, detector), in first-seen order."""
    groups: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.dataset, run.detector), []).append(run)
    out = []
    for (dataset, detector), members in groups.items():
        roc = np.array([r.roc_auc for r in members])
        pr = np.array([r.pr_auc for r in members])
        seconds = np.array([r.seconds for r in members])
        out.append(
            Summary(
                dataset=dataset,
                detector=detector,
                n_seeds=len(members),
                roc_auc_mean=float(roc.mean()),
                roc_auc_std=float(roc.std()),
                pr_auc_mean=float(pr.mean()),
                pr_auc_std=float(pr.std()),
                seconds_mean=float(seconds.mean()),
            )
        )
    return out


def _cell(mean: float, std: float, best: bool) -> str:
    text = f"{mean:.3f} ± {std:.3f}"
    return f"**{text}**" if best else text


def _wide(summaries: Sequence[Summary], metric: str) -> list[str]:
    """One row per data set, one column per detector; the best mean in bold."""
    detectors = list(dict.fromkeys(s.detector for s in summaries))
    datasets = list(dict.fromkeys(s.dataset for s in summaries))
    cells = {(s.dataset, s.detector): s for s in summaries}
    lines = [
        "| dataset | " + " | ".join(detectors) + " |",
        "|---" * (len(detectors) + 1) + "|",
    ]
    for dataset in datasets:
        present = [cells[(dataset, d)] for d in detectors if (dataset, d) in cells]
        top = max(getattr(s, f"{metric}_mean") for s in present)
        row = []
        for detector in detectors:
            s = cells.get((dataset, detector))
            if s is None:
                row.append("")
                continue
            mean, std = getattr(s, f"{metric}_mean"), getattr(s, f"{metric}_std")
            row.append(_cell(mean, std, mean == top))
        lines.append(f"| {dataset} | " + " | ".join(row) + " |")
    return lines


def markdown_tables(summaries: Sequence[Summary]) -> str:
    """ROC-AUC and PR-AUC tables (data set x detector, mean ± std) and a seconds table.

    >>> s = [Summary("toy", "a", 2, 0.9, 0.01, 0.5, 0.02, 1.25)]
    >>> print(markdown_tables(s))
    ROC-AUC (mean ± std over seeds; best per row in bold):
    <BLANKLINE>
    | dataset | a |
    |---|---|
    | toy | **0.900 ± 0.010** |
    <BLANKLINE>
    PR-AUC (average precision):
    <BLANKLINE>
    | dataset | a |
    |---|---|
    | toy | **0.500 ± 0.020** |
    <BLANKLINE>
    Seconds per split (fit + score, mean over seeds):
    <BLANKLINE>
    | dataset | a |
    |---|---|
    | toy | 1.2 |
    """
    detectors = list(dict.fromkeys(s.detector for s in summaries))
    datasets = list(dict.fromkeys(s.dataset for s in summaries))
    seconds = {(s.dataset, s.detector): s.seconds_mean for s in summaries}
    timing = [
        "| dataset | " + " | ".join(detectors) + " |",
        "|---" * (len(detectors) + 1) + "|",
    ]
    for dataset in datasets:
        row = [f"{seconds[(dataset, d)]:.1f}" if (dataset, d) in seconds else "" for d in detectors]
        timing.append(f"| {dataset} | " + " | ".join(row) + " |")
    parts = [
        "ROC-AUC (mean ± std over seeds; best per row in bold):",
        "",
        *_wide(summaries, "roc_auc"),
        "",
        "PR-AUC (average precision):",
        "",
        *_wide(summaries, "pr_auc"),
        "",
        "Seconds per split (fit + score, mean over seeds):",
        "",
        *timing,
    ]
    return "\n".join(parts)
