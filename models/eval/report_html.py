"""The ``index.html`` of an evaluation report: metrics, confusion matrix, plots.

Pure string building (no matplotlib); every value shown is HTML-escaped.

Examples
--------
>>> import numpy as np
>>> from seismo.models.eval.metrics import evaluate
>>> e = evaluate(np.array([0, 1]), np.array([0.1, 0.9]), threshold=0.5, threshold_rule="fixed")
>>> page = render_index("demo <1>", e, [Figure(Path("roc_curve.png"), "ROC curve.")])
>>> "<title>demo &lt;1&gt;</title>" in page, 'src="roc_curve.png"' in page
(True, True)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path

from seismo.models.eval.metrics import Evaluation

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.8em; text-align: right; }
th { background: #f3f3f3; }
figure { display: inline-block; margin: 1em; vertical-align: top; }
img { max-width: 100%; }
pre { background: #f7f7f7; padding: 1em; display: inline-block; }
"""


@dataclass(frozen=True)
class Figure:
    """A PNG next to ``index.html`` and its caption."""

    path: Path
    caption: str


def _number(value: object) -> str:
    """Floats to 4 significant digits, anything else as text.

    >>> _number(0.987654), _number(12), _number("log")
    ('0.9877', '12', 'log')
    """
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def metrics_table(evaluation: Evaluation) -> str:
    """Rows of metric name and value (the confusion matrix has its own table)."""
    rows = "".join(
        f"<tr><th>{escape(key)}</th><td>{escape(_number(value))}</td></tr>"
        for key, value in evaluation.to_json_dict().items()
        if key != "confusion_matrix"
    )
    return f"<table>{rows}</table>"


def confusion_table(evaluation: Evaluation) -> str:
    """2x2 table, rows = true label, columns = flagged or not."""
    c = evaluation.confusion
    return (
        "<table><tr><th></th><th>predicted normal</th><th>predicted anomaly</th></tr>"
        f"<tr><th>normal (0)</th><td>{c.tn} (TN)</td><td>{c.fp} (FP)</td></tr>"
        f"<tr><th>anomaly (1)</th><td>{c.fn} (FN)</td><td>{c.tp} (TP)</td></tr></table>"
    )


def details_list(details: Mapping[str, str]) -> str:
    """``<ul>`` of key: value lines (model, data, ...); empty string if none."""
    if not details:
        return ""
    items = "".join(f"<li>{escape(k)}: {escape(v)}</li>" for k, v in details.items())
    return f"<ul>{items}</ul>"


def render_index(
    title: str,
    evaluation: Evaluation,
    figures: Sequence[Figure],
    details: Mapping[str, str] | None = None,
) -> str:
    """The whole page; figures are referenced by file name (same directory)."""
    images = "".join(
        f'<figure><img src="{escape(f.path.name)}" alt="{escape(f.caption)}">'
        f"<figcaption>{escape(f.caption)}</figcaption></figure>"
        for f in figures
    )
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1>{details_list(details or {})}"
        f"<h2>Metrics</h2>{metrics_table(evaluation)}"
        f"<h2>Confusion matrix</h2>{confusion_table(evaluation)}"
        f"<h2>Classification report</h2><pre>{escape(evaluation.report())}</pre>"
        f"<h2>Plots</h2>{images}</body></html>\n"
    )
