"""``seismo bench`` runs every contender on one real topic and reports comparable rates."""

from __future__ import annotations

import signal
from pathlib import Path

import orjson
import pytest

from tests.pipes import alive, children_of, run_seismo, start_seismo, stop, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.redis, pytest.mark.pipe]

#: The raw consumer runs on librdkafka's defaults, whose 45 s session timeout makes Tansu's
#: first group join take ~22 s (docs/kafka-compat.md); a pass-through setting shortens it.
FAST_JOIN = ("--kafka-config", "session.timeout.ms=6000")


def test_bench_reports_every_contender_on_the_same_events(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    out, doc = tmp_path / "bench.json", tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nkept\n")
    done = run_seismo(
        "bench", "--events", "16000", "--features", "8", "--partitions", "2",
        "--max-batch", "1024", "--per-message-events", "300", "--river-events", "300",
        "--latency-seconds", "2", "--scaling", "2", "--soak-seconds", "6", "--repeats", "1",
        "--bootstrap-servers", kafka_bootstrap, "--redis-url", redis_url, "--json", str(out),
        "--hidden", "6,3", "--out", str(doc), *FAST_JOIN,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = orjson.loads(out.read_bytes())
    results = report["results"]
    assert set(results) == {"raw", "seismo", "per-message", "river-hst", "raw-f32", "seismo-f32",
                            "raw-f32-backoff"}  # fmt: skip
    # Each counts the events after its first batch (or message), all of the topic's for the
    # batch consumers (the raw one consumes up to 10 000 at a time), the asked-for share for
    # the per-event ones.
    assert 16000 - 1024 <= results["seismo"]["events"] < 16000
    assert 16000 - 10000 <= results["raw"]["events"] < 16000
    # The same rows again as application/x-seismo-f32: all of them scored.
    assert 16000 - 1024 <= results["seismo-f32"]["events"] < 16000
    assert 16000 - 10000 <= results["raw-f32"]["events"] < 16000
    assert 16000 - 10000 <= results["raw-f32-backoff"]["events"] < 16000
    assert all(len(r["runs"]) == 1 and r["min"] <= r["events_per_s"] <= r["max"]
               for r in results.values())  # fmt: skip
    assert results["per-message"]["events"] == 299 and results["river-hst"]["events"] == 299
    for name, r in results.items():
        assert r["events_per_s"] > 0, name
    ratios = report["ratios"]
    assert set(ratios) == {"seismo/raw", "seismo/per-message", "seismo/river-hst",
                           "seismo-f32/raw-f32", "seismo-f32/raw-f32-backoff",
                           "seismo-f32/per-message"}  # fmt: skip
    expected = results["seismo"]["events_per_s"] / results["raw"]["events_per_s"]
    assert ratios["seismo/raw"] == pytest.approx(expected, rel=0.01)
    expected = results["seismo-f32"]["events_per_s"] / results["raw-f32"]["events_per_s"]
    assert ratios["seismo-f32/raw-f32"] == pytest.approx(expected, rel=0.01)
    expected = results["seismo-f32"]["events_per_s"] / results["raw-f32-backoff"]["events_per_s"]
    assert ratios["seismo-f32/raw-f32-backoff"] == pytest.approx(expected, rel=0.01)
    assert report["machine"]["cpus"] >= 1 and report["options"]["features"] == 8
    # --hidden shapes the bench model; --out rewrites only the bench's own section.
    assert report["options"]["hidden"] == [6, 3]
    section = doc.read_text()
    assert section.startswith("# Benchmarks\n\nkept\n") and "model 8-6-3-6-8;" in section
    assert "| seismo-f32 |" in section
    assert "| seismo |" in done.stdout
    # Latency at 50 % and 90 % of seismo's measured rate: paced events, 1 % far off normal.
    latency = report["latency"]
    assert set(latency) == {"50%", "90%"}
    for level, share in (("50%", 0.5), ("90%", 0.9)):
        r = latency[level]
        assert r["offered_per_s"] == pytest.approx(share * results["seismo"]["events_per_s"],
                                                   rel=0.01)  # fmt: skip
        assert r["alerts"] > 0 and 0 < r["p50_ms"] <= r["p99_ms"]
        # A bare consumer of the same paced stream: the broker's share of the latency.
        assert 0 <= r["delivery_p50_ms"] <= r["delivery_p99_ms"]
    assert "Event-to-alert latency" in done.stdout
    # Two scorer processes in one group committed every event of their own fresh topic.
    scaling = report["scaling"]
    assert set(scaling) == {"2"} and scaling["2"]["events"] == 16000
    assert scaling["2"]["seconds"] >= scaling["2"]["fill_seconds"] > 0
    assert scaling["2"]["events_per_s"] > 0 and "| 2 |" in done.stdout
    # The soak samples the scorer process's RSS while events keep coming.
    soak = report["soak"]
    samples = soak["samples"]
    assert len(samples) >= 2 and all(rss > 50 and blocks > 1000 for _, rss, _, blocks in samples)
    assert samples[-1][2] > samples[0][2]  # events were scored during the soak
    assert "Memory soak" in done.stdout


def test_bench_runs_device_scope_beside_model_scope_with_medians(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "bench.json"
    done = run_seismo(
        "bench", "--events", "14000", "--features", "4", "--partitions", "2",
        "--max-batch", "1024", "--per-message-events", "100", "--river-events", "100",
        "--latency-seconds", "0", "--scaling", "", "--no-binary", "--repeats", "2",
        "--threshold-scope", "device", "--window", "2", "--hidden", "4,2",
        "--bootstrap-servers", kafka_bootstrap, "--redis-url", redis_url, "--json", str(out),
        *FAST_JOIN, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = orjson.loads(out.read_bytes())
    results = report["results"]
    assert set(results) == {"raw", "seismo", "per-message", "river-hst", "seismo-device",
                            "seismo-w2", "seismo-device-w2"}  # fmt: skip
    for name in ("raw", "seismo", "seismo-device", "seismo-w2", "seismo-device-w2"):
        r = results[name]
        assert len(r["runs"]) == 2, name
        assert r["min"] <= r["events_per_s"] <= r["max"], name
        assert r["events_per_s"] == pytest.approx(sum(r["runs"]) / 2, rel=1e-3), name
    for name in ("seismo-device", "seismo-w2", "seismo-device-w2"):
        assert 14000 - 1024 <= results[name]["events"] < 14000, name  # every event scored
    ratios = report["ratios"]
    assert ratios["seismo-device/seismo"] == pytest.approx(
        results["seismo-device"]["events_per_s"] / results["seismo"]["events_per_s"], rel=0.01)
    assert ratios["seismo-device-w2/seismo-w2"] == pytest.approx(
        results["seismo-device-w2"]["events_per_s"] / results["seismo-w2"]["events_per_s"],
        rel=0.01)  # fmt: skip
    assert "| seismo-device-w2 | " in done.stdout and "spread" in done.stdout


def test_bench_refuses_an_unknown_threshold_scope(tmp_path: Path) -> None:
    done = run_seismo("bench", "--threshold-scope", "fleet", timeout=60)
    assert done.returncode != 0
    assert "--threshold-scope expects model or device" in done.stderr + done.stdout


def test_sigterm_stops_the_bench_and_the_broker_and_redis_it_started(tmp_path: Path) -> None:
    # Before, SIGTERM killed the command at once and left its embedded Tansu and
    # redis-server running, orphaned, until the machine was restarted.
    log = tmp_path / "bench.log"
    proc = start_seismo("bench", "--events", "200000", "--features", "8", "--repeats", "1",
                        "--latency-seconds", "0", "--scaling", "", "--no-binary",
                        "--hidden", "6,3", log=log)  # fmt: skip
    try:
        assert wait_for(lambda: "published" in log.read_text() or proc.poll() is not None,
                        120), log.read_text()[-3000:]  # fmt: skip
        servers = sorted(children_of(proc.pid))
        assert len(servers) == 2, servers  # the broker and Redis, started by the command
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 128 + signal.SIGTERM, log.read_text()[-3000:]
        assert wait_for(lambda: not any(alive(p) for p in servers), 30), servers
    finally:
        stop(proc)
