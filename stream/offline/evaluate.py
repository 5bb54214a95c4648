"""``seismo evaluate``: score a labelled file with a model artifact and report metrics.

The metrics come from `seismo.models.eval.metrics`, the optional HTML/PNG report from
`seismo.models.eval.report` (matplotlib, imported only when ``--report`` is given). With
``--json`` stdout carries exactly one JSON object; everything else (progress,
the report path) goes to stderr.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, cast

import numpy as np
from rich.console import Console
from rich.table import Table as RichTable

from seismo.models.artifact import Artifact, load_artifact
from seismo.models.data import Table, load_table
from seismo.models.errors import DataError
from seismo.models.eval.metrics import Evaluation, ThresholdChoice, evaluate, select_threshold
from seismo.models.reconstruction import build_gallery, image_shape, latent_codes
from seismo.stream.errors import ConfigError

SPACES = ("log", "linear")
THRESHOLDS = ("calibration", "contamination")


def check_options(k: float, threshold_space: str, threshold: str) -> None:
    """Refuse impossible options before any work.

    >>> check_options(3.0, "log", "calibration")
    >>> check_options(3.0, "squared", "calibration")
    Traceback (most recent call last):
    ...
    seismo.stream.errors.ConfigError: --threshold-space must be log or linear, got 'squared'
    """
    if threshold_space not in SPACES:
        raise ConfigError(f"--threshold-space must be log or linear, got {threshold_space!r}")
    if threshold not in THRESHOLDS:
        raise ConfigError(f"--threshold must be calibration or contamination, got {threshold!r}")
    if not math.isfinite(k):
        raise ConfigError(f"--k must be a finite number, got {k!r}")


def labelled_table(data: Path, label_column: str | None, n_features: int) -> Table:
    """Load ``data``; it must hold labels and ``n_features`` feature columns."""
    table = load_table(data, label_column=label_column)
    if table.y is None:
        raise DataError(
            f"evaluation needs labels: {data} has no label array 'y' "
            "(in .npz files) and no --label-column was given (CSV/Parquet)"
        )
    if table.x.shape[1] != n_features:
        raise DataError(
            f"{data} has {table.x.shape[1]} feature columns but the model expects {n_features}"
        )
    return table


def write_html_report(
    out: Path, artifact: Artifact, table: Table, scores: np.ndarray, evaluation: Evaluation,
    shape: tuple[int, int] | None, data: Path,
) -> Path:
    """Plots and ``index.html`` under ``out``; image grids when ``shape`` is known."""
    from seismo.models.eval.report import write_report

    assert table.y is not None
    detector = artifact.detector
    gallery = build_gallery(detector, table.x, table.y, scores, shape) if shape else None
    return write_report(
        out, evaluation, y=table.y, scores=scores, codes=codes_or_none(artifact, table.x),
        gallery=gallery, title=f"seismo evaluation of {artifact.name}",
        details={"model": f"{artifact.name} {artifact.version}", "data": str(data)},
    )


def codes_or_none(artifact: Artifact, x: np.ndarray) -> np.ndarray | None:
    """Bottleneck codes of ``x``, or ``None`` when the architecture has no ``encode``."""
    try:
        return latent_codes(artifact.detector, x)
    except (DataError, NotImplementedError):
        return None


def json_document(evaluation: Evaluation, artifact: Artifact, extra: dict[str, Any]) -> str:
    """One line of JSON: the metrics, the model version and ``extra``."""
    document = {**evaluation.to_json_dict(), "model_version": artifact.version, **extra}
    return json.dumps(document, allow_nan=False)


def print_human(console: Console, evaluation: Evaluation, title: str) -> None:
    """Metrics table, confusion matrix and classification report."""
    metrics = RichTable(title=title, show_header=False)
    for key, value in evaluation.to_json_dict().items():
        if key != "confusion_matrix":
            metrics.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    console.print(metrics)
    c = evaluation.confusion
    matrix = RichTable(title="confusion matrix (rows: true label)")
    for header in ("", "predicted normal", "predicted anomaly"):
        matrix.add_column(header, justify="right")
    matrix.add_row("normal (0)", f"{c.tn} TN", f"{c.fp} FP")
    matrix.add_row("anomaly (1)", f"{c.fn} FN", f"{c.tp} TP")
    console.print(matrix)
    console.print(evaluation.report(), markup=False, highlight=False)


def run_evaluate(
    *,
    model: Path,
    data: Path,
    report: Path | None = None,
    as_json: bool = False,
    label_column: str | None = None,
    k: float = 3.0,
    threshold_space: str = "log",
    threshold: str = "calibration",
    image_shape_text: str | None = None,
    device: str = "auto",
) -> Evaluation:
    """Evaluate ``model`` on the labelled rows of ``data``; print, optionally write a report."""
    check_options(k, threshold_space, threshold)
    if report is not None:
        import seismo.models.eval.report  # noqa: F401  (needs matplotlib: fail before any work)
    artifact = load_artifact(model, device=device)
    shape = image_shape(artifact.n_features, image_shape_text)
    table = labelled_table(data, label_column, artifact.n_features)
    assert table.y is not None
    scores = artifact.detector.score_batch(table.x)
    value, rule = select_threshold(
        artifact.calibration, cast(ThresholdChoice, threshold), k=k, space=threshold_space
    )
    evaluation = evaluate(table.y, scores, threshold=value, threshold_rule=rule)
    index = None
    if report is not None:
        index = write_html_report(report, artifact, table, scores, evaluation, shape, data)
        Console(stderr=True).print(f"wrote report {index}", markup=False, highlight=False)
    if as_json:
        extra = {"data": str(data), "report": str(index) if index else None}
        print(json_document(evaluation, artifact, extra))
    else:
        title = f"{artifact.name} {artifact.version} on {data}"
        print_human(Console(), evaluation, title)
    return evaluation
