"""One retraining round on a window of events: split, train a challenger, judge it.

No Kafka and no Redis here: :mod:`seismo.stream.retrain.retrainer` gathers the window and the
champion's threshold and publishes what this module promotes.

The round, in order:

1. the champion judges every event of the window with the threshold the
   scorers use (the shared statistics, or its calibration during warm-up);
2. the newest ``holdout_fraction`` of the window (by event time) is held back;
3. the older events train the challenger, leaving out the ones the champion
   flags, unless ``include_flagged`` or the champion flags more than
   ``regime_share`` of the held-back events (a new regime: the flagged events
   are the new normal);
4. both models are judged on the held-back events by
   :func:`seismo.stream.registry.promotion.decide`, each against its own threshold statistics
   (the challenger's are its calibration, which is what scorers start from
   after the swap), and the challenger's calibrated threshold must stay
   within ``max_calibration_change`` of the reference's: the version an
   operator published (:func:`reference_of`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from seismo.models.artifact import Artifact
from seismo.models.calibration import Calibration
from seismo.models.challenger import champion_range, train_challenger
from seismo.models.errors import SeismoError
from seismo.models.terms.training_range import bounds_problem
from seismo.stream.registry.promotion import Decision, GatePolicy, decide
from seismo.stream.retrain.reservoir import Window
from seismo.stream.scoring.stats import RunningStats
from seismo.stream.scoring.threshold import ScoreSpace, Threshold, ThresholdRule

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RoundOptions:
    """How a round splits its window and trains (see the module docstring)."""

    holdout_fraction: float = 0.2
    include_flagged: bool = False
    k: float = 3.0
    space: ScoreSpace = "log"
    epochs: int | None = None
    seed: int = 0
    device: str = "auto"
    should_stop: Callable[[], bool] | None = None
    """Asked after each training epoch; true ends the round (``TrainingStopped``)."""


@dataclass(frozen=True)
class RoundResult:
    """What a round decided, the challenger it trained (if any) and how long it took."""

    decision: Decision
    challenger: Artifact | None
    seconds: float

    def summary(self) -> dict[str, Any]:
        """A JSON-able account of the round (for logs and ``seismo retrain --once``).

        A figure that does not exist (the agreement when the champion flagged
        nothing, a p99 of no events) is ``None`` (JSON ``null``), never NaN.
        """
        return {
            "promoted": self.decision.promote,
            "reason": self.decision.reason,
            "challenger": self.challenger.version if self.challenger else None,
            "seconds": round(self.seconds, 3),
            **{key: json_number(value) for key, value in self.decision.metrics.items()},
        }


def json_number(value: Any) -> Any:
    """``value``, or ``None`` for a float that JSON cannot hold (NaN, Inf).

    >>> json_number(float("nan")), json_number(0.5), json_number("promoted")
    (None, 0.5, 'promoted')
    """
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def holdout_split(n: int, fraction: float) -> int:
    """Index where the held-back newest ``fraction`` of ``n`` time-ordered events starts.

    >>> holdout_split(100, 0.2), holdout_split(3, 0.2), holdout_split(0, 0.2)
    (80, 2, 0)
    """
    if n == 0:
        return 0
    return n - min(max(1, round(n * fraction)), n)


def run_round(
    champion: Artifact,
    window: Window,
    champion_threshold: Threshold,
    *,
    options: RoundOptions,
    policy: GatePolicy,
    trigger: str,
) -> RoundResult:
    """Train and judge one challenger on ``window`` (oldest first)."""
    started = time.perf_counter()
    cut = holdout_split(len(window), options.holdout_fraction)
    flags, champion_z = champion_threshold.classify(champion.detector.score_batch(window.values))
    regime = bool(flags[cut:].mean() > policy.regime_share) if cut < len(window) else False
    train_mask = np.arange(len(window)) < cut
    if not (options.include_flagged or regime):
        train_mask &= ~flags
    train = window.take(train_mask)
    held = window.take(np.arange(cut, len(window)))
    n_train = len(train)
    if n_train < policy.min_train_size:
        metrics = {"n_train": n_train, "n_holdout": len(held), "regime_change": regime}
        decision = Decision(False, "too_little_data", metrics)
        return RoundResult(decision, None, time.perf_counter() - started)
    reference = reference_of(champion)
    describe = _describe(window, train, trigger, int((~train_mask[:cut]).sum()), regime)
    describe["reference"] = {"version": reference[0], "calibration": asdict(reference[1])}
    span, carried = reference_range(champion)
    if span is not None and carried:
        describe["reference"]["range"] = {"low": span[0].tolist(), "high": span[1].tolist()}
    try:
        challenger = train_challenger(
            champion, train.values, window=describe, epochs=options.epochs,
            seed=options.seed, device=options.device, should_stop=options.should_stop,
            cover=span,
        )  # fmt: skip
    except SeismoError as exc:
        log.warning("challenger training failed: %s", exc)
        decision = Decision(False, "training_failed", {"n_train": n_train, "error": str(exc)})
        return RoundResult(decision, None, time.perf_counter() - started)
    rule = ThresholdRule(k=options.k, min_samples=1, space=options.space)
    challenger_threshold = rule.current(RunningStats(), challenger.calibration)
    _, challenger_z = challenger_threshold.classify(challenger.detector.score_batch(held.values))
    decision = decide(
        champion_z[cut:], challenger_z, k=options.k, n_train=n_train, policy=policy,
        calibration_ratio=calibration_ratio(challenger_threshold.value, reference, rule),
    )  # fmt: skip
    return RoundResult(decision, challenger, time.perf_counter() - started)


Reference = tuple[str, Calibration]
"""The version whose calibration bounds a challenger's, and that calibration."""


