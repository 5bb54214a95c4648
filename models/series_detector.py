"""Streaming anomaly detection on one time series with a window autoencoder.

Each row is judged by the window that ends at it: ``points`` readings spread
evenly over ``span_s`` seconds (a day by default, so a daily rhythm fits in
one window; the stride follows the series' sampling step). A dense
autoencoder, trained on the series' first stretch (NAB's probation), scores
each window by its reconstruction error; the threshold rule is the scorer's:

- the error is taken in log space and averaged over the last ``smooth`` rows;
- a row is flagged when that exceeds the mean plus ``k`` standard deviations
  of the same quantity over the last ``history`` unflagged rows (flagged rows
  never enter the statistics);
- with ``level`` on, a row is also flagged when the reading itself is more
  than ``k`` standard deviations from the mean of the last ``level_history``
  readings (the classic rolling-Gaussian check): the window model judges the
  shape of the last day, the level check a reading far outside the recent
  range, which a model retrained on a wide-ranging series can absorb. Both
  use the same ``k``; neither is fitted on the series scored;
- a detection is the first flagged row of an episode: a flagged row more
  than ``refractory_spans`` window spans after the previous flagged row (one
  page per episode, however long it lasts, not one per row).

Every ``retrain_every`` rows the model is retrained on the unflagged windows
of the last ``history`` rows. Only rows before the current one are ever used:
the detector is causal, as in a stream.

Examples
--------
>>> import numpy as np
>>> t = np.arange(3000) * 300.0                      # 5-minute steps
>>> x = np.sin(2 * np.pi * t / 86400) + np.random.default_rng(0).normal(0, 0.05, 3000)
>>> x[2000:2100] += 3.0                              # a step for 100 rows
>>> result = detect(x, t, probation=600, rules=SeriesRules(epochs=15))
>>> bool(result.detections[2000:2100].any()), int(result.detections[:2000].sum())
(True, 0)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from models.config import DenseConfig, TrainConfig
from models.training import train_autoencoder

#: Rows a window needs in the training stretch, at least.
MIN_TRAIN_WINDOWS = 50


@dataclass(frozen=True)
class SeriesRules:
    """The detector's fixed rules (chosen once, never fitted on the series scored)."""

    points: int = 48
    span_s: float = 86_400.0
    k: float = 3.0
    smooth: int = 6
    history: int = 4000
    retrain_every: int = 2000
    refractory_spans: float = 1.0
    warmup_spans: float = 1.0
    hidden: tuple[int, ...] = (16, 4)
    epochs: int = 40
    seed: int = 0
    level: bool = True
    level_history: int = 6400


@dataclass
class SeriesResult:
    """Per row: the smoothed log error, the two checks' z-scores, flagged and detected.

    ``z`` is the window error's z-score and ``level_z`` the reading's (zeros
    when the level check is off); ``flagged`` is either over ``k``, and
    ``detections`` the episode starts of ``flagged`` (``gap`` rows apart).
    ``anomaly_score`` is in [0, 1]: 1.0 at a detection, else
    ``0.49 * clip(max(z, level_z) / k, 0, 1)``, so NAB's threshold of 0.5 turns
    exactly the detections into detections.
    """

    error: np.ndarray
    z: np.ndarray
    level_z: np.ndarray
    flagged: np.ndarray
    detections: np.ndarray
    stride: int
    span_rows: int
    gap: int
    retrains: int = 0
    k: float = 3.0
    anomaly_score: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        strongest = np.fmax(self.z, self.level_z)
        self.anomaly_score = anomaly_score(self.detections, strongest, self.k)

    def detections_by(self) -> dict[str, int]:
        """How many detections the window check and the level check each made (a
        detection both flagged counts for both)."""
        rows = np.flatnonzero(self.detections)
        return {"window": int((np.nan_to_num(self.z[rows]) > self.k).sum()),
                "level": int((self.level_z[rows] > self.k).sum())}  # fmt: skip

    def window_only(self) -> SeriesResult:
        """The same run without the level check: what ``SeriesRules(level=False)`` gives
        (the window check never depends on the level check), without training again."""
        flagged = np.nan_to_num(self.z) > self.k
        return SeriesResult(error=self.error, z=self.z, level_z=np.zeros_like(self.z),
                            flagged=flagged, detections=episode_starts(flagged, self.gap),
                            stride=self.stride, span_rows=self.span_rows, gap=self.gap,
                            retrains=self.retrains, k=self.k)  # fmt: skip


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


def level_z(x: np.ndarray, start: int, history: int) -> np.ndarray:
    """Each reading's distance from the mean of the ``history`` readings before it, in
    their standard deviations (the rolling Gaussian); 0 before row ``start``.

    >>> level_z(np.array([1.0, 3.0, 1.0, 3.0, 5.0, 2.0]), start=4, history=4).round(2).tolist()
    [0.0, 0.0, 0.0, 0.0, 3.0, 0.71]

    (Row 4 against 1, 3, 1, 3: mean 2, std 1.)
    """
    x = np.asarray(x, dtype=np.float64)
    csum, csq = np.cumsum(np.r_[0.0, x]), np.cumsum(np.r_[0.0, x * x])
    z = np.zeros(len(x))
    rows = np.arange(max(start, 1), len(x))
    lo = np.maximum(0, rows - history)
    count = rows - lo
    mean = (csum[rows] - csum[lo]) / count
    var = np.maximum((csq[rows] - csq[lo]) / count - mean * mean, 0.0)
    z[rows] = np.abs(x[rows] - mean) / (np.sqrt(var) + 1e-9)
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


