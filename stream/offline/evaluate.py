"""``seismo evaluate``: score a labelled file with a model artifact and report metrics.

The metrics come from `seismo.models.eval.metrics`, the optional HTML/PNG report from
`seismo.models.eval.report` (matplotlib, imported only when ``--report`` is given). With
``--json`` stdout carries exactly one JSON object; everything else (progress,
the report path) goes to stderr. With ``--streaming`` the rows are also judged,
in file order, by the scorer's rolling threshold rule
(:mod:`seismo.stream.offline.replay`), and both sets of figures are reported.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
from rich.console import Console
from rich.table import Table as RichTable

from seismo.models.artifact import Artifact, load_artifact
from seismo.models.columns import ColumnSpec, label_like_columns
from seismo.models.data import Table, in_model_order, load_table
from seismo.models.errors import DataError
from seismo.models.eval.metrics import (
    Evaluation,
    ThresholdChoice,
    confusion,
    evaluate,
    select_threshold,
)
from seismo.models.reconstruction import build_gallery, image_shape, latent_codes
from seismo.stream.config.base import check_threshold_factor
from seismo.stream.errors import ConfigError
from seismo.stream.offline.replay import replay_threshold
from seismo.stream.scoring.threshold import ScoreSpace, ThresholdRule

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


def labelled_table(
    data: Path, label_column: str | None, n_features: int,
    channels: Sequence[str] | None = None, columns: ColumnSpec | None = None,
) -> Table:  # fmt: skip
    """Load ``data``; it must hold labels and ``n_features`` feature columns, matched by
    name to the model's ``channels`` (and put in their order) when given."""
    table = load_table(data, label_column=label_column, columns=columns, refuse_times=False)
    if table.y is None:
        named = label_like_columns(table.x, table.feature_names)
        hint = f" (its column {named[0]!r}? give --label-column {named[0]})" if named else ""
        raise DataError(
            f"evaluation needs labels: {data} has no label array 'y' "
            f"(in .npz files) and no --label-column was given (CSV/Parquet){hint}"
        )
    if channels is not None and len(channels) == n_features:
        return in_model_order(table, channels, data)
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


@dataclasses.dataclass(frozen=True)
class Streaming:
    """The scorer's threshold settings that ``--streaming`` replays with."""

    min_samples: int = 1000
    stats_window: int | None = 100_000
    learn_anomalies: bool = False
    batch: int = 1
    max_threshold_factor: float = 10.0


def streaming_settings(
    min_samples: int | None, stats_window: int | None, learn_anomalies: bool | None,
    batch: int = 1, max_threshold_factor: float | None = None,
) -> Streaming:  # fmt: skip
    """The replay's settings: those given, else the scorer's defaults (``ScorerSettings``);
    a ``stats_window`` of 0 is unbounded.

    >>> streaming_settings(None, 0, None)  # doctest: +NORMALIZE_WHITESPACE
    Streaming(min_samples=1000, stats_window=None, learn_anomalies=False, batch=1,
              max_threshold_factor=10.0)
    """
    from seismo.stream.config.settings import ScorerSettings

    fields = ScorerSettings.model_fields
    if batch < 1:
        raise ConfigError(f"--stream-batch must be at least 1, got {batch}")
    if min_samples is not None and min_samples < 0:
        raise ConfigError(f"--min-samples must be 0 or more, got {min_samples}")
    if max_threshold_factor is not None:
        try:
            check_threshold_factor(max_threshold_factor)
        except ValueError as exc:
            raise ConfigError(f"--{str(exc).replace('_', '-')}") from None
    window = fields["stats_window"].default if stats_window is None else stats_window or None
    return Streaming(
        min_samples=fields["min_samples"].default if min_samples is None else min_samples,
        stats_window=window,
        learn_anomalies=(fields["learn_anomalies"].default if learn_anomalies is None
                         else learn_anomalies),
        batch=batch,
        max_threshold_factor=(fields["max_threshold_factor"].default
                              if max_threshold_factor is None else max_threshold_factor),
    )  # fmt: skip


