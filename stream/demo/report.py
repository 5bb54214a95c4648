"""The demo's HTML report: summary figures and inline SVG plots, one self-contained file.

- per device, the score over time (log scale) with the threshold band, the
  injected anomaly episodes shaded and the alerts marked;
- the histogram of scores of normal and of anomalous readings, with the
  threshold.

Pure string building: no plotting library, every text HTML-escaped.

Examples
--------
>>> import numpy as np
>>> svg = series_svg(np.arange(5), np.array([0.01, 0.02, 0.5, 0.01, 0.02]),
...                  np.full(5, 0.1), [(2, 2, "spike")], title="pump-1")
>>> svg.startswith("<svg") and svg.count("<circle") == 1 and "spike" in svg
True
>>> "<rect" in histogram_svg(np.array([0.01, 0.02]), np.array([0.5]), threshold=0.1)
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from seismo.stream.demo.state import DemoState

WIDTH, HEIGHT, PAD = 900, 130, 28
MAX_POINTS = 1800
"""Most points of a series line; longer series are thinned, alerts always kept."""


def thin(n: int, keep: np.ndarray, most: int = MAX_POINTS) -> np.ndarray:
    """Indices of at most about ``most`` of ``n`` points, evenly spaced, plus every ``keep``.

    >>> thin(10, np.zeros(10, dtype=bool), most=5).tolist()
    [0, 2, 4, 6, 8, 9]
    >>> thin(4, np.array([False, True, False, False]), most=2).tolist()
    [0, 1, 2, 3]
    """
    if n <= most:
        return np.arange(n)
    step = int(np.ceil(n / most))
    chosen = np.zeros(n, dtype=bool)
    chosen[::step] = True
    chosen[-1] = True
    return np.flatnonzero(chosen | keep)

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 62em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.8em; text-align: right; }
th { background: #f3f3f3; text-align: left; }
svg { display: block; margin: 0.4em 0; }
.note { color: #555; }
"""


def _log_scale(values: np.ndarray, low: float, high: float, height: float) -> np.ndarray:
    v = np.log10(np.clip(values, low, high))
    span = np.log10(high) - np.log10(low) or 1.0
    return PAD / 2 + (1 - (v - np.log10(low)) / span) * (height - PAD)


def _bounds(*arrays: np.ndarray) -> tuple[float, float]:
    joined = np.concatenate([a[np.isfinite(a) & (a > 0)] for a in arrays] or [np.ones(1)])
    if joined.size == 0:
        return 1e-3, 1.0
    low, high = float(joined.min()), float(joined.max())
    return low / 1.5, max(high * 1.5, low * 10)


def series_svg(
    ticks: np.ndarray,
    scores: np.ndarray,
    thresholds: np.ndarray,
    episodes: Sequence[tuple[int, int, str]],
    *,
    title: str,
) -> str:
    """Score over ticks of one device; ``episodes`` are ``(first_tick, last_tick, kind)``."""
    if ticks.size == 0:
        return ""
    idx = thin(ticks.size, scores > thresholds)
    ticks, scores, thresholds = ticks[idx], scores[idx], thresholds[idx]
    t0, t1 = int(ticks.min()), int(max(ticks.max(), ticks.min() + 1))
    low, high = _bounds(scores, thresholds)

    def x(t: np.ndarray | float) -> Any:
        return PAD + (np.asarray(t, dtype=float) - t0) / (t1 - t0) * (WIDTH - 2 * PAD)

    ys = _log_scale(scores, low, high, HEIGHT)
    yt = _log_scale(thresholds, low, high, HEIGHT)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}">']
    parts.append(f'<text x="{PAD}" y="12" font-size="12">{escape(title)}</text>')
    for first, last, kind in episodes:
        if last < t0 or first > t1:
            continue
        left, right = float(x(max(first, t0))), float(x(min(last, t1) + 1))
        parts.append(
            f'<rect x="{left:.1f}" y="{PAD / 2}" width="{max(right - left, 1.5):.1f}" '
            f'height="{HEIGHT - PAD}" fill="#f4a261" fill-opacity="0.35">'
            f"<title>{escape(kind)} ticks {first}-{last}</title></rect>"
        )
    band = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(x(ticks), yt, strict=True))
    line = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(x(ticks), ys, strict=True))
    parts.append(f'<polyline points="{band}" fill="none" stroke="#e63946" stroke-dasharray="4 3"/>')
    parts.append(f'<polyline points="{line}" fill="none" stroke="#1d3557" stroke-width="0.8"/>')
    above = scores > thresholds
    for a, b in zip(x(ticks[above]), ys[above], strict=True):
        parts.append(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="2.2" fill="#e63946"/>')
    parts.append(
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 4}" font-size="10" text-anchor="end">'
        f"ticks {t0}-{t1}, log score</text></svg>"
    )
    return "".join(parts)


