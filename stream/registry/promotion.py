"""The promotion gate: does a retrained challenger replace the champion?

Pure: it judges z-scores (see :class:`seismo.stream.scoring.threshold.Threshold`) of the same
held-back events under both models, each with its own threshold statistics.
The held-back slice is the newest part of the training window, i.e. recent
data. Two situations are told apart by how much of that slice the champion
flags:

- **The champion still fits** (it flags at most ``regime_share`` of the
  slice): the events it flags are taken as anomalies and the rest as recent
  normal data. The challenger must (1) raise no more false alerts than
  ``max_alert_rate`` on the recent normal events, (2) have a 99th-percentile
  z-score there at most ``p99_margin`` above the champion's or ``k``,
  whichever is larger (the champion's recent normal events are, by their
  definition, the ones below its threshold), and
  (3) still flag at least ``min_agreement`` of the champion's anomalies
  (checked once there are ``min_anomalies`` of them). A challenger trained on
  a window poisoned with anomalies learns to reconstruct them and fails (3).
- **A new regime** (the champion flags more than ``regime_share``): a
  sustained majority of "anomalies" is a new normal, so the whole slice is
  recent normal data and only (1) and (2) apply.

A window with fewer than ``min_train_size`` training events is rejected
before anything else: seismo never promotes a model trained on too little.

The challenger's calibrated threshold (what scorers use after the swap,
until they have learnt) must lie within a factor of ``max_calibration_change``
of the reference's, the version an operator published (its square in a new
regime, and never below one over its square: :func:`calibration_within`).
The held-back slice is recent
data that any producer can write to: a window filled with copies of one
reading trains a challenger whose calibration is degenerate (a threshold a
millionth of the champion's: every event alerts) or, with the copies a sixth
of the window, widened eighteenfold (a red-team run: recall 0.12 after the
swap), while its z-scores on that same slice look fine.

Examples
--------
>>> policy = GatePolicy(min_train_size=100, min_anomalies=2)
>>> normal = np.linspace(-2.0, 2.0, 98)
>>> champion = np.concatenate([normal, [6.0, 7.0]])      # flags the last two
>>> decide(champion, champion - 0.1, k=3.0, n_train=500, policy=policy).promote
True
>>> poisoned = np.concatenate([normal, [0.5, 0.4]])      # learnt the anomalies
>>> decide(champion, poisoned, k=3.0, n_train=500, policy=policy).reason
'forgets_anomalies'
>>> decide(champion, champion, k=3.0, n_train=50, policy=policy).reason
'too_little_data'
>>> drifted = normal + 8.0                                # everything flagged: new regime
>>> d = decide(drifted, normal, k=3.0, n_train=500, policy=policy)
>>> d.promote, d.reason, d.metrics["regime_change"]
(True, 'promoted', True)
>>> decide(champion, champion - 0.1, k=3.0, n_train=500, policy=policy,
...        calibration_ratio=18.0).reason
'calibration_out_of_bounds'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class GatePolicy:
    """Thresholds of the promotion gate (see the module docstring)."""

    min_train_size: int = 1000
    max_alert_rate: float = 0.03
    p99_margin: float = 1.0
    regime_share: float = 0.5
    min_agreement: float = 0.5
    min_anomalies: int = 10
    max_calibration_change: float = 4.0


@dataclass(frozen=True)
class Decision:
    """The gate's verdict: ``promote`` and why (``"promoted"`` or a reject reason)."""

    promote: bool
    reason: str
    metrics: dict[str, Any] = field(default_factory=dict)


def _p99(z: np.ndarray) -> float:
    return float(np.quantile(z, 0.99)) if len(z) else float("nan")


def _rate(flags: np.ndarray) -> float:
    return float(flags.mean()) if len(flags) else 0.0