def streaming_evaluation(
    table: Table, scores: np.ndarray, artifact: Artifact, evaluation: Evaluation, k: float,
    space: str, streaming: Streaming,
) -> tuple[Evaluation, dict[str, Any]]:  # fmt: skip
    """``evaluation`` with the rows judged by the rolling threshold rule instead, and
    what the threshold did (first, last, highest)."""
    assert table.y is not None
    rule = ThresholdRule(k=k, min_samples=streaming.min_samples, space=cast(ScoreSpace, space),
                         max_factor=streaming.max_threshold_factor)  # fmt: skip
    replay = replay_threshold(
        scores, artifact.calibration, rule, stats_window=streaming.stats_window,
        learn_anomalies=streaming.learn_anomalies, batch=streaming.batch,
    )  # fmt: skip
    last = float(replay.thresholds[-1])
    streamed = dataclasses.replace(
        evaluation, threshold=last, confusion=confusion(table.y, replay.flags),
        threshold_rule=f"rolling {space} mean + {k:g} * std after {streaming.min_samples} "
        f"scores (window {streaming.stats_window}), threshold at the end",
    )  # fmt: skip
    extra = {
        "threshold_calibration": rule.calibrated(artifact.calibration).value,
        "threshold_first": float(replay.thresholds[0]),
        "threshold_max": float(replay.thresholds.max()),
        **dataclasses.asdict(streaming),
    }
    return streamed, extra


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
    streaming: Streaming | None = None,
    columns: ColumnSpec | None = None,
) -> Evaluation:
    """Evaluate ``model`` on the labelled rows of ``data``; print, optionally write a report.

    With ``streaming``, the rows are also judged by the scorer's rolling
    threshold rule and both evaluations are printed (in JSON, the second as
    ``streaming``); the fixed threshold's (``threshold``) is returned.
    """
    check_options(k, threshold_space, threshold)
    if report is not None:
        import seismo.models.eval.report  # noqa: F401  (needs matplotlib: fail before any work)
    artifact = load_artifact(model, device=device)
    shape = image_shape(artifact.n_features, image_shape_text)
    table = labelled_table(data, label_column, artifact.n_features,
                           artifact.feature_names, columns)  # fmt: skip
    assert table.y is not None
    scores = artifact.detector.score_batch(table.x)
    value, rule = select_threshold(
        artifact.calibration, cast(ThresholdChoice, threshold), k=k, space=threshold_space
    )
    evaluation = evaluate(table.y, scores, threshold=value, threshold_rule=rule)
    streamed = None
    if streaming is not None:
        streamed = streaming_evaluation(table, scores, artifact, evaluation, k, threshold_space,
                                        streaming)  # fmt: skip
    index = None
    if report is not None:
        index = write_html_report(report, artifact, table, scores, evaluation, shape, data)
        Console(stderr=True).print(f"wrote report {index}", markup=False, highlight=False)
    if as_json:
        extra: dict[str, Any] = {"data": str(data), "report": str(index) if index else None}
        if streamed is not None:
            extra["streaming"] = {**streamed[0].to_json_dict(), **streamed[1]}
        print(json_document(evaluation, artifact, extra))
    else:
        title = f"{artifact.name} {artifact.version} on {data}"
        print_human(Console(), evaluation, title)
        if streamed is not None:
            print_human(Console(), streamed[0], f"{title}, streaming (rolling threshold)")
            print(streaming_summary(evaluation, *streamed))  # one line, never wrapped
    return evaluation


def streaming_summary(fixed: Evaluation, streamed: Evaluation, extra: dict[str, Any]) -> str:
    """One line comparing the fixed threshold's recall (``--threshold``: the calibration
    or the contamination one) with the stream's.

    >>> from seismo.models.eval.metrics import evaluate
    >>> y, s = np.array([0, 1]), np.array([0.1, 0.9])
    >>> fixed = evaluate(y, s, threshold=0.5, threshold_rule="contamination 0.01 of ...")
    >>> streaming_summary(fixed, fixed, {"threshold_first": 0.5, "threshold_max": 0.6})[:50]
    'recall 1.0000 at the contamination threshold 0.5; '
    """
    which = fixed.threshold_rule.split(" ", 1)[0]
    return (f"recall {fixed.recall:.4f} at the {which} threshold {fixed.threshold:.4g}; "
            f"{streamed.recall:.4f} through the rolling threshold (first "
            f"{extra['threshold_first']:.4g}, highest {extra['threshold_max']:.4g}, last "
            f"{streamed.threshold:.4g})")  # fmt: skip
