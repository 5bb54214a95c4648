"""``seismo benchmark-skab``: a window autoencoder on the Skoltech Anomaly Benchmark.

SKAB (Katser & Kozitsin 2020) records a water-circulation testbed: 8 sensors
at 1 Hz, one experiment per semicolon-separated CSV with ``anomaly`` and
``changepoint`` columns, and ``anomaly-free/anomaly-free.csv`` of normal
operation. The protocol here:

- every series is standardised by the statistics of its own first 400 rows,
  each channel's scale at least 1 % of its level (``scale_floor``, see
  :meth:`seismo.models.scaler.StandardScaler.fit`): the fluid temperature barely
  moves in 400 s, and its plain std there made its later warming, inside the
  plant's normal range, look like 10 standard deviations;
- one conv1d autoencoder is trained on the windows (``window`` rows x 8
  channels) of the anomaly-free file;
- each experiment's first 400 rows are its calibration stretch (never
  scored): the threshold is the scorer's rule, the mean plus ``k`` standard
  deviations of the log reconstruction error there;
- a row is flagged when the window ending at it is over the threshold.

Outliers: F1, false-alarm rate (FP / (FP + TN)) and missed-alarm rate
(FN / (FN + TP)) over every scored row of every experiment; ``far_all_rows``
also counts the calibration rows as normal rows never flagged, as SKAB's own
notebooks do (they score whole files). Changepoints:
a predicted changepoint wherever the flags switch; NAB's scoring
(:mod:`seismo.models.eval.nab_scoring`) with a window of ``window`` rows to the right of
each labelled changepoint, SKAB's convention.

VUS-PR (:mod:`seismo.models.eval.vus`, threshold-free): each scored row's
score is its log error over the file's threshold, the label buffers run up to
``window`` rows (``window // 2`` each side of a labelled range), and the
figure is the mean over the experiments, as TSB-AD averages over series.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from seismo.models.config import TrainConfig
from seismo.models.data import shared_data_dir
from seismo.models.detector import AutoencoderDetector
from seismo.models.eval.nab_scoring import PROFILES, SeriesScore, normalised, series_score
from seismo.models.eval.vus import vus_pr
from seismo.models.nets.conv1d import Conv1dConfig
from seismo.models.scaler import StandardScaler
from seismo.models.training import train_autoencoder
from seismo.stream.bench.odds import emit_report
from seismo.stream.bench.protocol import Split, group_of_path, select
from seismo.stream.errors import ConfigError

CHANNELS = 8
SECTION = "## SKAB (Skoltech Anomaly Benchmark)"
#: SKAB's outlier leaderboard (its README; whole files, trained on each file's first
#: 400 rows): F1, FAR %, MAR %. The README's current table first, then the earlier one
#: the issue quotes (Conv-AE 0.78).
PUBLISHED = {"Conv-AE": (0.79, 13.69, 17.77), "MSET": (0.73, 20.82, 20.08),
             "LSTM-AE": (0.68, 14.24, 35.56), "Conv-AE, earlier table": (0.78, 13.55, 28.02),
             "LSTM-AE, earlier table": (0.74, 29.96, 25.92)}  # fmt: skip


@dataclass(frozen=True)
class SkabRules:
    """Fixed protocol settings (the threshold's ``k`` is the scorer's default)."""

    calibration_rows: int = 400
    window: int = 60
    k: float = 3.0
    epochs: int = 10
    seed: int = 0
    scale_floor: float = 0.01


@dataclass(frozen=True)
class Experiment:
    key: str
    values: np.ndarray  # (n, 8)
    anomaly: np.ndarray  # (n,) bool
    changepoints: np.ndarray  # (n,) bool


def default_data_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$SEISMO_DATA/skab``, else ``<repo root>/../shared/data/skab``."""
    return shared_data_dir("skab", env)


