"""An evaluation report: PNG plots and an ``index.html`` that shows them.

Needs matplotlib (``pip install 'seismo[report]'``); importing this module
without it raises a one-line `~seismo.models.errors.ReportError`. Figures are drawn
on `matplotlib.figure.Figure` objects and saved with the Agg renderer, never
through pyplot's global state, so writing a report is safe in any process.

Files written to the report directory:

===========================  ==================================================
``scores_histogram.png``     reconstruction error by label, threshold line
``roc_curve.png``            ROC curve with its area
``pr_curve.png``             precision-recall curve with average precision
``latent_scatter.png``       2-D PCA of bottleneck codes, coloured by label
``images_extremes.png``      (image rows) best/worst reconstructed per class
``images_pairs.png``         (image rows) originals above their reconstructions
``index.html``               the metrics, confusion matrix, report and plots
===========================  ==================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from seismo.models.errors import ReportError
from seismo.models.eval.metrics import Evaluation, pr_curve, roc_curve
from seismo.models.eval.report_html import Figure as HtmlFigure
from seismo.models.eval.report_html import render_index
from seismo.models.reconstruction import Gallery, pca_2d

try:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
except ImportError as exc:  # pragma: no cover - exercised by faking the import
    raise ReportError(
        "writing an evaluation report needs matplotlib: pip install 'seismo[report]'"
    ) from exc

#: Colours of the normal (0) and anomaly (1) classes.
COLOURS = ("tab:blue", "tab:red")
LABELS = ("normal (0)", "anomaly (1)")
#: Most points drawn in the latent scatter (a random subset beyond this).
MAX_SCATTER = 5000
DPI = 110


def _save(figure: Figure, path: Path) -> Path:
    figure.tight_layout()
    try:
        figure.savefig(path, format="png", dpi=DPI)
    except OSError as exc:
        raise ReportError(f"cannot write {path}: {exc}") from exc
    return path


def spans_decades(scores: np.ndarray, decades: float = 2.0) -> bool:
    """True when positive ``scores`` span more than ``decades`` powers of ten.

    >>> spans_decades(np.array([0.01, 5.0])), spans_decades(np.array([1.0, 20.0]))
    (True, False)
    """
    low, high = float(np.min(scores)), float(np.max(scores))
    return low > 0 and bool(np.log10(high / low) > decades)


def plot_histogram(path: Path, scores: np.ndarray, y: np.ndarray, threshold: float) -> Path:
    """Reconstruction errors (n,) split by label (n,), threshold as a vertical line."""
    figure = Figure(figsize=(7, 4))
    ax = figure.add_subplot()
    log = spans_decades(scores)
    low, high = float(scores.min()), float(scores.max())
    if log:
        bins = np.geomspace(low, high, 60)
        ax.set_xscale("log")
    else:
        bins = np.linspace(low, high if high > low else low + 1.0, 60)
    for label in (0, 1):
        ax.hist(scores[y == label], bins=list(bins), alpha=0.55, color=COLOURS[label],
                label=f"{LABELS[label]}: {int(np.sum(y == label))}")
    ax.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.4g}")
    ax.set(xlabel="reconstruction error" + (" (log scale)" if log else ""), ylabel="rows",
           title="Reconstruction error by label")
    ax.legend()
    return _save(figure, path)


def plot_roc(path: Path, y: np.ndarray, scores: np.ndarray, auc: float) -> Path:
    """ROC curve of scores (n,) against labels (n,), chance diagonal included."""
    fpr, tpr, _ = roc_curve(y, scores)
    figure = Figure(figsize=(5, 5))
    ax = figure.add_subplot()
    ax.plot(fpr, tpr, color="tab:red", label=f"ROC-AUC {auc:.4f}")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve",
           xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right")
    return _save(figure, path)


def plot_pr(path: Path, y: np.ndarray, scores: np.ndarray, ap: float) -> Path:
    """Precision-recall curve (step-wise, as average precision sums it)."""
    precision, recall, _ = pr_curve(y, scores)
    figure = Figure(figsize=(5, 5))
    ax = figure.add_subplot()
    ax.step(recall, precision, where="post", color="tab:red", label=f"average precision {ap:.4f}")
    ax.axhline(float(np.mean(y)), color="grey", linestyle=":", label="chance (anomaly share)")
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall curve",
           xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower left")
    return _save(figure, path)


def plot_latent(path: Path, codes: np.ndarray, y: np.ndarray, seed: int = 0) -> Path:
    """Bottleneck codes (n, k) in 2-D (PCA when k > 2), coloured by label (n,)."""
    xy, share = pca_2d(codes)
    keep = np.arange(len(y))
    if len(keep) > MAX_SCATTER:
        keep = np.sort(np.random.default_rng(seed).choice(len(y), MAX_SCATTER, replace=False))
    figure = Figure(figsize=(6, 5))
    ax = figure.add_subplot()
    for label in (0, 1):
        rows = keep[y[keep] == label]
        ax.scatter(xy[rows, 0], xy[rows, 1], s=6, alpha=0.6, color=COLOURS[label],
                   label=LABELS[label])
    how = "PCA of the codes" if codes.shape[1] > 2 else "the codes"
    ax.set(xlabel=f"axis 1 ({share[0]:.0%} of variance)",
           ylabel=f"axis 2 ({share[1]:.0%} of variance)",
           title=f"Latent space ({codes.shape[1]}-d bottleneck, {how})")
    ax.legend(markerscale=3)
    return _save(figure, path)


def _pixel_range(gallery: Gallery) -> tuple[float, float]:
    """One grey scale for every image: the range of the originals."""
    values = np.concatenate([p[0].ravel() for p in gallery.panels.values()])
    return float(values.min()), float(values.max())


def _show(ax: Axes, row: np.ndarray, gallery: Gallery, caption: str) -> None:
    low, high = _pixel_range(gallery)
    ax.imshow(row.reshape(gallery.shape), cmap="gray", vmin=low, vmax=high)
    ax.set_title(caption, fontsize=7)
    ax.set_xticks([])
    ax.set_yticks([])


def _blank_rest(line: np.ndarray, used: int) -> None:
    for ax in line[used:]:
        ax.axis("off")


def plot_extremes(path: Path, gallery: Gallery) -> Path:
    """One row of images per gallery panel, each captioned with its score."""
    columns = max(len(p[2]) for p in gallery.panels.values())
    figure = Figure(figsize=(1.2 * columns + 1, 1.5 * len(gallery.panels)))
    axes = figure.subplots(len(gallery.panels), columns, squeeze=False)
    for line, (name, (originals, _, scores)) in zip(axes, gallery.panels.items(), strict=True):
        for col in range(len(scores)):
            _show(line[col], originals[col], gallery, f"{scores[col]:.3g}")
        _blank_rest(line, len(scores))
        line[0].set_ylabel(name, fontsize=7)
    figure.suptitle("Best and worst reconstructed rows per class (score above each)")
    return _save(figure, path)


def plot_pairs(path: Path, gallery: Gallery, per_panel: int = 6) -> Path:
    """Per gallery panel, a row of originals above a row of their reconstructions."""
    columns = min(per_panel, max(len(p[2]) for p in gallery.panels.values()))
    figure = Figure(figsize=(1.2 * columns + 1, 3.0 * len(gallery.panels)))
    axes = figure.subplots(2 * len(gallery.panels), columns, squeeze=False)
    for i, (name, (originals, recon, scores)) in enumerate(gallery.panels.items()):
        top, bottom = axes[2 * i], axes[2 * i + 1]
        shown = min(columns, len(scores))
        for col in range(shown):
            _show(top[col], originals[col], gallery, f"{scores[col]:.3g}")
            _show(bottom[col], recon[col], gallery, "")
        _blank_rest(top, shown)
        _blank_rest(bottom, shown)
        top[0].set_ylabel(f"{name}\noriginal", fontsize=7)
        bottom[0].set_ylabel("reconstruction", fontsize=7)
    figure.suptitle("Originals (score above) and their reconstructions")
    return _save(figure, path)


def write_report(
    out_dir: str | os.PathLike[str],
    evaluation: Evaluation,
    *,
    y: np.ndarray,
    scores: np.ndarray,
    codes: np.ndarray | None = None,
    gallery: Gallery | None = None,
    title: str = "seismo evaluation",
    details: Mapping[str, str] | None = None,
) -> Path:
    """Write every plot that the inputs allow plus ``index.html``; return the html path.

    Parameters
    ----------
    out_dir : path
        Created if missing; files in it with the same names are replaced.
    evaluation : Evaluation
        The metrics to show.
    y, scores : numpy.ndarray
        ``(n,)`` labels (0/1) and scores (higher = more anomalous).
    codes : numpy.ndarray, optional
        ``(n, k)`` bottleneck codes for the latent scatter.
    gallery : Gallery, optional
        Image rows for the image grids.
    title, details : str, mapping of str to str
        Page heading and key/value lines under it (model, data, ...).
    """
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"cannot create report directory {out}: {exc}") from exc
    y, scores = np.asarray(y).astype(np.int64), np.asarray(scores, dtype=np.float64)
    figures = [
        HtmlFigure(plot_histogram(out / "scores_histogram.png", scores, y, evaluation.threshold),
                   "Reconstruction error by label; dashed line: the threshold."),
        HtmlFigure(plot_roc(out / "roc_curve.png", y, scores, evaluation.roc_auc), "ROC curve."),
        HtmlFigure(plot_pr(out / "pr_curve.png", y, scores, evaluation.pr_auc),
                   "Precision-recall curve."),
    ]
    if codes is not None:
        figures.append(HtmlFigure(plot_latent(out / "latent_scatter.png", codes, y),
                                  "Bottleneck codes in 2-D, coloured by label."))
    if gallery is not None and gallery.panels:
        figures.append(HtmlFigure(plot_extremes(out / "images_extremes.png", gallery),
                                  "Best- and worst-reconstructed rows of each class."))
        figures.append(HtmlFigure(plot_pairs(out / "images_pairs.png", gallery),
                                  "Originals and their reconstructions."))
    index = out / "index.html"
    try:
        index.write_text(render_index(title, evaluation, figures, details), encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"cannot write {index}: {exc}") from exc
    return index
