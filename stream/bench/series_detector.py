"""One time series through the windowed scorer's rule, as a stream: NAB's detector.

Each row is judged by the window that ends at it: ``points`` readings spread
evenly over ``span_s`` seconds (a day by default, so a daily rhythm fits in
one window; the readings' spacing, ``stride``, follows the series' sampling
step), exactly what ``seismo score --window points --window-step stride``
builds. A dense autoencoder learns the windows of the series' first stretch
(NAB's probation), with the series' own mean and std there as its scaler,
and the scorer's per-device rule (:mod:`seismo.stream.scoring.devices.rule`, the same code)
judges every window: its smoothed log error against the device's unflagged
past, and its last reading against the device's readings. A detection is
the first flagged row of an episode: a flagged row more than
``refractory_spans`` window spans after the previous one (one page per
episode, however long it lasts).

Every ``retrain_every`` rows a new model version is trained on the windows
of the last ``history`` rows that the window check did not flag; the
device's window statistics start again from its calibration, as the scorer
does when a new version arrives. Only rows before the current one are ever
used: the detector is causal, as in a stream.

:func:`detect` drives the series through a :class:`Backend`: in-process here
(:class:`InProcess`), or through real Kafka, Redis and the scorer
(:mod:`seismo.stream.bench.nab_replay`); both judge with the same rule, so they flag the
same rows.

Examples
--------
>>> t = np.arange(3000) * 300.0                      # 5-minute steps
>>> x = np.sin(2 * np.pi * t / 86400) + np.random.default_rng(0).normal(0, 0.05, 3000)
>>> x[2000:2100] += 3.0                              # a step for 100 rows
>>> result = detect(x, t, probation=600, rules=SeriesRules(epochs=15))
>>> bool(result.detections[2000:2100].any()), int(result.detections[:2000].sum())
(True, 0)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, NamedTuple, Protocol

import numpy as np

from seismo.models.artifact import Artifact, build_artifact
from seismo.models.calibration import log_scores
from seismo.models.config import DenseConfig, TrainConfig
from seismo.models.data import window_feature_names
from seismo.models.eval.likelihood import past_mean_std
from seismo.models.scaler import StandardScaler
from seismo.models.training import train_autoencoder
from seismo.stream.scoring.devices.rule import DeviceRule, DeviceState, judge

#: Rows a window needs in the training stretch, at least.
MIN_TRAIN_WINDOWS = 50
#: The series' one channel (window feature names are ``value@t-k``).
CHANNEL = "value"


@dataclass(frozen=True)
class SeriesRules:
    """The detector's fixed rules (chosen once, never fitted on the series scored).

    ``k``, ``smooth``, ``history``, ``level_history`` and ``level_warmup`` are
    the scorer's per-device rule (:class:`seismo.stream.scoring.devices.rule.DeviceRule`,
    whose defaults they are); ``level = False`` turns the level check off.
    ``relative_entropy`` is a variant of the benchmark alone, not of the scorer
    (``seismo benchmark-nab --relative-entropy``, rejected under the protocol:
    ``docs/protocol.md``): also flag a row whose last 52 readings' distribution
    agrees with no earlier one (:mod:`seismo.models.eval.relative_entropy`,
    bounds from the probationary stretch). ``likelihood_tail`` > 0 is another
    (``--likelihood-tail``): the rows flagged are instead those whose HTM-style
    anomaly likelihood of the combined severity is in the tail beyond it
    (:mod:`seismo.models.eval.likelihood`, ``likelihood_short`` rows averaged).
    """

    points: int = 48
    span_s: float = 86_400.0
    k: float = 3.0
    smooth: int = 6
    history: int = 4000
    retrain_every: int = 2000
    refractory_spans: float = 1.0
    hidden: tuple[int, ...] = (16, 4)
    epochs: int = 40
    seed: int = 0
    level: bool = True
    level_history: int = 6400
    level_warmup: int = 250
    level_smooth: int = 1
    level_k: float | None = None
    learn_anomalies: bool = False
    level_mode: Literal["std", "range"] = "std"
    level_tolerance: float = 0.05
    level_clip: float = 10.0
    relative_entropy: bool = False
    likelihood_tail: float = 0.0
    likelihood_short: int = 10

    def device_rule(self) -> DeviceRule:
        """The scorer's rule with these settings."""
        return DeviceRule(k=self.k, smooth=self.smooth, history=self.history,
                          level_history=self.level_history if self.level else 0,
                          level_warmup=self.level_warmup, learn_anomalies=self.learn_anomalies,
                          level_smooth=self.level_smooth, level_k=self.level_k,
                          level_mode=self.level_mode,
                          level_tolerance=self.level_tolerance,
                          level_clip=self.level_clip)  # fmt: skip


