"""``seismo benchmark-nab --through-kafka``: NAB series through the real broker, Redis,
model registry and scorer, judged exactly as the in-process rule judges them.

Two generated series in NAB's layout (14 days at 5 minutes, a level step inside
each labelled window), retrained every 1000 rows so that the scorer hot-swaps
three model versions per series.
"""

from __future__ import annotations

import json

import pytest

from seismo.stream.bench.nab import Replay, run_benchmark_nab
from seismo.stream.bench.nab_replay import Services
from seismo.stream.bench.series_detector import SeriesRules
from tests.pipes import run_seismo
from tests.unit.stream.test_bench_nab import N, make_corpus

pytestmark = [pytest.mark.kafka, pytest.mark.redis, pytest.mark.pipe]


def test_the_scorer_flags_every_row_as_the_in_process_rule_does(
    kafka_bootstrap, redis_url, tmp_path
):
    make_corpus(tmp_path / "nab")
    rules = SeriesRules(epochs=10, retrain_every=1000)
    here = run_benchmark_nab(tmp_path / "nab", tmp_path / "here", rules)
    replay = Replay(Services(kafka_bootstrap, redis_url), tmp_path / "models")
    kafka = run_benchmark_nab(tmp_path / "nab", tmp_path / "kafka", rules, through=replay)
    scored = 2 * (N - 604)  # everything after each series' probation
    assert kafka["agreement"] == {"series": 2, "series_identical": 2, "rows": scored,
                                  "rows_same_flag": scored}, kafka["agreement"]  # fmt: skip
    assert (kafka["path"], here["path"]) == ("kafka", "in-process")
    for key in ("standard", "reward_low_fp", "reward_low_fn", "precision", "recall", "series"):
        assert kafka[key] == here[key], key
    assert kafka["recall"]["event"] == 1.0
    versions = len(list((tmp_path / "models").glob("nab-*/seismo/*")))
    assert versions == 2 * 4, versions  # per series: the first and 3 retrained versions


def test_the_command_runs_through_given_services_and_refuses_half_a_setup(
    kafka_bootstrap, redis_url, tmp_path
):
    make_corpus(tmp_path / "nab", series=1)
    done = run_seismo("benchmark-nab", "--data-dir", str(tmp_path / "nab"), "--json",
                      "--through-kafka", "--bootstrap-servers", kafka_bootstrap,
                      "--redis-url", redis_url, "--results-dir", str(tmp_path / "r"),
                      timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["path"] == "kafka" and report["agreement"]["series_identical"] == 1
    assert "consumer property" not in done.stderr  # the replay's own setting, not news
    refused = run_seismo("benchmark-nab", "--data-dir", str(tmp_path / "nab"),
                         "--redis-url", "redis://127.0.0.1:1/0", timeout=120)  # fmt: skip
    assert refused.returncode == 1 and "go with --through-kafka" in refused.stderr