def histogram_svg(
    normal: np.ndarray, anomalous: np.ndarray, *, threshold: float | None, bins: int = 50
) -> str:
    """Histograms of log scores of normal (blue) and anomalous (orange) readings."""
    low, high = _bounds(normal, anomalous)
    edges = np.logspace(np.log10(low), np.log10(high), bins + 1)
    height = 220
    counts = [np.histogram(a[a > 0], edges)[0] for a in (normal, anomalous)]
    top = max(1, max(int(c.max()) for c in counts if c.size))
    step = (WIDTH - 2 * PAD) / bins
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}">']
    for count, colour in zip(counts, ("#457b9d", "#f4a261"), strict=True):
        for i, n in enumerate(count):
            if n:
                h = np.sqrt(n / top) * (height - PAD)
                parts.append(
                    f'<rect x="{PAD + i * step:.1f}" y="{height - PAD / 2 - h:.1f}" '
                    f'width="{step * 0.9:.1f}" height="{h:.1f}" fill="{colour}" '
                    f'fill-opacity="0.6"><title>{n}</title></rect>'
                )
    if threshold is not None and low < threshold < high:
        tx = PAD + (np.log10(threshold) - np.log10(low)) / np.log10(high / low) * (WIDTH - 2 * PAD)
        parts.append(
            f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="{PAD / 2}" y2="{height - PAD / 2}" '
            'stroke="#e63946" stroke-dasharray="4 3"/>'
        )
    parts.append(
        f'<text x="{PAD}" y="12" font-size="12">score (log scale): normal readings blue, '
        "injected anomalies orange, threshold dashed; bar height ~ sqrt(count)</text></svg>"
    )
    return "".join(parts)


def _table(rows: Mapping[str, Any]) -> str:
    body = "".join(
        f"<tr><th>{escape(str(k))}</th><td>{escape(_fmt(v))}</td></tr>" for k, v in rows.items()
    )
    return f"<table>{body}</table>"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def split_scores(
    state: DemoState, episodes: Mapping[str, Sequence[tuple[int, int, str]]]
) -> tuple[np.ndarray, np.ndarray]:
    """Scores kept in the series, split into normal and inside-an-episode readings."""
    normal, anomalous = [], []
    for device, series in state.series.items():
        ticks, scores = series.ticks, series.scores
        inside = np.zeros(ticks.size, dtype=bool)
        for first, last, _ in episodes.get(device, ()):
            inside |= (ticks >= first) & (ticks <= last)
        normal.append(scores[~inside])
        anomalous.append(scores[inside])
    empty = np.empty(0)
    return np.concatenate(normal or [empty]), np.concatenate(anomalous or [empty])


def render_report(
    *,
    title: str,
    summary: Mapping[str, Any],
    details: Mapping[str, Any],
    state: DemoState,
    labels: Sequence[Mapping[str, Any]],
) -> str:
    """The whole page."""
    episodes: dict[str, list[tuple[int, int, str]]] = {}
    for record in labels:
        episodes.setdefault(str(record["device_id"]), []).append(
            (int(record["first_tick"]), int(record["last_tick"]), str(record["kind"]))
        )
    normal, anomalous = split_scores(state, episodes)
    plots = "".join(
        series_svg(s.ticks, s.scores, s.thresholds, episodes.get(device, []), title=device)
        for device, s in sorted(state.series.items())
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>"
        f"<h2>Summary</h2>{_table(summary)}<h2>Run</h2>{_table(details)}"
        "<h2>Scores</h2>"
        + histogram_svg(normal, anomalous, threshold=state.threshold)
        + "<h2>Score over time per device</h2><p class='note'>Dashed red: the threshold in "
        "force; shaded: injected anomalies (hover for the kind); red dots: alerts.</p>"
        + plots
        + "</body></html>"
    )


def write_report(path: Path, **parts: Any) -> Path:
    """Render (see :func:`render_report`) and write ``path``; return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(**parts), encoding="utf-8")
    return path