class Verdicts(NamedTuple):
    """Per row of a chunk: the window z-score, the level z-score, the two checks' flags."""

    window_z: np.ndarray
    level_z: np.ndarray
    window_flags: np.ndarray
    level_flags: np.ndarray


class Backend(Protocol):
    """Where the windows are scored and judged: in-process or through the scorer."""

    def begin(self, plan: SeriesPlan, artifact: Artifact, state: DeviceState) -> None:
        """How the series is cut, the first model version and the device's state at the
        end of probation."""

    def judge(self, artifact: Artifact, start: int, stop: int) -> Verdicts:
        """Score and judge rows ``start`` to ``stop - 1`` with ``artifact``."""


@dataclass(frozen=True)
class SeriesPlan:
    """How a series is cut: the readings' spacing in a window, the rows a window covers."""

    n: int
    probation: int
    stride: int
    span: int

    @property
    def fit_windows(self) -> int:
        """Windows that end inside the probation."""
        return self.probation - self.span + 1


@dataclass
class SeriesResult:
    """Per row: the two checks' z-scores, flags and the detections.

    ``z`` is the window check's z-score and ``level_z`` the reading's (zeros
    when the level check is off); ``flagged`` is either over ``k``, and
    ``detections`` the episode starts of ``flagged`` (``gap`` rows apart).
    ``anomaly_score`` is in [0, 1]: 1.0 at a detection, else
    ``0.49 * clip(severity, 0, 1)``, so NAB's threshold of 0.5 turns exactly the
    detections into detections.
    """

    z: np.ndarray
    level_z: np.ndarray
    window_flags: np.ndarray
    flagged: np.ndarray
    detections: np.ndarray
    stride: int
    span_rows: int
    gap: int
    retrains: int = 0
    k: float = 3.0
    versions: list[str] = field(default_factory=list)
    level_k: float = 3.0
    anomaly_score: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.anomaly_score = anomaly_score(self.detections, self.severity, 1.0)

    @property
    def severity(self) -> np.ndarray:
        """Per row, the stronger check against its own threshold: ``max(z / k, level_z /
        level_k)``, so 1.0 is on the threshold (0 where nothing was judged)."""
        return np.nan_to_num(np.fmax(self.z / self.k, self.level_z / self.level_k))

    def detections_by(self) -> dict[str, int]:
        """How many detections the window check and the level check each made (a
        detection both flagged counts for both)."""
        rows = np.flatnonzero(self.detections)
        return {"window": int(self.window_flags[rows].sum()),
                "level": int((self.level_z[rows] > self.level_k).sum())}  # fmt: skip

    def window_only(self) -> SeriesResult:
        """The same run without the level check: what ``SeriesRules(level=False)`` gives
        (neither the window statistics nor the retraining depend on the level check),
        without training again."""
        return SeriesResult(z=self.z, level_z=np.zeros_like(self.z),
                            window_flags=self.window_flags, flagged=self.window_flags,
                            detections=episode_starts(self.window_flags, self.gap),
                            stride=self.stride, span_rows=self.span_rows, gap=self.gap,
                            retrains=self.retrains, k=self.k, versions=self.versions)  # fmt: skip


def episode_starts(flagged: np.ndarray, gap: int) -> np.ndarray:
    """The detections: each flagged row more than ``gap`` rows after the previous flagged one.

    >>> episode_starts(np.array([1, 1, 0, 1, 0, 0, 0, 1, 1], bool), gap=2).astype(int).tolist()
    [1, 0, 0, 0, 0, 0, 0, 1, 0]
    """
    rows = np.flatnonzero(flagged)
    starts = np.zeros(len(flagged), dtype=bool)
    if len(rows):
        starts[rows[np.r_[True, np.diff(rows) > gap]]] = True
    return starts


def anomaly_score(detections: np.ndarray, z: np.ndarray, k: float) -> np.ndarray:
    """NAB's ``anomaly_score`` column: 1.0 at a detection, else ``0.49 * clip(z / k, 0, 1)``.

    >>> anomaly_score(np.array([False, True, False]), np.array([1.5, 9.0, np.nan]), 3.0).tolist()
    [0.245, 1.0, 0.0]
    """
    partial = 0.49 * np.clip(np.nan_to_num(z) / k, 0.0, 1.0)
    return np.where(detections, 1.0, partial)


