"""``seismo benchmark-nab`` on a small generated corpus in NAB's layout (no shared data needed)."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from seismo.stream.bench.nab import read_detections, result_path, run_benchmark_nab
from seismo.stream.bench.series_detector import SeriesRules
from tests.pipes import run_seismo

N, STEP = 4032, timedelta(minutes=5)  # 14 days, as NAB's artificial series
START = datetime(2014, 4, 1)


def make_corpus(root: Path, series: int = 2) -> dict[str, list[list[str]]]:
    """Two (or one) daily-cycle series with a 5-hour level step inside their labelled window."""
    rng = np.random.default_rng(3)
    labels = {}
    for name, at in (("one.csv", 2500), ("two.csv", 3300))[:series]:
        t = np.arange(N)
        x = 10 + np.sin(2 * np.pi * t / 288) + rng.normal(0, 0.05, N)
        x[at : at + 60] += 4.0
        path = root / "data" / "synthetic" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as f:
            out = csv.writer(f)
            out.writerow(["timestamp", "value"])
            for i, v in enumerate(x):
                out.writerow([(START + i * STEP).strftime("%Y-%m-%d %H:%M:%S"), f"{v:.4f}"])
        # as NAB labels: a window of a tenth of the series, centred on the anomaly
        left, right = START + (at - 200) * STEP, START + (at + 200) * STEP
        labels[f"synthetic/{name}"] = [[left.strftime("%Y-%m-%d %H:%M:%S.%f"),
                                        right.strftime("%Y-%m-%d %H:%M:%S.%f")]]  # fmt: skip
    (root / "labels").mkdir()
    (root / "labels" / "combined_windows.json").write_text(json.dumps(labels))
    return labels


def test_both_windows_are_found_early_and_the_result_files_follow_nab(tmp_path):
    make_corpus(tmp_path / "nab")
    report = run_benchmark_nab(tmp_path / "nab", tmp_path / "results", SeriesRules(epochs=10))
    assert set(report) >= {"standard", "reward_low_fp", "reward_low_fn", "series", "precision",
                           "recall", "mean_delay"}  # fmt: skip
    assert report["recall"]["event"] == 1.0 and report["precision"]["event"] == 1.0
    # found within 40 rows (3 h 20 min) of the step, 200 rows into the window
    assert report["mean_delay"] <= 240 * 300
    assert report["standard"] > 70 and report["reward_low_fn"] > 70
    for key in ("synthetic/one.csv", "synthetic/two.csv"):
        path = result_path(tmp_path / "results", "seismo", key)
        with path.open() as f:
            rows = list(csv.DictReader(f))
        assert list(rows[0]) == ["timestamp", "value", "anomaly_score", "label"]
        assert len(rows) == N and sum(int(r["label"]) for r in rows) == 401
        assert read_detections(path).sum() == report["series"][key]["detections"]
    assert set(report["baselines"]) == {"rolling_gaussian", "nab_relative_entropy",
                                        "seismo_window_only"}  # fmt: skip
    # the peer flags the 4-unit step (its distribution is new) inside both windows
    assert report["baselines"]["nab_relative_entropy"]["recall"]["event"] == 1.0
    assert sum(report["detections_by"].values()) >= 2  # each detection by one check or both
    # VUS-PR ranks the severity: above the share of rows inside windows (a random score's)
    share = 401 / (N - 605)
    assert 1.0 >= report["vus_pr"] > 2 * share
    assert all(0 <= report["series"][k]["vus_pr"] <= 1 for k in report["series"])
    assert 0 <= report["baselines"]["rolling_gaussian"]["vus_pr"] <= 1


def test_the_likelihood_variant_flags_by_the_tail_of_the_combined_severity(tmp_path):
    make_corpus(tmp_path / "nab", series=1)
    rules = SeriesRules(epochs=10, likelihood_tail=1e-3)
    report = run_benchmark_nab(tmp_path / "nab", tmp_path / "results", rules)
    assert report["rules"]["likelihood_tail"] == 1e-3
    assert set(report["detections_by"]) == {"likelihood"}
    # the step is found; the tail of 1e-3 of every row's likelihood allows a false alarm
    # in the 3400 judged rows (the default rule has none here)
    assert report["recall"]["event"] == 1.0 and report["series"]["synthetic/one.csv"][
        "false_alarms"] <= 2  # fmt: skip
    assert report["series"]["synthetic/one.csv"]["detections"] == report["detections_by"][
        "likelihood"]  # fmt: skip
    assert 0 <= report["vus_pr"] <= 1


def test_the_command_prints_one_json_object_and_refuses_a_folder_without_labels(tmp_path):
    make_corpus(tmp_path / "nab")
    done = run_seismo("benchmark-nab", "--data-dir", str(tmp_path / "nab"), "--json",
                      "--results-dir", str(tmp_path / "r"), timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["corpus"] == {"series": 2, "rows": 2 * N, "windows": 2}
    alone = run_seismo("benchmark-nab", "--data-dir", str(tmp_path / "nab"), "--json",
                       "--no-level", "--seed", "1", "--results-dir", str(tmp_path / "r1"),
                       timeout=600)  # fmt: skip
    assert alone.returncode == 0, alone.stderr[-2000:]
    window_only = json.loads(alone.stdout)
    assert window_only["rules"]["level"] is False and window_only["rules"]["seed"] == 1
    assert set(window_only["baselines"]) == {"rolling_gaussian", "nab_relative_entropy"}
    assert window_only["detections_by"]["level"] == 0  # no ablation of an ablation above
    variant = run_seismo("benchmark-nab", "--data-dir", str(tmp_path / "nab"), "--json",
                         "--relative-entropy", "--results-dir", str(tmp_path / "r2"),
                         timeout=600)  # fmt: skip
    assert variant.returncode == 0, variant.stderr[-2000:]
    with_distribution = json.loads(variant.stdout)
    assert with_distribution["rules"]["relative_entropy"] is True
    assert "distribution" in with_distribution["detections_by"]
    # the extra check only adds flagged rows: never fewer windows found than without it
    assert with_distribution["recall"]["event"] >= report["recall"]["event"]
    refused = run_seismo("benchmark-nab", "--data-dir", str(tmp_path / "nab"),
                         "--relative-entropy", "--through-kafka", timeout=120)  # fmt: skip
    assert refused.returncode == 1 and "in-process benchmark only" in refused.stderr
    for flags, says in ((["--likelihood-tail", "1e-3", "--through-kafka"], "in-process"),
                        (["--likelihood-tail", "1.5"], "must be in [0, 1)"),
                        (["--likelihood-tail", "1e-3", "--relative-entropy"], "give one")):
        refused = run_seismo("benchmark-nab", "--data-dir", str(tmp_path / "nab"), *flags,
                             timeout=120)  # fmt: skip
        assert refused.returncode == 1 and says in refused.stderr, refused.stderr
    empty = run_seismo("benchmark-nab", "--data-dir", str(tmp_path), timeout=120)
    assert empty.returncode == 1 and "no NAB labels" in empty.stderr
