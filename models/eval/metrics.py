"""Metrics of anomaly scores against known labels, in plain numpy.

Scores follow the detector contract: **higher = more anomalous**. Labels are
``0`` (normal) and ``1`` (anomaly). Ranking metrics (ROC-AUC, average
precision) use every score; the thresholded metrics (confusion matrix,
precision, recall, F1) flag a row when ``score > threshold``, the same rule
as `seismo.stream.scoring.threshold.Threshold.classify`. Each metric matches scikit-learn's
(``roc_auc_score``, ``average_precision_score``, ``roc_curve`` and
``precision_recall_curve`` with every threshold kept, ``confusion_matrix``,
``classification_report`` with ``zero_division=0``), which is a test
dependency only.

Examples
--------
>>> y = np.array([0, 0, 1, 1])
>>> s = np.array([0.1, 0.4, 0.35, 0.8])
>>> roc_auc(y, s), pr_auc(y, s)
(0.75, 0.8333333333333333)
>>> e = evaluate(y, s, threshold=0.3, threshold_rule="fixed 0.3")
>>> e.confusion, e.precision, e.recall
(Confusion(tn=1, fp=1, fn=0, tp=2), 0.6666666666666666, 1.0)
>>> sorted(e.to_json_dict())[:4]
['accuracy', 'confusion_matrix', 'f1', 'n']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from seismo.models.calibration import Calibration
from seismo.models.errors import ArtifactError, DataError

#: Which threshold of the artifact's calibration to apply.
ThresholdChoice = Literal["calibration", "contamination"]


def labels_and_scores(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels as bool ``(n,)`` and scores as float64 ``(n,)``: equal 1-D shapes, labels
    0/1, scores finite (each metric then asks for the classes it needs).

    >>> labels_and_scores(np.array([0, 1]), np.array([0.5, 2.0]))[0].tolist()
    [False, True]
    """
    labels = np.asarray(y)
    values = np.asarray(scores, dtype=np.float64)
    if labels.ndim != 1 or labels.shape != values.shape:
        raise DataError(f"labels {labels.shape} and scores {values.shape} must be equal 1-D shapes")
    if not np.isin(labels, (0, 1)).all():
        raise DataError("labels must be 0 (normal) or 1 (anomaly)")
    if not np.isfinite(values).all():
        raise DataError("scores contain NaN or Inf")
    return labels.astype(bool), values