def decide(
    champion_z: np.ndarray,
    challenger_z: np.ndarray,
    *,
    k: float,
    n_train: int,
    policy: GatePolicy = GatePolicy(),
    calibration_ratio: float | None = None,
) -> Decision:
    """Judge a challenger against the champion on the same held-back events.

    Parameters
    ----------
    champion_z, challenger_z : numpy.ndarray
        ``(n,)`` z-scores of the held-back events under each model's own
        threshold statistics; an event is flagged when its z-score is above ``k``.
    k : float
        The scorers' threshold multiplier.
    n_train : int
        Events the challenger was trained on.
    policy : GatePolicy
    calibration_ratio : float, optional
        The challenger's calibrated threshold over the reference's (score units);
        outside the bounds of :func:`calibration_within` (or not finite) it is
        rejected. ``None``: not checked.

    Returns
    -------
    Decision
        ``metrics`` holds the figures behind the verdict (rates, p99
        z-scores, agreement, sizes, whether a new regime was assumed).
    """
    champion_z = np.asarray(champion_z, dtype=np.float64)
    challenger_z = np.asarray(challenger_z, dtype=np.float64)
    if champion_z.shape != challenger_z.shape:
        raise ValueError("both models must be judged on the same events")
    flagged = champion_z > k
    regime = _rate(flagged) > policy.regime_share
    normal = np.ones_like(flagged) if regime else ~flagged
    challenger_flags = challenger_z > k
    agreement = float(challenger_flags[flagged].mean()) if flagged.any() else float("nan")
    metrics: dict[str, Any] = {
        "n_train": int(n_train),
        "n_holdout": int(len(champion_z)),
        "regime_change": bool(regime),
        "champion_alert_rate": _rate(flagged),
        "challenger_alert_rate": _rate(challenger_flags[normal]),
        "champion_p99_z": _p99(champion_z[normal]),
        "challenger_p99_z": _p99(challenger_z[normal]),
        "agreement": agreement,
        "champion_anomalies": int(flagged.sum()),
        "k": float(k),
    }
    metrics["calibration_ratio"] = None if calibration_ratio is None else float(calibration_ratio)
    reason = _first_failure(metrics, policy)
    return Decision(reason is None, reason or "promoted", metrics)


def _first_failure(m: dict[str, Any], policy: GatePolicy) -> str | None:
    if m["n_train"] < policy.min_train_size:
        return "too_little_data"
    if m["n_holdout"] == 0 or np.isnan(m["challenger_p99_z"]):
        return "empty_holdout"
    if m["challenger_alert_rate"] > policy.max_alert_rate:
        return "alerts_too_often"
    if m["challenger_p99_z"] > max(m["champion_p99_z"], m["k"]) + policy.p99_margin:
        return "worse_p99"
    checks_anomalies = not m["regime_change"] and m["champion_anomalies"] >= policy.min_anomalies
    if checks_anomalies and m["agreement"] < policy.min_agreement:
        return "forgets_anomalies"
    ratio = m.get("calibration_ratio")
    if ratio is not None and not calibration_within(ratio, policy.max_calibration_change,
                                                    regime=m["regime_change"]):  # fmt: skip
        return "calibration_out_of_bounds"
    return None


def calibration_within(ratio: float, factor: float, *, regime: bool) -> bool:
    """Whether a challenger's calibrated threshold, ``ratio`` times the champion's, is sane.

    While the champion still fits, the challenger learnt the same data: its
    threshold must lie within ``factor`` of the reference's. A new regime may
    legitimately be calmer or busier (a test's regime change: 0.26), so there the
    bound is ``factor ** 2``; never below ``1 / factor ** 2`` (a window of copies of
    one reading: a millionth).

    >>> calibration_within(3.0, 4.0, regime=False), calibration_within(18.0, 4.0, regime=False)
    (True, False)
    >>> calibration_within(0.26, 4.0, regime=True), calibration_within(1e-6, 4.0, regime=True)
    (True, False)
    >>> calibration_within(float("nan"), 4.0, regime=False)
    False
    """
    upper = factor**2 if regime else factor
    return 1.0 / factor**2 <= ratio <= upper
