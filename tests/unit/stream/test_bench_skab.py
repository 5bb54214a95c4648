"""``seismo benchmark-skab`` on generated data in SKAB's layout (no shared data needed)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from seismo.stream.bench.skab import SkabRules, render_section, run_benchmark_skab
from tests.pipes import run_seismo

HEAD = ("datetime;Accelerometer1RMS;Accelerometer2RMS;Current;Pressure;Temperature;"
        "Thermocouple;Voltage;Volume Flow RateRMS")  # fmt: skip


def pump(n: int, rng: np.random.Generator) -> np.ndarray:
    """8 correlated channels around a slow cycle, like the testbed's."""
    t = np.arange(n)
    base = np.sin(2 * np.pi * t / 120)[:, None] * np.linspace(0.5, 1.5, 8)
    return base + rng.normal(0, 0.1, (n, 8)) + np.arange(8)


def write(path: Path, x: np.ndarray, anomaly=None, changepoint=None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    start = datetime(2020, 3, 9, 10)
    head = HEAD + (";anomaly;changepoint" if anomaly is not None else "")
    lines = [head]
    for i, row in enumerate(x):
        cells = [(start + timedelta(seconds=i)).strftime("%Y-%m-%d %H:%M:%S")]
        cells += [f"{v:.5f}" for v in row]
        if anomaly is not None:
            cells += [f"{float(anomaly[i]):.1f}", f"{float(changepoint[i]):.1f}"]
        lines.append(";".join(cells))
    path.write_text("\n".join(lines) + "\n")


def make_skab(root: Path) -> None:
    rng = np.random.default_rng(5)
    write(root / "anomaly-free" / "anomaly-free.csv", pump(3000, rng))
    for name, at in (("valve1/0.csv", 700), ("valve2/0.csv", 800)):
        x = pump(1100, rng)
        x[at : at + 250, 3] += 3.0  # pressure steps up while the valve is closed
        anomaly = np.zeros(1100, bool)
        anomaly[at : at + 250] = True
        changepoint = np.zeros(1100, bool)
        changepoint[[at, at + 250]] = True
        write(root / name, x, anomaly, changepoint)


def test_a_pressure_step_is_flagged_and_the_figures_are_reported(tmp_path):
    make_skab(tmp_path)
    report = run_benchmark_skab(tmp_path, SkabRules(epochs=5))
    assert {"f1", "far", "mar", "nab_standard"} <= set(report)
    assert report["experiments"] == 2
    assert report["f1"] > 0.9 and report["mar"] < 15, report
    # false alarms only where a window still holds the end of the step (59 rows per file)
    assert report["counts"]["fp"] <= 2 * 59, report
    assert report["nab_standard"] > 0  # the switches land after the labelled changepoints
    counts = report["counts"]
    assert sum(counts.values()) == 2 * (1100 - 400), "every row after the calibration scored"
    # the step is ranked far above the normal rows: VUS-PR well above the anomaly rate
    assert 0.0 <= report["vus_pr"] <= 1.0
    assert report["vus_pr"] > 0.7 > 250 / 700, report["vus_pr"]
    files = report["files"].values()
    assert report["vus_pr"] == round(float(np.mean([f["vus_pr"] for f in files])), 4)
    assert sum(f["counts"]["tp"] for f in files) == counts["tp"]
    assert 0.0 <= report["ablation"]["no_scale_floor"]["vus_pr"] <= 1.0


def test_each_part_of_the_protocol_writes_its_own_section(tmp_path):
    make_skab(tmp_path)
    report = run_benchmark_skab(tmp_path, SkabRules(epochs=2, scale_floor=0.0),
                                split="eval", holdout="valve2")  # fmt: skip
    assert report["experiments"] == 1 and list(report["files"]) == ["valve2/0.csv"]
    section = render_section(report)
    heading = "## SKAB (Skoltech Anomaly Benchmark), --split eval --holdout valve2"
    assert section.splitlines()[0] == heading
    assert "| VUS-PR |" in section and f"| {report['vus_pr']} |" in section


def test_the_command_prints_one_json_object_and_refuses_another_folder(tmp_path):
    make_skab(tmp_path / "skab")
    done = run_seismo("benchmark-skab", "--data-dir", str(tmp_path / "skab"), "--json",
                      "--seed", "2", timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert {"f1", "far", "mar", "nab_standard", "vus_pr"} <= set(report)
    assert 0.0 <= report["vus_pr"] <= 1.0
    assert report["rules"]["seed"] == 2
    wrong = run_seismo("benchmark-skab", "--data-dir", str(tmp_path), timeout=120)
    assert wrong.returncode == 1 and "no SKAB data" in wrong.stderr


def test_the_scale_floor_cuts_the_false_alarms_of_a_slow_warming(tmp_path):
    # Channel 5 (the fluid temperature) sits at 24 degC: in the anomaly-free file it
    # wanders over two degrees; in the experiment it barely moves for the first 400
    # rows, then warms by 0.3 degC, well inside that normal range.
    rng = np.random.default_rng(11)
    free = pump(3000, rng)
    free[:, 5] = 24 + np.sin(2 * np.pi * np.arange(3000) / 1500) + rng.normal(0, 0.002, 3000)
    write(tmp_path / "anomaly-free" / "anomaly-free.csv", free)
    x = pump(1100, rng)
    x[:, 5] = 24 + rng.normal(0, 0.002, 1100)
    x[400:, 5] += np.linspace(0, 0.3, 700)
    x[800:950, 3] += 3.0
    anomaly = np.zeros(1100, bool)
    anomaly[800:950] = True
    write(tmp_path / "valve1" / "0.csv", x, anomaly, anomaly & ~np.roll(anomaly, 1))
    report = run_benchmark_skab(tmp_path, SkabRules(epochs=5))
    plain = report["ablation"]["no_scale_floor"]
    assert report["rules"]["scale_floor"] == 0.01
    # with its plain std (0.002) the warming is 150 standard deviations: every row alarms
    assert plain["far"] > 90, plain
    # scaled by 1 % of 24 degC it is about one: the model still minds it, but far less
    assert report["far"] < 0.75 * plain["far"], (report["far"], plain["far"])
    assert report["mar"] == plain["mar"] == 0.0
    assert report["f1"] > plain["f1"]