def _checked(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`labels_and_scores` with both classes present."""
    positives, values = labels_and_scores(y, scores)
    if positives.all() or not positives.any():
        raise DataError(
            "evaluation needs both normal (0) and anomalous (1) rows; "
            f"all {positives.size} labels are {int(positives[0]) if positives.size else 'missing'}"
        )
    return positives, values


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of ``values`` (n,), tied values sharing their average rank.

    >>> average_ranks(np.array([3.0, 1.0, 3.0, 2.0])).tolist()
    [3.5, 1.0, 3.5, 2.0]
    """
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], ordered.size]  # exclusive
    mean_rank = (starts + ends + 1) / 2.0  # mean of starts+1 .. ends
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def roc_auc(y: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve: P(anomaly scores above normal), ties counted half.

    Rank-based (Mann-Whitney U), exact for ties. 0.5 = chance, 1.0 = perfect.

    >>> roc_auc(np.array([0, 1, 0, 1]), np.array([1.0, 1.0, 0.0, 2.0]))
    0.875
    """
    positives, values = _checked(y, scores)
    n_pos = int(positives.sum())
    n_neg = positives.size - n_pos
    rank_sum = float(average_ranks(values)[positives].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def _counts(positives: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, ...]:
    """Cumulative (fps, tps, thresholds) at each distinct score, highest first."""
    order = np.argsort(-values, kind="mergesort")
    ordered, hits = values[order], positives[order]
    last = np.r_[np.flatnonzero(ordered[1:] != ordered[:-1]), ordered.size - 1]
    tps = np.cumsum(hits)[last]
    fps = (last + 1) - tps
    return fps.astype(np.float64), tps.astype(np.float64), ordered[last]


def roc_curve(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False- and true-positive rates at every distinct threshold.

    Returns ``(fpr, tpr, thresholds)``, each ``(m + 1,)`` for ``m`` distinct
    scores; thresholds decrease from ``inf`` (nothing flagged, the point
    (0, 0)) and a row counts as flagged when ``score >= threshold``.

    >>> fpr, tpr, t = roc_curve(np.array([0, 1, 1]), np.array([0.2, 0.9, 0.5]))
    >>> fpr.tolist(), tpr.tolist(), t.tolist()
    ([0.0, 0.0, 0.0, 1.0], [0.0, 0.5, 1.0, 1.0], [inf, 0.9, 0.5, 0.2])
    """
    positives, values = _checked(y, scores)
    fps, tps, thresholds = _counts(positives, values)
    fpr = np.r_[0.0, fps / fps[-1]]
    tpr = np.r_[0.0, tps / tps[-1]]
    return fpr, tpr, np.r_[np.inf, thresholds]


def pr_curve(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision and recall at every distinct threshold, as scikit-learn orders them.

    Returns ``(precision, recall, thresholds)``: thresholds increase
    (``(m,)``); precision and recall have one more point, ``(1, 0)``, at the end.

    >>> p, r, t = pr_curve(np.array([0, 1, 1]), np.array([0.2, 0.9, 0.5]))
    >>> p.round(3).tolist(), r.tolist(), t.tolist()
    ([0.667, 1.0, 1.0, 1.0], [1.0, 1.0, 0.5, 0.0], [0.2, 0.5, 0.9])
    """
    positives, values = _checked(y, scores)
    fps, tps, thresholds = _counts(positives, values)
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    return np.r_[precision[::-1], 1.0], np.r_[recall[::-1], 0.0], thresholds[::-1]


def pr_auc(y: np.ndarray, scores: np.ndarray) -> float:
    """Average precision: ``sum_n (R_n - R_{n-1}) P_n``, a step-wise PR-curve area.

    No interpolation (as scikit-learn's ``average_precision_score``); the
    chance level is the share of anomalies.

    >>> pr_auc(np.array([0, 1, 1]), np.array([0.2, 0.9, 0.5]))
    1.0
    """
    precision, recall, _ = pr_curve(y, scores)
    return float(-np.sum(np.diff(recall) * precision[:-1]))


@dataclass(frozen=True)
class Confusion:
    """Counts of a binary decision; positive = anomaly (label 1, flagged)."""

    tn: int
    fp: int
    fn: int
    tp: int

    @property
    def n(self) -> int:
        """Total rows."""
        return self.tn + self.fp + self.fn + self.tp

    def as_matrix(self) -> list[list[int]]:
        """``[[tn, fp], [fn, tp]]``: rows = true label, columns = predicted."""
        return [[self.tn, self.fp], [self.fn, self.tp]]


def confusion(y: np.ndarray, flagged: np.ndarray) -> Confusion:
    """Confusion counts of 0/1 labels ``(n,)`` against boolean predictions ``(n,)``.

    >>> confusion(np.array([0, 0, 1, 1]), np.array([False, True, False, True]))
    Confusion(tn=1, fp=1, fn=1, tp=1)
    """
    truth = np.asarray(y).astype(bool)
    pred = np.asarray(flagged).astype(bool)
    return Confusion(
        tn=int(np.sum(~truth & ~pred)),
        fp=int(np.sum(~truth & pred)),
        fn=int(np.sum(truth & ~pred)),
        tp=int(np.sum(truth & pred)),
    )


def _ratio(num: float, den: float) -> float:
    """``num / den``, or 0.0 when ``den`` is 0 (scikit-learn's ``zero_division=0``)."""
    return num / den if den else 0.0


def class_scores(c: Confusion, positive: int = 1) -> tuple[float, float, float, int]:
    """``(precision, recall, f1, support)`` for class ``positive`` (0 or 1).

    >>> class_scores(Confusion(tn=5, fp=1, fn=2, tp=2))
    (0.6666666666666666, 0.5, 0.5714285714285714, 4)
    >>> class_scores(Confusion(tn=5, fp=1, fn=2, tp=2), positive=0)[:2]
    (0.7142857142857143, 0.8333333333333334)
    """
    tp, fp, fn = (c.tp, c.fp, c.fn) if positive == 1 else (c.tn, c.fn, c.fp)
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    return precision, recall, _ratio(2 * tp, 2 * tp + fp + fn), tp + fn


def classification_report(
    c: Confusion, names: tuple[str, str] = ("0", "1"), digits: int = 2
) -> str:
    """Per-class precision/recall/F1/support, accuracy, macro and weighted averages.

    Laid out exactly like scikit-learn's ``classification_report``.

    >>> print(classification_report(Confusion(tn=5, fp=1, fn=2, tp=2)))
                  precision    recall  f1-score   support
    <BLANKLINE>
               0       0.71      0.83      0.77         6
               1       0.67      0.50      0.57         4
    <BLANKLINE>
        accuracy                           0.70        10
       macro avg       0.69      0.67      0.67        10
    weighted avg       0.70      0.70      0.69        10
    <BLANKLINE>
    """
    rows = [class_scores(c, 0), class_scores(c, 1)]
    support = np.array([r[3] for r in rows], dtype=np.float64)
    stats = np.array([r[:3] for r in rows])
    macro = stats.mean(axis=0)
    weighted = stats.T @ support / support.sum()
    width = max(*(len(name) for name in names), len("weighted avg"), digits)
    line = "{:>{width}s} " + " {:>9.{digits}f}" * 3 + " {:>9}\n"
    text = ("{:>{width}s} " + " {:>9}" * 4).format(
        "", "precision", "recall", "f1-score", "support", width=width
    ) + "\n\n"
    for name, row in zip(names, rows, strict=True):
        text += line.format(name, *row, width=width, digits=digits)
    accuracy = _ratio(c.tp + c.tn, c.n)
    text += "\n" + ("{:>{width}s} " + " {:>9}" * 2 + " {:>9.{digits}f} {:>9}\n").format(
        "accuracy", "", "", accuracy, c.n, width=width, digits=digits
    )
    text += line.format("macro avg", *macro, c.n, width=width, digits=digits)
    text += line.format("weighted avg", *weighted, c.n, width=width, digits=digits)
    return text


def select_threshold(
    calibration: Calibration, choice: ThresholdChoice = "calibration", *, k: float = 3.0,
    space: str = "log",
) -> tuple[float, str]:
    """The score threshold of an artifact's calibration and a one-line rule description.

    ``calibration``: ``exp(log_mean + k * log_std)`` in ``log`` space, or
    ``mean + k * std`` in ``linear`` space (as the live threshold during
    warm-up). ``contamination``: the stored contamination threshold.

    >>> cal = Calibration(count=9, mean=1.0, std=0.5, quantiles={}, log_mean=0.0, log_std=0.5)
    >>> select_threshold(cal, k=2.0, space="linear")
    (2.0, 'calibration linear mean + 2 * std')
    >>> select_threshold(cal, "contamination")
    Traceback (most recent call last):
    ...
    seismo.models.errors.ArtifactError: the model has no contamination threshold (train it ...
    """
    if choice == "contamination":
        value = calibration.contamination_threshold
        if value is None:
            raise ArtifactError("the model has no contamination threshold (train it with "
                                "seismo train --contamination RATIO), or use the calibration one")
        ratio = calibration.contamination
        return float(value), f"contamination {ratio:g} of training scores flagged"
    if space == "log":
        value = float(np.exp(calibration.log_mean + k * calibration.log_std))
        return value, f"calibration log exp(log_mean + {k:g} * log_std)"
    return calibration.mean + k * calibration.std, f"calibration linear mean + {k:g} * std"


@dataclass(frozen=True)
class Evaluation:
    """Ranking and thresholded metrics of one model on one labelled data set."""

    roc_auc: float
    pr_auc: float
    threshold: float
    threshold_rule: str
    confusion: Confusion

    @property
    def n(self) -> int:
        """Rows evaluated."""
        return self.confusion.n

    @property
    def n_anomalies(self) -> int:
        """Rows labelled 1."""
        return self.confusion.tp + self.confusion.fn

    @property
    def precision(self) -> float:
        """Share of flagged rows that are anomalies (0 when nothing is flagged)."""
        return class_scores(self.confusion)[0]

    @property
    def recall(self) -> float:
        """Share of anomalies flagged."""
        return class_scores(self.confusion)[1]

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall (0 when both are 0)."""
        return class_scores(self.confusion)[2]

    @property
    def accuracy(self) -> float:
        """Share of rows classified correctly."""
        return _ratio(self.confusion.tp + self.confusion.tn, self.n)

    def report(self) -> str:
        """`classification_report` text with classes named normal/anomaly."""
        return classification_report(self.confusion, names=("normal (0)", "anomaly (1)"))

    def to_json_dict(self) -> dict[str, Any]:
        """Plain JSON-able metrics; ``confusion_matrix`` is ``[[tn, fp], [fn, tp]]``."""
        return {
            "roc_auc": self.roc_auc,
            "pr_auc": self.pr_auc,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "accuracy": self.accuracy,
            "threshold": self.threshold,
            "threshold_rule": self.threshold_rule,
            "n": self.n,
            "n_anomalies": self.n_anomalies,
            "confusion_matrix": self.confusion.as_matrix(),
        }


def evaluate(
    y: np.ndarray, scores: np.ndarray, *, threshold: float, threshold_rule: str
) -> Evaluation:
    """Score-vs-label metrics; rows with ``score > threshold`` are flagged.

    Parameters
    ----------
    y : numpy.ndarray
        ``(n,)`` labels, 0 = normal, 1 = anomaly; both must occur.
    scores : numpy.ndarray
        ``(n,)`` finite anomaly scores, higher = more anomalous.
    threshold : float
        Score units.
    threshold_rule : str
        How ``threshold`` was chosen, reported as is.
    """
    positives, values = _checked(y, scores)
    return Evaluation(
        roc_auc=roc_auc(positives, values),
        pr_auc=pr_auc(positives, values),
        threshold=float(threshold),
        threshold_rule=threshold_rule,
        confusion=confusion(positives, values > threshold),
    )
