"""`seismo evaluate` run as a subprocess on scikit-learn's bundled data sets.

Breast cancer (569 rows, 30 features): a model trained on the benign rows only
scores every row; malignant = anomaly (212 rows). Measured with 10 epochs,
seeds 0/1/2: ROC-AUC 0.954 / 0.940 / 0.954, average precision 0.93 / 0.92 /
0.93. The test asserts ROC-AUC > 0.85. Digits: a model trained on the 0s
evaluates 0s against 1s as 8x8 images, which writes the image grids.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.metrics import average_precision_score, roc_auc_score

from seismo.models.artifact import load_artifact
from seismo.models.errors import ArtifactError, DataError
from seismo.stream.errors import ConfigError
from seismo.stream.offline.evaluate import run_evaluate
from tests.pipes import run_seismo

RUN_TIMEOUT_S = 120.0
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
REQUIRED_KEYS = {"roc_auc", "pr_auc", "precision", "recall", "f1", "threshold", "n", "n_anomalies"}
#: Measured 0.940-0.954 (see the module docstring); the margin absorbs platform drift.
MIN_ROC_AUC = 0.85


def seismo_ok(*args: str):
    done = run_seismo(*args, timeout=RUN_TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    return done


def assert_one_line_error(done, expected: str) -> None:
    assert done.returncode == 1, (done.returncode, done.stderr[-3000:])
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("seismo: error:"), done.stderr[-3000:]
    assert expected in lines[0], lines[0]


def train(data: Path, out: Path, *extra: str) -> Path:
    seismo_ok("train", "--data", str(data), "--out", str(out), "--epochs", "10", "--seed", "0",
              "--device", "cpu", *extra)
    return out


@pytest.fixture(scope="module")
def cancer(tmp_path_factory) -> dict[str, Path]:
    """Benign-only training file, all rows labelled (y = malignant), and the model."""
    root = tmp_path_factory.mktemp("cancer")
    bunch = load_breast_cancer()
    x, target = bunch.data.astype(np.float32), bunch.target
    np.savez(root / "benign.npz", X=x[target == 1])
    np.savez(root / "all.npz", X=x, y=(target == 0).astype(np.int64))
    np.savez(root / "unlabelled.npz", X=x)
    model = train(root / "benign.npz", root / "model", "--contamination", "0.05")
    return {"root": root, "all": root / "all.npz", "model": model,
            "unlabelled": root / "unlabelled.npz"}


def evaluate_json(model: Path, data: Path, *extra: str) -> dict:
    done = seismo_ok("evaluate", "--model", str(model), "--data", str(data), "--json",
                     "--device", "cpu", *extra)
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout  # one JSON object and nothing else on stdout
    return json.loads(lines[0])


def check_report(directory: Path, expected_pngs: set[str]) -> str:
    """Every PNG is a real PNG, referenced by index.html, and every reference exists."""
    html = (directory / "index.html").read_text(encoding="utf-8")
    pngs = {p.name for p in directory.glob("*.png")}
    assert expected_pngs <= pngs, pngs
    for name in pngs:
        assert (directory / name).read_bytes()[:8] == PNG_MAGIC, name
    assert set(re.findall(r'src="([^"]+)"', html)) == pngs
    return html


def test_json_metrics_and_report(cancer, tmp_path):
    report = tmp_path / "report"
    result = evaluate_json(cancer["model"], cancer["all"], "--report", str(report))
    assert REQUIRED_KEYS <= set(result)
    assert result["n"] == 569 and result["n_anomalies"] == 212
    assert result["roc_auc"] > MIN_ROC_AUC, result
    assert result["pr_auc"] > 212 / 569, result  # better than the chance level
    for key in ("roc_auc", "pr_auc", "precision", "recall", "f1"):
        assert 0.0 <= result[key] <= 1.0, (key, result[key])
    matrix = np.array(result["confusion_matrix"])
    assert matrix.sum() == result["n"] and matrix[1].sum() == result["n_anomalies"]
    calibration = json.loads((cancer["model"] / "config.json").read_text())["calibration"]
    expected = np.exp(calibration["log_mean"] + 3.0 * calibration["log_std"])
    assert result["threshold"] == pytest.approx(expected)

    # the same numbers as scikit-learn on the artifact's own scores
    data = np.load(cancer["all"])
    scores = load_artifact(cancer["model"], device="cpu").detector.score_batch(data["X"])
    assert result["roc_auc"] == pytest.approx(roc_auc_score(data["y"], scores), abs=1e-6)
    assert result["pr_auc"] == pytest.approx(average_precision_score(data["y"], scores), abs=1e-6)

    html = check_report(report, {"scores_histogram.png", "roc_curve.png", "pr_curve.png",
                                 "latent_scatter.png"})
    assert not (report / "images_extremes.png").exists()  # 30 features are no image
    assert "weighted avg" in html and "roc_auc" in html


def test_human_output_tables(cancer):
    done = seismo_ok("evaluate", "--model", str(cancer["model"]), "--data", str(cancer["all"]),
                     "--device", "cpu")
    for text in ("roc_auc", "pr_auc", "confusion matrix", "TN", "accuracy", "weighted avg"):
        assert text in done.stdout, done.stdout


def in_process_json(capsys, model: Path, data: Path, **options) -> dict:
    """`run_evaluate` in this process (cheaper than a subprocess for option variants)."""
    run_evaluate(model=model, data=data, as_json=True, device="cpu", **options)
    return json.loads(capsys.readouterr().out)


def test_threshold_space_k_and_contamination(cancer, capsys):
    calibration = json.loads((cancer["model"] / "config.json").read_text())["calibration"]
    model, data = cancer["model"], cancer["all"]
    linear = in_process_json(capsys, model, data, threshold_space="linear", k=2.0)
    assert linear["threshold"] == pytest.approx(calibration["mean"] + 2 * calibration["std"])
    contamination = in_process_json(capsys, model, data, threshold="contamination")
    assert contamination["threshold"] == pytest.approx(calibration["contamination_threshold"])
    assert linear["roc_auc"] == contamination["roc_auc"]  # ranking does not use the threshold


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"threshold_space": "squared"}, ConfigError, "--threshold-space must be log or linear"),
        ({"threshold": "best"}, ConfigError, "--threshold must be calibration or contamination"),
        ({"image_shape_text": "5x5"}, DataError, "image shape 5x5 has 25 pixels"),
        ({"image_shape_text": "big"}, DataError, "image shape must look like 28x28"),
        ({"label_column": "labels"}, DataError, "has no label array 'labels'"),
    ],
)
def test_bad_options_raise_one_line_errors(cancer, options, error, message):
    with pytest.raises(error, match=re.escape(message)) as caught:
        run_evaluate(model=cancer["model"], data=cancer["all"], device="cpu", **options)
    assert "\n" not in str(caught.value)


def test_unlabelled_data_is_a_one_line_error(cancer):
    done = run_seismo("evaluate", "--model", str(cancer["model"]), "--data",
                      str(cancer["unlabelled"]), "--device", "cpu", timeout=RUN_TIMEOUT_S)
    assert_one_line_error(done, "evaluation needs labels")
    assert done.stdout == ""


def test_digits_report_has_image_grids(tmp_path):
    bunch = load_digits()
    x, target = bunch.data.astype(np.float32), bunch.target
    keep = (target == 0) | (target == 1)
    np.savez(tmp_path / "zeros.npz", X=x[target == 0])
    np.savez(tmp_path / "zeros_ones.npz", X=x[keep], y=(target[keep] == 1).astype(np.int64))
    model = train(tmp_path / "zeros.npz", tmp_path / "model")
    data, report = tmp_path / "zeros_ones.npz", tmp_path / "report"
    result = evaluate_json(model, data, "--report", str(report), "--image-shape", "8x8")
    assert result["roc_auc"] > MIN_ROC_AUC, result
    check_report(report, {"images_extremes.png", "images_pairs.png", "latent_scatter.png"})
    with pytest.raises(ArtifactError, match="no contamination threshold"):
        run_evaluate(model=model, data=data, threshold="contamination", device="cpu")