def read_table(path: Path) -> tuple[list[str], np.ndarray]:
    """Header and float matrix (without the ``datetime`` column) of a SKAB CSV."""
    with path.open(newline="") as f:
        rows = list(csv.reader(f, delimiter=";"))
    if len(rows) < 2 or rows[0][0] != "datetime":
        raise ConfigError(f"{path}: expected SKAB's ';'-separated CSV with a datetime column")
    try:
        return rows[0][1:], np.array([[float(v) for v in row[1:]] for row in rows[1:]])
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def load(data_dir: Path) -> tuple[np.ndarray, list[Experiment]]:
    """The anomaly-free readings and every labelled experiment under ``data_dir``."""
    free_path = data_dir / "anomaly-free" / "anomaly-free.csv"
    if not free_path.is_file():
        raise ConfigError(f"no SKAB data at {data_dir} (expected anomaly-free/anomaly-free.csv)")
    _, free = read_table(free_path)
    experiments = []
    for path in sorted(data_dir.glob("*/*.csv")):
        if path.parent.name == "anomaly-free":
            continue
        head, table = read_table(path)
        if "anomaly" not in head or "changepoint" not in head:
            raise ConfigError(f"{path}: no anomaly/changepoint columns")
        experiments.append(Experiment(
            key=path.relative_to(data_dir).as_posix(), values=table[:, :CHANNELS],
            anomaly=table[:, head.index("anomaly")] > 0.5,
            changepoints=table[:, head.index("changepoint")] > 0.5))  # fmt: skip
    if not experiments:
        raise ConfigError(f"no labelled SKAB experiment under {data_dir}")
    return free[:, :CHANNELS], experiments


def standardised_windows(x: np.ndarray, rules: SkabRules) -> np.ndarray:
    """Windows ``(n - w + 1, w * 8)``, time-major, of ``x`` scaled by its first rows.

    >>> x = np.arange(16.0).reshape(8, 2)
    >>> standardised_windows(x, SkabRules(calibration_rows=4, window=3)).shape
    (6, 6)

    A temperature that hardly moves in the first rows, then warms by half a
    degree, is scaled by ``scale_floor`` of its level, not by its tiny std
    (the result is clipped to +-50):

    >>> x = np.array([24.0, 24.01, 24.0, 24.01, 24.2, 24.3, 24.4, 24.5])[:, None]
    >>> rules = SkabRules(calibration_rows=4, window=1)
    >>> round(float(standardised_windows(x, rules)[-1, 0]), 1)
    2.1
    >>> float(standardised_windows(x, replace(rules, scale_floor=0.0))[-1, 0])
    50.0
    """
    scaler = StandardScaler.fit(x[: rules.calibration_rows], floor=rules.scale_floor)
    z = np.clip(scaler.transform(x), -50, 50)
    view = np.lib.stride_tricks.sliding_window_view(z, (rules.window, x.shape[1]))[:, 0]
    return view.reshape(len(view), -1).astype(np.float32)


def changepoint_spans(marks: np.ndarray, width: int) -> list[tuple[int, int]]:
    """Windows ``width`` rows to the right of each changepoint, overlapping ones merged.

    >>> changepoint_spans(np.array([0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0], bool), 3)
    [(1, 7), (10, 11)]
    """
    spans: list[tuple[int, int]] = []
    for cp in np.flatnonzero(marks).tolist():
        span = (cp, min(len(marks) - 1, cp + width))
        if spans and span[0] <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], span[1]))
        else:
            spans.append(span)
    return spans


def outlier_rates(tp: int, fp: int, fn: int, tn: int) -> dict[str, float]:
    """F1, and FAR and MAR in percent.

    >>> outlier_rates(tp=30, fp=10, fn=10, tn=50)
    {'f1': 0.75, 'far': 16.67, 'mar': 25.0}
    """
    return {
        "f1": round(2 * tp / (2 * tp + fp + fn), 3) if tp else 0.0,
        "far": round(100 * fp / (fp + tn), 2) if fp + tn else 0.0,
        "mar": round(100 * fn / (fn + tp), 2) if fn + tp else 0.0,
    }


def margins(detector: AutoencoderDetector, e: Experiment, rules: SkabRules) -> np.ndarray:
    """``(n,)`` log error of the window ending at each row over the threshold calibrated
    on the first rows (higher = more anomalous; ``-inf`` before the first full window)."""
    n, w, cal = len(e.values), rules.window, rules.calibration_rows
    error = np.log(detector.score_batch(standardised_windows(e.values, rules)) + 1e-9)
    rows = np.arange(w - 1, n)  # the row each window ends at
    calibration = error[rows < cal]
    threshold = calibration.mean() + rules.k * calibration.std()
    margin = np.full(n, -np.inf)
    margin[rows] = error - threshold
    return margin


def experiment_vus_pr(margin: np.ndarray, e: Experiment, rules: SkabRules) -> float | None:
    """VUS-PR of the scored rows' margins (None when they hold no anomaly).

    Buffers up to ``rules.window`` rows: the model's window, which is also the
    changepoint window SKAB scores with.
    """
    labels, scores = e.anomaly[rules.calibration_rows :], margin[rules.calibration_rows :]
    if not labels.any():
        return None
    return round(vus_pr(labels, scores, max_buffer=rules.window), 4)