def windows(z: np.ndarray, points: int, stride: int) -> np.ndarray:
    """``(n - span + 1, points)`` windows; window ``j`` ends at row ``j + span - 1``.

    >>> windows(np.arange(7.0), points=3, stride=2)
    array([[0., 2., 4.],
           [1., 3., 5.],
           [2., 4., 6.]])
    """
    span = (points - 1) * stride + 1
    return np.lib.stride_tricks.sliding_window_view(z, span)[:, ::stride]


def _train(x: np.ndarray, rules: SeriesRules, epochs: int, seed: int):  # noqa: ANN202
    config = DenseConfig(n_features=x.shape[1], hidden=rules.hidden, activation="tanh")
    train = TrainConfig(epochs=epochs, batch_size=64, lr=1e-2, scaling="none", seed=seed,
                        patience=max(3, epochs // 4))  # fmt: skip
    return train_autoencoder(x.astype(np.float32), config=config, train=train,
                             device="cpu").detector  # fmt: skip


def detect(
    values: np.ndarray, timestamps_s: np.ndarray, probation: int, rules: SeriesRules = SeriesRules()
) -> SeriesResult:
    """Run the detector over a whole series as a stream (see the module docstring).

    Parameters
    ----------
    values : numpy.ndarray
        ``(n,)`` readings.
    timestamps_s : numpy.ndarray
        ``(n,)`` epoch seconds (only the sampling step is used).
    probation : int
        Rows to learn from before judging any; nothing is flagged in them.
    """
    x = np.asarray(values, dtype=np.float64)
    n = len(x)
    stride = window_stride(sampling_step_s(timestamps_s), probation, rules)
    span = span_rows(rules, stride)
    if probation - span + 1 < MIN_TRAIN_WINDOWS:
        raise ValueError(f"probation of {probation} rows is too short for windows of {span}")
    mu, sd = x[:probation].mean(), x[:probation].std() + 1e-9
    w = windows(np.clip((x - mu) / sd, -20, 20), rules.points, stride)
    log_error = np.full(n, np.nan)
    smooth = np.full(n, np.nan)
    z = np.full(n, np.nan)
    flagged = np.zeros(n, dtype=bool)
    # The statistics start from errors on windows the model has not seen: a
    # model fitted on the first half of the training stretch scores the second.
    fit_windows = probation - span + 1
    half = fit_windows // 2
    if half >= MIN_TRAIN_WINDOWS:
        first_half = _train(w[:half], rules, rules.epochs, rules.seed)
        log_error[span - 1 + half : probation] = np.log(
            first_half.score_batch(w[half:fit_windows]) + 1e-9)
    model = _train(w[:fit_windows], rules, rules.epochs, rules.seed)
    warmup = max(2, int(rules.warmup_spans * span))
    retrains, start = 0, span - 1
    row = probation
    while row < n:
        stop = min(n, row + rules.retrain_every)
        log_error[row:stop] = np.log(model.score_batch(w[row - span + 1 : stop - span + 1]) + 1e-9)
        for i in range(row, stop):
            seen = log_error[max(start, i - rules.smooth + 1) : i + 1]
            smooth[i] = np.nanmean(seen)
            lo = max(start, i - rules.history)
            past = log_error[lo:i][~flagged[lo:i]]
            past = past[~np.isnan(past)]
            if len(past) < warmup:
                continue
            # the same smoothing over the unflagged past: its mean and spread
            kernel = np.ones(min(rules.smooth, len(past))) / min(rules.smooth, len(past))
            past = np.convolve(past, kernel, mode="valid")
            z[i] = (smooth[i] - past.mean()) / (past.std() + 1e-9)
            flagged[i] = z[i] > rules.k
        row = stop
        if probation <= row < n:
            recent = np.arange(max(start, row - rules.history), row)
            recent = recent[~flagged[recent]]
            if len(recent) >= MIN_TRAIN_WINDOWS:
                retrains += 1
                model = _train(w[recent - span + 1], rules, max(1, rules.epochs // 2),
                               rules.seed + retrains)  # fmt: skip
    reading_z = level_z(x, probation, rules.level_history) if rules.level else np.zeros(n)
    either = flagged | (reading_z > rules.k)
    gap = episode_gap(rules, stride)
    return SeriesResult(error=smooth, z=z, level_z=reading_z, flagged=either,
                        detections=episode_starts(either, gap), stride=stride, span_rows=span,
                        gap=gap, retrains=retrains, k=rules.k)  # fmt: skip