def _recorded_reference(champion: Artifact) -> dict[str, Any] | None:
    """The reference a promoted version records in its training window, as stored."""
    window = champion.training.get("window")
    found = window.get("reference") if isinstance(window, dict) else None
    return found if isinstance(found, dict) else None


def reference_of(champion: Artifact) -> Reference:
    """The calibration a challenger's is bounded by: the version an operator published.

    A version this sidecar promoted carries its champion's reference on (in its
    training window), so promotions cannot move the bound step by step, and a
    bad version that got through is replaced by the next good challenger; a
    version published by hand (``seismo models publish``, or one trained
    elsewhere) is its own reference.
    """
    found = _recorded_reference(champion)
    if found is not None:
        try:
            return str(found["version"]), Calibration(**found["calibration"])
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("version %s records a reference calibration that cannot be read "
                        "(%s): it is its own reference", champion.version, exc)  # fmt: skip
    return champion.version, champion.calibration


def reference_range(champion: Artifact) -> tuple[tuple[np.ndarray, np.ndarray] | None, bool]:
    """The range term (raw low, high) a challenger's range covers, and whether to carry it
    on as the reference's: the reference version's (:func:`reference_of`), so a version
    promoted by mistake does not widen every later range. ``(None, False)`` when the
    champion has no range term.

    A champion that is its own reference (published by hand) gives its own range, to
    carry on. A promoted one whose record holds no readable range (promoted before
    ranges were carried) gives its own, which its window widened, and it is not
    carried on as the reference's (a WARNING says so).
    """
    own = champion_range(champion)
    if own is None:
        return None, False
    if reference_of(champion)[0] == champion.version:
        return own, True
    found = _recorded_reference(champion)
    recorded = None if found is None else found.get("range")
    try:
        low = np.array(recorded["low"], dtype=np.float64)  # type: ignore[index]
        high = np.array(recorded["high"], dtype=np.float64)  # type: ignore[index]
        usable = bounds_problem(low, high, len(own[0])) is None
    except (KeyError, TypeError, ValueError):
        usable = False
    if not usable:
        log.warning("version %s records no usable range of its reference: the challenger "
                    "covers the champion's own range, and does not carry it on as the "
                    "reference's", champion.version)  # fmt: skip
        return own, False
    return (low, high), True


def calibration_ratio(challenger: float, reference: Reference, rule: ThresholdRule) -> float | None:
    """The challenger's calibrated threshold over the reference's; ``None`` (the bound
    not checked, and a WARNING) when the reference's is not a positive finite number."""
    version, calibration = reference
    value = rule.calibrated(calibration).value
    if not (math.isfinite(value) and value > 0):
        log.warning("the calibrated threshold of %s, the reference, is %r: the gate's "
                    "calibration bound is not checked", version, value)  # fmt: skip
        return None
    return challenger / value


def _describe(
    window: Window, train: Window, trigger: str, excluded: int, regime: bool
) -> dict[str, Any]:
    """The training window as recorded in the challenger's artifact."""
    return {
        "source": "kafka",
        "trigger": trigger,
        "events": len(train),
        "window_events": len(window),
        "excluded_flagged": excluded,
        "regime_change": regime,
        "ts_from": int(train.timestamps.min()) if len(train) else None,
        "ts_to": int(train.timestamps.max()) if len(train) else None,
    }
