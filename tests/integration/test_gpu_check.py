"""``seismo bench --gpu-check`` end to end on the CPU: every step the GPU run takes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from seismo.stream.cli.app import app

pytestmark = pytest.mark.slow


def test_the_gpu_check_runs_every_step_on_cpu_and_reports_each_figure(tmp_path: Path) -> None:
    report = tmp_path / "gpu-check.json"
    # A 6 s session timeout: the raw consumer's first group join on Tansu takes half the
    # session timeout, ~23 s on librdkafka's default (docs/kafka-compat.md), four times here.
    done = CliRunner().invoke(app, ["bench", "--gpu-check", "--gpu-check-quick", "--device",
                                    "cpu", "--json", str(report),
                                    "--kafka-config", "session.timeout.ms=6000"])  # fmt: skip
    assert done.exit_code == 0, done.output
    check = json.loads(report.read_text())
    assert 0 < check["eager_rows_per_s"] < check["bound_rows_per_s"]
    assert check["host_rows_per_s"] > 0 and check["bandwidth_gb_s"] > 0
    assert 0 < check["neighbours_rows_per_s"]
    assert check["compiled_rows_per_s"] is None and "CUDA only" in check["compile_note"]
    for d in ("16", "784"):
        rates = check["end_to_end"][d]
        assert set(rates) == {"raw", "seismo", "raw-f32", "seismo-f32"}
        assert all(rate > 0 for rate in rates.values()), (d, rates)
    assert "kernel eager (batch 256)" in done.output
    assert "end to end d=784: raw" in done.output
    assert "per-message:" not in done.output and "river-hst:" not in done.output  # not reported