def experiment_figures(
    detector: AutoencoderDetector, e: Experiment, rules: SkabRules
) -> tuple[np.ndarray, dict[str, SeriesScore], dict[str, Any]]:
    """One experiment's ``(tp, fp, fn, tn)`` over its scored rows, its changepoint score
    per NAB profile, and its line of the report's ``files``."""
    n, cal = len(e.values), rules.calibration_rows
    margin = margins(detector, e, rules)
    scored = np.arange(n) >= cal
    flags = (margin > 0) & scored  # the first rows calibrate, never flagged
    y = e.anomaly
    counts = np.array([(flags & y & scored).sum(), (flags & ~y & scored).sum(),
                       (~flags & y & scored).sum(), (~flags & ~y & scored).sum()])  # fmt: skip
    predicted = np.r_[False, flags[1:] != flags[:-1]] & scored
    spans = changepoint_spans(e.changepoints, rules.window)
    changepoints = {profile.name: series_score(list(range(n)), list(predicted), spans, profile,
                                               probation=cal) for profile in PROFILES}  # fmt: skip
    tp, fp, fn, tn = counts.tolist()
    line = {"rows": n, **outlier_rates(tp, fp, fn, tn),
            "vus_pr": experiment_vus_pr(margin, e, rules),
            "counts": {"tp": tp, "fp": fp, "fn": fn, "tn": tn}}  # fmt: skip
    return counts, changepoints, line


def evaluate(
    free: np.ndarray, experiments: list[Experiment], rules: SkabRules,
    progress: Callable[[str], None] = lambda _line: None,
) -> dict[str, Any]:  # fmt: skip
    """Train once on the anomaly-free file, then flag every experiment; the figures."""
    config = Conv1dConfig(window=rules.window, channels=CHANNELS)
    # trained on the anomaly-free file: nothing to trim (the floor was chosen with trim 0)
    train = TrainConfig(epochs=rules.epochs, scaling="none", patience=3, seed=rules.seed,
                        trim_share=0.0, neighbours=0)  # fmt: skip
    detector = train_autoencoder(standardised_windows(free, rules), config=config, train=train,
                                 device="cpu").detector  # fmt: skip
    counts = np.zeros(4, dtype=np.int64)  # tp, fp, fn, tn
    calibration_normal = 0
    changepoint_scores: dict[str, list[SeriesScore]] = {p.name: [] for p in PROFILES}
    per_file: dict[str, Any] = {}
    for e in experiments:
        file_counts, changepoints, line = experiment_figures(detector, e, rules)
        counts += file_counts
        calibration_normal += int((~e.anomaly[: rules.calibration_rows]).sum())
        for name, score in changepoints.items():
            changepoint_scores[name].append(score)
        per_file[e.key] = line
        progress(f"{e.key:18s} F1 {line['f1']:.3f}, FAR {line['far']:.1f} %,"
                 f" MAR {line['mar']:.1f} %, VUS-PR {line['vus_pr']}")  # fmt: skip
    tp, fp, fn, tn = counts.tolist()
    vus = [f["vus_pr"] for f in per_file.values() if f["vus_pr"] is not None]
    nab = {p.name: round(normalised(changepoint_scores[p.name]), 2) for p in PROFILES}
    return {
        **outlier_rates(tp, fp, fn, tn),
        "far_all_rows": outlier_rates(tp, fp, fn, tn + calibration_normal)["far"],
        "vus_pr": round(float(np.mean(vus)), 4) if vus else None,
        "counts": {"tp": tp, "fp": fp, "fn": fn, "tn": tn},
        "nab_standard": nab["standard"], "nab_reward_low_fp": nab["reward_low_fp"],
        "nab_reward_low_fn": nab["reward_low_fn"], "experiments": len(experiments),
        "files": per_file, "rules": dict(vars(rules)),
    }  # fmt: skip


#: The report's key for the same protocol without the scale floor (each channel's plain std).
ABLATION = "no_scale_floor"


