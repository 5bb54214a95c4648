"""The Numenta Anomaly Benchmark's scoring rules, written from the published description.

NAB (Lavin & Ahmad 2015; Ahmad et al. 2017) scores a detector on each series
by its *detections* (rows whose anomaly score reaches the threshold) against
labelled *anomaly windows*:

- Rows in the **probationary period**, the first ``min(floor(0.15 n), 750)``
  rows, are not scored.
- Each row gets a weight from the **scaled sigmoid** of its relative position
  ``p``: ``S(p) = 2 / (1 + exp(5 p)) - 1`` (``-1`` from ``p >= 3``).

  - Inside a window of ``w`` rows whose right edge is row ``r``:
    ``p = -(r - i + 1) / w`` (``-1`` at the left edge, so the earliest
    detection earns the most), and the weight is ``A_tp * S(p) / S(-1)``.
  - Outside: ``p = |i - r_prev| / (w_prev - 1)`` from the previous window's
    right edge (``p = 3``, i.e. ``S = -1``, before the first window), and the
    weight is ``A_fp * S(p)`` (negative).

- A series' raw score adds, per window, the best weight of its detections
  (or ``-A_fn`` when it has none), and the weights of every detection
  outside windows.
- The corpus score is normalised: ``100 * (raw - null) / (perfect - null)``,
  where the null detector (no detection) scores ``-A_fn`` per window and the
  perfect one ``A_tp`` per window.

Profiles (``A_tp``, ``A_fp``, ``A_fn``): standard (1, 0.11, 1),
reward_low_FP_rate (1, 0.22, 1), reward_low_FN_rate (1, 0.11, 2).

Examples
--------
A 20-row series whose probation is its first 3 rows, one window at rows 10-14:

>>> rows = list(range(20))
>>> windows = [(10, 14)]
>>> perfect = series_score(rows, [False] * 10 + [True] + [False] * 9, windows, STANDARD)
>>> round(perfect.raw, 6), perfect.detected_windows
(1.0, 1)
>>> late = series_score(rows, [False] * 14 + [True] + [False] * 5, windows, STANDARD)
>>> round(late.raw, 4)  # at the right edge: S(-1/5) / S(-1)
0.4684
>>> none = series_score(rows, [False] * 20, windows, STANDARD)
>>> none.raw
-1.0
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

#: Rows of probation: this share of the series, at most ``PROBATION_SHARE * 5000``.
PROBATION_SHARE = 0.15


@dataclass(frozen=True)
class Profile:
    """Weights of one NAB application profile."""

    name: str
    tp: float
    fp: float
    fn: float


STANDARD = Profile("standard", 1.0, 0.11, 1.0)
REWARD_LOW_FP = Profile("reward_low_fp", 1.0, 0.22, 1.0)
REWARD_LOW_FN = Profile("reward_low_fn", 1.0, 0.11, 2.0)
PROFILES = (STANDARD, REWARD_LOW_FP, REWARD_LOW_FN)


def scaled_sigmoid(position: float) -> float:
    """``2 / (1 + exp(5 p)) - 1``; ``-1`` from ``p >= 3``.

    >>> [round(scaled_sigmoid(p), 5) for p in (-1.0, -0.5, 0.0, 1.0, 3.0)]
    [0.98661, 0.84828, 0.0, -0.98661, -1.0]
    """
    if position >= 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


def probation_length(n_rows: int) -> int:
    """Rows at the start of a series that are not scored.

    >>> probation_length(4032), probation_length(22695), probation_length(10)
    (604, 750, 1)
    """
    return int(min(math.floor(PROBATION_SHARE * n_rows), PROBATION_SHARE * 5000))


def window_rows(timestamps: Sequence[Hashable], limits: Sequence[tuple]) -> list[tuple[int, int]]:
    """Row spans ``(first, last)`` of windows given by their start and end timestamps.

    A window starts at the first row stamped with its start and ends at the
    first row stamped with its end (NAB series may repeat a timestamp).
    Windows whose limits are not both in the series are left out.

    >>> window_rows(["a", "b", "b", "c", "d"], [("b", "c")])
    [(1, 3)]
    """
    first: dict[Hashable, int] = {}
    for i, t in enumerate(timestamps):
        first.setdefault(t, i)
    return [(first[a], first[b]) for a, b in limits if a in first and b in first]


def row_weights(n_rows: int, windows: Sequence[tuple[int, int]], profile: Profile) -> list[float]:
    """The weight a detection at each row earns (positive in windows, negative outside).

    >>> [round(w, 3) for w in row_weights(6, [(2, 3)], STANDARD)]
    [-0.11, -0.11, 1.0, 0.86, -0.109, -0.11]
    """
    max_tp = scaled_sigmoid(-1.0)
    weights = []
    spans = sorted(windows)
    k = 0  # next window
    prev: tuple[int, int] | None = None
    for i in range(n_rows):
        while k < len(spans) and spans[k][1] < i:
            prev, k = spans[k], k + 1
        if k < len(spans) and spans[k][0] <= i <= spans[k][1]:
            left, right = spans[k]
            width = right - left + 1
            weights.append(profile.tp * scaled_sigmoid(-(right - i + 1) / width) / max_tp)
        elif prev is None:
            weights.append(profile.fp * scaled_sigmoid(3.0))
        else:
            left, right = prev
            width = right - left + 1
            position = abs(i - right) / (width - 1) if width > 1 else 3.0
            weights.append(profile.fp * scaled_sigmoid(position))
    return weights


@dataclass(frozen=True)
class SeriesScore:
    """One series under one profile: the raw score and what made it."""

    raw: float
    windows: int
    detected_windows: int
    false_positives: int
    null: float
    perfect: float


def series_score(
    timestamps: Sequence[Hashable],
    detections: Sequence[bool],
    windows: Sequence[tuple[int, int]],
    profile: Profile,
    probation: int | None = None,
) -> SeriesScore:
    """NAB's raw score of one series (``windows`` as row spans, see :func:`window_rows`).

    ``probation`` defaults to :func:`probation_length`; windows wholly
    inside it do not count.
    """
    n = len(timestamps)
    if len(detections) != n:
        raise ValueError(f"{len(detections)} detections for {n} rows")
    skip = probation_length(n) if probation is None else probation
    weights = row_weights(n, windows, profile)
    scored = [w for w in windows if w[1] >= skip]
    best: dict[tuple[int, int], float] = {w: -profile.fn for w in scored}
    fp_total, fp_count = 0.0, 0
    inside = {i: w for w in scored for i in range(max(w[0], skip), w[1] + 1)}
    for i in range(skip, n):
        if not detections[i]:
            continue
        window = inside.get(i)
        if window is None:
            fp_total += weights[i]
            fp_count += 1
        else:
            best[window] = max(best[window], weights[i])
    detected = sum(1 for w in scored if best[w] > -profile.fn)
    return SeriesScore(
        raw=sum(best.values()) + fp_total, windows=len(scored), detected_windows=detected,
        false_positives=fp_count, null=-profile.fn * len(scored),
        perfect=profile.tp * len(scored),
    )  # fmt: skip


def normalised(scores: Sequence[SeriesScore]) -> float:
    """The corpus score: 0 for the null detector, 100 for the perfect one.

    >>> normalised([SeriesScore(1.0, 1, 1, 0, -1.0, 1.0), SeriesScore(-1.0, 1, 0, 0, -1.0, 1.0)])
    50.0
    """
    raw = sum(s.raw for s in scores)
    null = sum(s.null for s in scores)
    perfect = sum(s.perfect for s in scores)
    if perfect == null:
        raise ValueError("no anomaly window to score against")
    return 100.0 * (raw - null) / (perfect - null)


@dataclass(frozen=True)
class EventCounts:
    """Point-wise and event-wise counts of one series (rows after probation only).

    Point-wise: ``flagged`` rows (over the threshold, before the one-per-episode
    rule) against rows inside windows. Event-wise: a window is found by a
    detection inside it; a detection outside every window is a false alarm.
    ``delays`` are rows from each found window's start to its first detection.
    """

    flagged_in: int
    flagged_out: int
    window_rows: int
    windows: int
    found: int
    detections_in: int
    detections_out: int
    delays: tuple[int, ...]


def event_counts(
    n_rows: int, flagged: Sequence[bool], detections: Sequence[bool],
    windows: Sequence[tuple[int, int]], probation: int,
) -> EventCounts:  # fmt: skip
    """Count one series for the point-wise and event-wise measures.

    >>> c = event_counts(10, [0, 0, 0, 1, 1, 1, 0, 0, 1, 0], [0, 0, 0, 1, 0, 0, 0, 0, 1, 0],
    ...                  [(4, 6)], probation=2)
    >>> (c.flagged_in, c.flagged_out, c.window_rows, c.found, c.detections_out, c.delays)
    (2, 2, 3, 0, 2, ())
    """
    scored = [w for w in windows if w[1] >= probation]
    inside = {i for w in scored for i in range(max(w[0], probation), w[1] + 1)}
    rows = range(probation, n_rows)
    flagged_in = sum(1 for i in rows if flagged[i] and i in inside)
    flagged_out = sum(1 for i in rows if flagged[i] and i not in inside)
    detections_in = sum(1 for i in rows if detections[i] and i in inside)
    detections_out = sum(1 for i in rows if detections[i] and i not in inside)
    delays = []
    for left, right in scored:
        first = next((i for i in range(max(left, probation), right + 1) if detections[i]), None)
        if first is not None:
            delays.append(first - left)
    return EventCounts(flagged_in, flagged_out, len(inside), len(scored), len(delays),
                       detections_in, detections_out, tuple(delays))  # fmt: skip