def rolling_z(x: np.ndarray, start: int, history: int) -> np.ndarray:
    """The classic rolling Gaussian: each reading's distance from the mean of the
    ``history`` readings before it, in their standard deviations; 0 before ``start``.

    >>> rolling_z(np.array([1.0, 3.0, 1.0, 3.0, 5.0, 2.0]), start=4, history=4).round(2).tolist()
    [0.0, 0.0, 0.0, 0.0, 3.0, 0.71]

    (Row 4 against 1, 3, 1, 3: mean 2, std 1.)
    """
    x = np.asarray(x, dtype=np.float64)
    mean, std = past_mean_std(x, history)
    z = np.zeros(len(x))
    rows = slice(max(start, 1), len(x))
    z[rows] = np.abs(x[rows] - mean[rows]) / (std[rows] + 1e-9)
    return z


def span_rows(rules: SeriesRules, stride: int) -> int:
    """Rows a window covers: ``(points - 1) * stride + 1``."""
    return (rules.points - 1) * stride + 1


def episode_gap(rules: SeriesRules, stride: int) -> int:
    """Rows after a flagged row within which the next flagged row is the same episode."""
    return int(rules.refractory_spans * span_rows(rules, stride))


def sampling_step_s(timestamps_s: np.ndarray) -> float:
    """Median positive step between readings (NAB series repeat or skip stamps).

    >>> sampling_step_s(np.array([0.0, 300, 300, 600, 1200]))
    300.0
    """
    steps = np.diff(np.asarray(timestamps_s, dtype=float))
    steps = steps[steps > 0]
    return float(np.median(steps)) if len(steps) else 1.0


def window_stride(step_s: float, probation: int, rules: SeriesRules) -> int:
    """Rows between the readings of one window: the span over ``points``, shortened
    until the training stretch holds :data:`MIN_TRAIN_WINDOWS` windows.

    >>> window_stride(300.0, 600, SeriesRules()), window_stride(3600.0, 1000, SeriesRules())
    (6, 1)
    >>> window_stride(300.0, 300, SeriesRules())  # 2 days of probation: 2 readings apart
    5
    """
    stride = max(1, round(rules.span_s / step_s / rules.points))
    while stride > 1 and probation - span_rows(rules, stride) + 1 < MIN_TRAIN_WINDOWS:
        stride -= 1
    return stride


def plan_series(n: int, timestamps_s: np.ndarray, probation: int, rules: SeriesRules) -> SeriesPlan:
    """The spacing and span of a series' windows; refuses a probation too short for them."""
    stride = window_stride(sampling_step_s(timestamps_s), probation, rules)
    plan = SeriesPlan(n=n, probation=probation, stride=stride, span=span_rows(rules, stride))
    if plan.fit_windows < MIN_TRAIN_WINDOWS:
        raise ValueError(f"probation of {probation} rows is too short for windows of {plan.span}")
    return plan


def windows(x: np.ndarray, points: int, stride: int) -> np.ndarray:
    """``(n - span + 1, points)`` windows; window ``j`` ends at row ``j + span - 1``.

    >>> windows(np.arange(7.0), points=3, stride=2)
    array([[0., 2., 4.],
           [1., 3., 5.],
           [2., 4., 6.]])
    """
    span = (points - 1) * stride + 1
    return np.lib.stride_tricks.sliding_window_view(x, span)[:, ::stride]


def series_scaler(head: np.ndarray, points: int) -> StandardScaler:
    """One mean and std for every reading of a window: the series' own over ``head``.

    >>> series_scaler(np.array([1.0, 3.0]), points=2).scale.tolist()
    [1.0, 1.0]
    """
    head = np.asarray(head, dtype=np.float64)
    std = float(head.std()) or 1.0
    return StandardScaler(mean=np.full(points, float(head.mean())), scale=np.full(points, std))