def run_benchmark_skab(
    data_dir: Path | None, rules: SkabRules = SkabRules(),
    progress: Callable[[str], None] = lambda _line: None,
    split: Split = "all", holdout: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The figures of ``rules`` on every experiment under ``data_dir``; with a scale
    floor, also those of the same run without it (``report["ablation"]``)."""
    free, experiments = load(data_dir or default_data_dir())
    experiments = select(experiments, lambda e: group_of_path(e.key), split, holdout)
    report = evaluate(free, experiments, rules, progress)
    report["protocol"] = {"split": split, "holdout": holdout}
    if rules.scale_floor > 0:
        plain = evaluate(free, experiments, replace(rules, scale_floor=0.0))
        report["ablation"] = {ABLATION: {key: plain[key] for key in (
            "f1", "far", "mar", "far_all_rows", "vus_pr", "nab_standard", "nab_reward_low_fp",
            "nab_reward_low_fn")}}  # fmt: skip
    return report


def section_heading(report: Mapping[str, Any]) -> str:
    """The section ``--out`` rewrites: one per part of the protocol (``docs/protocol.md``).

    >>> section_heading({"protocol": {"split": "eval", "holdout": "valve1"}})
    '## SKAB (Skoltech Anomaly Benchmark), --split eval --holdout valve1'
    >>> section_heading({"protocol": {"split": "all", "holdout": None}}) == SECTION
    True
    """
    protocol = report.get("protocol") or {}
    if protocol.get("split", "all") == "all":
        return SECTION
    return f"{SECTION}, --split {protocol['split']} --holdout {protocol['holdout']}"


def _row(name: str, r: Mapping[str, Any]) -> str:
    return (f"| {name} | {r['f1']} | {r['far']} | {r['far_all_rows']} | {r['mar']} | "
            f"{r.get('vus_pr')} | "
            f"{r['nab_standard']} / {r['nab_reward_low_fp']} / {r['nab_reward_low_fn']} |")


def render_section(report: Mapping[str, Any]) -> str:
    """The markdown section ``--out`` rewrites."""
    rules = report["rules"]
    published = "\n".join(f"| {name} (published) | {f1} | | {far} | {mar} | | |"
                          for name, (f1, far, mar) in PUBLISHED.items())  # fmt: skip
    rows = [_row(f"seismo (scale floor {rules['scale_floor']:g})", report)]
    rows += [_row("seismo, plain std (no floor)", r)
             for r in report.get("ablation", {}).values()]  # fmt: skip
    protocol = report.get("protocol") or {}
    command = "`seismo benchmark-skab" + (
        f" --split {protocol['split']} --holdout {protocol['holdout']}`"
        if protocol.get("split", "all") != "all" else "`")  # fmt: skip
    return "\n".join([
        section_heading(report), "",
        f"{command} on {report['experiments']} SKAB experiments: one conv1d "
        f"autoencoder ({rules['window']} rows x 8 channels) trained on the anomaly-free file; "
        f"each experiment standardised by, and its threshold calibrated on, its first "
        f"{rules['calibration_rows']} rows (each channel's scale at least "
        f"{100 * rules['scale_floor']:g} % of its level; mean + {rules['k']:g} std of the log "
        "error, the scorer's rule); the rest scored row by row. Changepoints: where the flags "
        f"switch, scored with NAB's rules in windows of {rules['window']} rows after each "
        f"labelled changepoint. VUS-PR: threshold-free, label buffers up to {rules['window']} "
        "rows, mean over the experiments.", "",
        "| Detector | F1 | FAR, % (scored rows) | FAR, % (all rows) | MAR, % | VUS-PR "
        "| Changepoint NAB (standard / low FP / low FN) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *rows, published, "",
        "FAR over all rows also counts each file's first 400 rows (never flagged) as normal "
        "rows, as SKAB's notebooks count whole files. SKAB's leaderboard trains one model per "
        "file on its first 400 rows; seismo trains one on the anomaly-free file. F1 and MAR "
        "do not depend on the count of normal rows.", "",
    ])


def write_report(
    report: Mapping[str, Any], *, as_json: bool, out: Path | None, echo: Callable[[str], None]
) -> None:
    """Print the JSON or a summary line; with ``out``, rewrite its SKAB section."""
    summary = (f"F1 {report['f1']}, FAR {report['far']} % ({report['far_all_rows']} % of all "
               f"rows), MAR {report['mar']} %, VUS-PR {report['vus_pr']}, changepoint NAB standard "
               f"{report['nab_standard']}")  # fmt: skip
    emit_report(report, as_json=as_json, text=summary, echo=echo, out=out,
                section=render_section(report), heading=section_heading(report))  # fmt: skip
