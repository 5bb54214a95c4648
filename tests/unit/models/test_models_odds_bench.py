"""The ODDS benchmark: split, runner, tables, and the ``seismo benchmark-odds`` command.

Everything runs on small generated data; nothing reads /work/shared/data.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from seismo.models.errors import DataError
from seismo.models.eval.odds_bench import (
    markdown_tables,
    run_benchmark,
    standardise,
    stratified_split,
    summarise,
)
from seismo.models.eval.odds_detectors import MissingPyOD, build_detectors, pyod_detector
from seismo.stream.bench.odds import SECTION, dataset_file, default_data_dir, replace_section
from seismo.stream.cli.app import app
from seismo.stream.errors import ConfigError, SeismoError


def _labelled(n: int, d: int, outliers: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian rows with ``outliers`` of them shifted far away; labels 1 for those."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    y = np.zeros(n, dtype=np.int64)
    y[rng.choice(n, size=outliers, replace=False)] = 1
    x[y == 1] += 6.0
    return x, y


def _norm_fit(_x: np.ndarray, _seed: int):
    return lambda x: np.linalg.norm(x, axis=1)


def _random_fit(_x: np.ndarray, seed: int):
    rng = np.random.default_rng(seed)
    return lambda x: rng.random(len(x))


# --- split --------------------------------------------------------------------------------


def test_split_is_seeded() -> None:
    _, y = _labelled(500, 2, 40, seed=0)
    first, again = stratified_split(y, seed=3), stratified_split(y, seed=3)
    other = stratified_split(y, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[0], other[0])


def test_split_is_stratified_and_a_partition() -> None:
    y = np.array([0] * 950 + [1] * 50)
    train, test = stratified_split(y, seed=1)
    assert len(train) == 600 and len(test) == 400
    assert y[train].sum() == 30 and y[test].sum() == 20  # 5% outliers on both sides
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(len(y)))
    assert np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0)


def test_split_keeps_a_rare_class_on_both_sides() -> None:
    y = np.array([0] * 97 + [1] * 3)
    train, test = stratified_split(y, seed=0)
    assert y[train].sum() == 2 and y[test].sum() == 1


def test_standardise_uses_training_statistics() -> None:
    x_train = np.array([[1.0, 5.0], [3.0, 5.0]])
    a, b = standardise(x_train, np.array([[5.0, 6.0]]))
    np.testing.assert_allclose(a.mean(axis=0), 0.0)
    np.testing.assert_allclose(b, [[3.0, 1.0]])  # constant column: std taken as 1


# --- runner and tables --------------------------------------------------------------------


def test_runner_gives_every_detector_the_same_splits() -> None:
    data = {"a": _labelled(200, 3, 20, seed=0), "b": _labelled(150, 4, 10, seed=1)}
    seen: dict[str, list[np.ndarray]] = {"one": [], "two": []}

    def recording(name: str):
        def fit(x: np.ndarray, seed: int):
            seen[name].append(x.copy())
            return lambda rows: np.linalg.norm(rows, axis=1)

        return fit

    runs = run_benchmark(data, {"one": recording("one"), "two": recording("two")}, seeds=[0, 1])
    assert len(runs) == 2 * 2 * 2
    for a, b in zip(seen["one"], seen["two"], strict=True):
        np.testing.assert_array_equal(a, b)
    assert {(r.dataset, r.detector, r.seed) for r in runs} == {
        (d, det, s) for d in "ab" for det in ("one", "two") for s in (0, 1)
    }


def test_the_clean_setting_trains_on_the_inliers_and_scores_the_whole_test_split() -> None:
    x, y = _labelled(300, 3, 30, seed=2)
    sizes: list[tuple[int, int]] = []

    def fit(rows: np.ndarray, _seed: int):
        def score(test: np.ndarray) -> np.ndarray:
            sizes.append((len(rows), len(test)))
            return np.linalg.norm(test, axis=1)

        return score

    run_benchmark({"a": (x, y)}, {"one": fit}, seeds=[0], inliers_only=True)
    train, test = stratified_split(y, 0)
    assert sizes[-1] == (int((y[train] == 0).sum()), len(test))
    run_benchmark({"a": (x, y)}, {"one": fit}, seeds=[0])
    assert sizes[-1] == (len(train), len(test))


def test_a_detector_whose_scores_are_not_finite_is_named() -> None:
    def nan_fit(_x: np.ndarray, _seed: int):
        return lambda rows: np.full(len(rows), np.nan)

    with pytest.raises(DataError, match="a, seed 1, broken: scores contain NaN"):
        run_benchmark({"a": _labelled(100, 2, 10, seed=0)}, {"broken": nan_fit}, seeds=[1])


def test_summary_and_tables_have_a_row_per_dataset_and_a_column_per_detector() -> None:
    data = {"easy": _labelled(200, 3, 20, seed=0), "other": _labelled(120, 2, 12, seed=2)}
    runs = run_benchmark(data, {"norm": _norm_fit, "random": _random_fit}, seeds=[0, 1, 2])
    summaries = summarise(runs)
    assert [(s.dataset, s.detector, s.n_seeds) for s in summaries] == [
        ("easy", "norm", 3),
        ("easy", "random", 3),
        ("other", "norm", 3),
        ("other", "random", 3),
    ]
    norm = summaries[0]
    assert norm.roc_auc_mean == pytest.approx(1.0) and norm.roc_auc_std == pytest.approx(0.0)
    table = markdown_tables(summaries)
    assert table.count("| dataset | norm | random |") == 3  # ROC-AUC, PR-AUC, seconds
    assert table.count("| easy | **1.000 ± 0.000** |") == 2  # the best mean is bold
    assert len([line for line in table.splitlines() if line.startswith("| other |")]) == 3


def test_no_pyod_gives_only_seismo_and_its_rows() -> None:
    detectors = build_detectors(with_pyod=False, device="cpu")
    assert list(detectors) == ["seismo"]
    runs = run_benchmark({"toy": _labelled(120, 4, 12, seed=0)}, detectors, seeds=[0])
    assert [(r.dataset, r.detector) for r in runs] == [("toy", "seismo")]
    assert 0.9 <= runs[0].roc_auc <= 1.0  # shifted rows reconstruct badly


def test_missing_pyod_is_one_clear_error(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pyod.models.iforest", None)  # import now fails
    with pytest.raises(MissingPyOD, match=r"pip install 'seismo\[bench\]'.*--no-pyod"):
        pyod_detector("pyod IForest")


def test_pyod_iforest_adapter_scores_higher_for_outliers() -> None:
    pytest.importorskip("pyod")
    x, y = _labelled(200, 3, 20, seed=0)
    scores = pyod_detector("pyod IForest")(x, 0)(x)
    assert scores.shape == (200,)
    assert scores[y == 1].mean() > scores[y == 0].mean()


# --- files and the command ----------------------------------------------------------------


def test_replace_section_keeps_the_other_sections() -> None:
    doc = "# Benchmarks\n\n## Other\nkeep\n\n" + SECTION + "\nold\n\n## Later\nkeep too\n"
    out = replace_section(doc, SECTION + "\nnew\n")
    assert "old" not in out and "new" in out
    assert out.index("## Other") < out.index(SECTION) < out.index("## Later")
    assert replace_section(out, SECTION + "\nnew\n") == out


def test_data_dir_and_file_lookup(tmp_path: Path) -> None:
    assert default_data_dir({"SEISMO_DATA": str(tmp_path)}) == tmp_path / "odds"
    np.savez(tmp_path / "6_cardio.npz", X=np.zeros((2, 1)), y=np.zeros(2))
    np.savez(tmp_path / "7_toy.npz", X=np.zeros((2, 1)), y=np.zeros(2))
    assert dataset_file(tmp_path, "cardio").name == "6_cardio.npz"
    assert dataset_file(tmp_path, "toy").name == "7_toy.npz"
    with pytest.raises(ConfigError, match="no data file for 'absent'"):
        dataset_file(tmp_path, "absent")


def test_cli_writes_markdown_and_json(tmp_path: Path) -> None:
    data_dir = tmp_path / "odds"
    data_dir.mkdir()
    for i, name in enumerate(("alpha", "beta")):
        x, y = _labelled(100, 4, 10, seed=i)
        np.savez(data_dir / f"{i + 1}_{name}.npz", X=x.astype(np.float32), y=y)
    out = tmp_path / "docs" / "benchmarks.md"
    out.parent.mkdir()
    out.write_text("# Benchmarks\n\n## Someone else's\nuntouched\n")
    report = tmp_path / "odds.json"
    args = ["benchmark-odds", "--data-dir", str(data_dir), "--datasets", "alpha,beta"]
    args += ["--seeds", "2", "--out", str(out), "--json", str(report), "--no-pyod"]
    args += ["--device", "cpu"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "## Someone else's\nuntouched" in text and SECTION in text
    assert "| dataset | seismo |" in text and "| alpha |" in text and "| beta |" in text
    assert "--seeds 2" in text and "--no-pyod" in text and "CPU" in text
    record = json.loads(report.read_text())
    assert len(record["runs"]) == 4 and len(record["summaries"]) == 2
    assert {s["dataset"] for s in record["summaries"]} == {"alpha", "beta"}
    assert set(record["versions"]) >= {"torch", "numpy", "pyod", "seismo"}


def _write_sets(data_dir: Path, names: tuple[str, ...]) -> None:
    data_dir.mkdir()
    for i, name in enumerate(names):
        x, y = _labelled(80, 3, 8, seed=i)
        np.savez(data_dir / f"{i + 1}_{name}.npz", X=x, y=y)


def test_cli_runs_one_part_of_the_protocol_under_its_own_heading(tmp_path: Path) -> None:
    data_dir = tmp_path / "odds"
    _write_sets(data_dir, ("alpha", "beta", "gamma", "delta"))
    out = tmp_path / "benchmarks.md"
    base = ["benchmark-odds", "--data-dir", str(data_dir), "--datasets", "alpha,beta,gamma,delta"]
    base += ["--seeds", "1", "--out", str(out), "--no-pyod", "--device", "cpu"]
    for fold in ("0", "1"):
        result = CliRunner().invoke(app, [*base, "--split", "eval", "--fold", fold])
        assert result.exit_code == 0, result.output
    text = out.read_text()
    # sorted: alpha, beta, delta, gamma; fold 0 evaluates beta, gamma; fold 1 alpha, delta
    fold0 = text[text.index(f"{SECTION}, --split eval --fold 0") :]
    fold0 = fold0[: fold0.index(f"{SECTION}, --split eval --fold 1")]
    fold1 = text[text.index(f"{SECTION}, --split eval --fold 1") :]
    assert "| beta |" in fold0 and "| gamma |" in fold0 and "| alpha |" not in fold0
    assert "| alpha |" in fold1 and "| delta |" in fold1 and "| beta |" not in fold1
    assert "--split eval --fold 1 --seeds 1" in fold1 and "evaluation half of fold 1" in fold1
    assert f"{SECTION}\n" not in text  # the --split all section is another one


def test_cli_variant_flags_reach_training_heading_and_json(tmp_path: Path) -> None:
    data_dir = tmp_path / "odds"
    _write_sets(data_dir, ("alpha", "beta"))
    out, report = tmp_path / "b.md", tmp_path / "b.json"
    args = ["benchmark-odds", "--data-dir", str(data_dir), "--datasets", "alpha,beta"]
    args += ["--seeds", "1", "--out", str(out), "--json", str(report), "--no-pyod"]
    args += ["--device", "cpu", "--neighbour-k", "3", "--refit-share", "0.1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"{SECTION} --neighbour-k 3 --refit-share 0.1\n" in out.read_text()
    record = json.loads(report.read_text())
    assert record["seismo_train_overrides"] == {"neighbour_k": 3, "refit_share": 0.1}
    clean = CliRunner().invoke(app, [*args[:-4], "--range-term", "--trim-share", "0",
                                     "--inliers-only"])  # fmt: skip
    assert clean.exit_code == 0, clean.output
    heading = f"{SECTION} --trim-share 0.0 --range-term --inliers-only\n"
    assert heading in out.read_text() and "**inliers only**" in out.read_text()
    record = json.loads(report.read_text())
    assert record["seismo_train_overrides"] == {"trim_share": 0.0, "range_term": True}
    assert record["protocol"]["inliers_only"] is True
    bad = CliRunner().invoke(app, [*args[:-4], "--neighbour-k", "0"])
    assert isinstance(bad.exception, SeismoError) and "neighbour_k" in str(bad.exception)
    bad = CliRunner().invoke(app, [*args[:-4], "--vae-score", "kl"])
    assert isinstance(bad.exception, SeismoError) and "score 'kl'" in str(bad.exception)


def test_the_epochs_and_vae_score_variants_change_what_is_trained_and_scored() -> None:
    from seismo.models.eval.odds_detectors import seismo_default

    x = np.random.default_rng(0).normal(size=(300, 4))
    fits = {name: seismo_default("cpu", overrides)(x, 0)(x[:20]) for name, overrides in (
        ("mse", {"epochs": 2}), ("elbo", {"epochs": 2, "vae_score": "elbo"}),
        ("mse, 3 epochs", {"epochs": 3}))}  # fmt: skip
    assert not np.allclose(fits["mse"], fits["elbo"])  # the KL term is added
    assert not np.allclose(fits["mse"], fits["mse, 3 epochs"])
    again = seismo_default("cpu", {"epochs": 2})(x, 0)(x[:20])
    np.testing.assert_allclose(again, fits["mse"])  # the same variant, the same scores


def test_cli_rejects_a_bad_part_or_detector(tmp_path: Path) -> None:
    data_dir = tmp_path / "odds"
    _write_sets(data_dir, ("alpha", "beta"))
    base = ["benchmark-odds", "--data-dir", str(data_dir), "--datasets", "alpha,beta"]
    base += ["--seeds", "1", "--out", str(tmp_path / "b.md"), "--device", "cpu"]
    for extra, message in (
        (["--split", "test"], "--split must be one of tune, eval, all"),
        (["--split", "eval", "--fold", "2"], "--fold must be 0 or 1"),
        (["--detectors", "seismo,lof"], "--detectors: unknown lof"),
    ):
        result = CliRunner().invoke(app, [*base, *extra])
        assert isinstance(result.exception, SeismoError), result.output
        assert message in str(result.exception)
    assert not (tmp_path / "b.md").exists()


def test_detectors_are_chosen_by_key_in_table_order() -> None:
    pytest.importorskip("pyod")
    chosen = build_detectors(device="cpu", keys=["knn", "seismo", "ecod"])
    assert list(chosen) == ["seismo", "pyod ECOD", "pyod KNN"]
    assert list(build_detectors(device="cpu")) == [
        "seismo", "pyod AutoEncoder", "pyod VAE", "pyod IForest", "pyod ECOD", "pyod KNN",
    ]  # fmt: skip


@pytest.mark.parametrize("name", ["pyod ECOD", "pyod KNN"])
def test_pyod_ecod_and_knn_take_no_seed_and_score_outliers_higher(name: str) -> None:
    pytest.importorskip("pyod")
    x, y = _labelled(200, 3, 20, seed=0)
    scores = pyod_detector(name)(x, 0)(x)  # would raise on random_state=...
    assert scores.shape == (200,)
    assert scores[y == 1].mean() > scores[y == 0].mean()
