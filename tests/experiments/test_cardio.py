"""The Cardio tutorial, reproduced: a confusion matrix and a classification report.

ODDS Cardio (1831 cardiotocography records, 21 features, 176 anomalies):
split 60/40 stratified, train the default autoencoder on the normal
records of the training split, and judge the test split at the artifact's own
threshold (log space, k = 3). Without ``$SEISMO_DATA/odds/6_cardio.npz``
(default ``../shared/data``) the same steps run on scikit-learn's breast
cancer set (malignant = anomaly).
"""

from __future__ import annotations

import numpy as np
import pytest

from seismo.models.artifact import build_artifact
from seismo.models.data import shared_data_dir
from seismo.models.eval.metrics import Evaluation, evaluate, select_threshold
from seismo.models.eval.odds_bench import stratified_split
from seismo.models.training import train_autoencoder


def cardio() -> tuple[str, np.ndarray, np.ndarray]:
    path = shared_data_dir("odds") / "6_cardio.npz"
    if path.exists():
        with np.load(path) as data:
            return "cardio", data["X"].astype(np.float64), data["y"].astype(np.int64)
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    return "breast-cancer", data.data, (data.target == 0).astype(np.int64)


@pytest.fixture(scope="module")
def result() -> tuple[str, dict[float, Evaluation]]:
    name, x, y = cardio()
    train, test = stratified_split(y, seed=0)
    normal = train[y[train] == 0]
    artifact = build_artifact(train_autoencoder(x[normal], device="cpu"))
    scores = artifact.detector.score_batch(x[test])
    judged = {}
    for k in (3.0, 1.5, 1.0):
        threshold, rule = select_threshold(artifact.calibration, k=k, space="log")
        judged[k] = evaluate(y[test], scores, threshold=threshold, threshold_rule=rule)
    return name, judged


def test_confusion_matrix_and_report(result) -> None:
    name, judged = result
    ev = judged[3.0]
    print(f"\n{name}: roc_auc {ev.roc_auc:.3f} pr_auc {ev.pr_auc:.3f}")
    print(f"confusion [[tn, fp], [fn, tp]] = {ev.confusion.as_matrix()}")
    print(ev.report())
    (tn, fp), (fn, tp) = ev.confusion.as_matrix()
    assert tn + fp + fn + tp == ev.n
    assert tp + fn == ev.n_anomalies > 0
    assert "anomaly (1)" in ev.report() and "weighted avg" in ev.report()
    # measured on cardio (docs/commands.md): ROC-AUC 0.92, [[655, 7], [44, 26]]: precision
    # 0.79, recall 0.37 at k = 3
    assert ev.roc_auc > 0.9
    assert ev.precision > 0.6 and ev.recall > 0.25


def test_a_lower_k_trades_precision_for_recall(result) -> None:
    _name, judged = result
    for k, ev in judged.items():
        print(f"\nk = {k:g}: precision {ev.precision:.2f}, recall {ev.recall:.2f}, f1 {ev.f1:.2f}")
    assert judged[1.0].recall >= judged[1.5].recall >= judged[3.0].recall
    assert judged[1.0].precision <= judged[3.0].precision
    assert judged[1.5].roc_auc == judged[3.0].roc_auc  # the ranking does not depend on k