def train_series_model(
    raw_windows: np.ndarray, scaler: StandardScaler, rules: SeriesRules, epochs: int, seed: int,
    name: str = "seismo", stride: int = 1,
) -> Artifact:  # fmt: skip
    """A model version of the series: a dense autoencoder on the scaled windows, packaged
    with ``scaler`` (so it scores raw windows) and its validation calibration; its feature
    names say the windows' readings are ``stride`` rows apart (``--window-step``)."""
    config = DenseConfig(n_features=raw_windows.shape[1], hidden=rules.hidden, activation="tanh")
    # every row of the window is learnt (trim_share 0): the trimmed loss of `seismo train`'s
    # default, chosen on tabular data, cost the window check 61 points on the artificial
    # series (docs/protocol.md); the retraining already leaves flagged windows out
    train = TrainConfig(epochs=epochs, batch_size=64, lr=1e-2, scaling="none", seed=seed,
                        patience=max(3, epochs // 4), trim_share=0.0,
                        neighbours=0)  # fmt: skip
    result = train_autoencoder(scaler.transform(raw_windows), config=config, train=train,
                               device="cpu")  # fmt: skip
    result.detector.scaler = scaler
    return build_artifact(result, name=name,
                          feature_names=window_feature_names([CHANNEL], rules.points, stride),
                          training_window={"windows": len(raw_windows)})  # fmt: skip


def retrain_windows(window_flags: np.ndarray, row: int, span: int, history: int) -> np.ndarray:
    """Rows (window ends) of the last ``history`` before ``row`` that the window check
    did not flag: what the next version learns.

    >>> retrain_windows(np.array([0, 0, 0, 1, 0, 0], bool), row=6, span=2, history=4).tolist()
    [2, 4, 5]
    """
    recent = np.arange(max(span - 1, row - history), row)
    return recent[~window_flags[recent]]


class InProcess:
    """Score with the model version's detector and judge with the rule, here."""

    def __init__(self, x: np.ndarray, w: np.ndarray, rule: DeviceRule) -> None:
        self.x, self.w, self.rule = x, w, rule
        self.span = 0
        self.state: DeviceState | None = None

    def begin(self, plan: SeriesPlan, artifact: Artifact, state: DeviceState) -> None:
        self.span, self.state = plan.span, state

    def judge(self, artifact: Artifact, start: int, stop: int) -> Verdicts:
        assert self.state is not None, "begin() first"
        span = self.span
        ending = self.w[start - span + 1 : stop - span + 1]  # the windows ending at the rows
        errors = log_scores(artifact.detector.score_batch(ending))
        self.state.follow(artifact.version, artifact.calibration, self.rule)
        verdicts = [judge(self.state, float(e), self.x[i : i + 1], self.rule)
                    for e, i in zip(errors, range(start, stop), strict=True)]  # fmt: skip
        return Verdicts(np.array([v.window_z for v in verdicts]),
                        np.array([v.level_z for v in verdicts]),
                        np.array([v.window_flag for v in verdicts], dtype=bool),
                        np.array([v.level_flag for v in verdicts], dtype=bool))  # fmt: skip


def detect(
    values: np.ndarray, timestamps_s: np.ndarray, probation: int,
    rules: SeriesRules = SeriesRules(), backend: Backend | None = None,
) -> SeriesResult:  # fmt: skip
    """Run the detector over a whole series as a stream (see the module docstring).

    Parameters
    ----------
    values : numpy.ndarray
        ``(n,)`` readings.
    timestamps_s : numpy.ndarray
        ``(n,)`` epoch seconds (only the sampling step is used).
    probation : int
        Rows to learn from before judging any; nothing is flagged in them.
    backend : Backend, optional
        Where windows are judged; :class:`InProcess` by default.
    """
    x = np.asarray(values, dtype=np.float64)
    plan = plan_series(len(x), timestamps_s, probation, rules)
    w = windows(x, rules.points, plan.stride)
    scaler = series_scaler(x[:probation], rules.points)
    rule = rules.device_rule()
    artifact = train_series_model(w[: plan.fit_windows], scaler, rules, rules.epochs, rules.seed,
                                  stride=plan.stride)
    state = DeviceState.start(artifact.version, artifact.calibration, rule, channels=1)
    state.warm(x[:probation, None], rule)
    backend = backend or InProcess(x, w, rule)
    backend.begin(plan, artifact, state)
    n, versions = plan.n, [artifact.version]
    z, reading_z = np.full(n, np.nan), np.zeros(n)
    window_flags, level_flags = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    row = probation
    while row < n:
        stop = min(n, row + rules.retrain_every)
        z[row:stop], reading_z[row:stop], window_flags[row:stop], level_flags[row:stop] = (
            backend.judge(artifact, row, stop))  # fmt: skip
        row = stop
        recent = retrain_windows(window_flags, row, plan.span, rules.history)
        if row < n and len(recent) >= MIN_TRAIN_WINDOWS:
            epochs, seed = max(1, rules.epochs // 2), rules.seed + len(versions)
            artifact = train_series_model(w[recent - plan.span + 1], scaler, rules, epochs,
                                          seed, stride=plan.stride)
            versions.append(artifact.version)
    either = window_flags | level_flags
    gap = episode_gap(rules, plan.stride)
    return SeriesResult(z=z, level_z=reading_z, window_flags=window_flags, flagged=either,
                        detections=episode_starts(either, gap), stride=plan.stride,
                        span_rows=plan.span, gap=gap, retrains=len(versions) - 1, k=rules.k,
                        versions=versions, level_k=rule.level_threshold)  # fmt: skip
