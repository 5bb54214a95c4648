"""``seismo demo`` end to end: embedded Kafka and Redis, simulator, scorer, sidecar.

The demo starts everything itself (no fixture services): the test only runs
the command, watches which processes it starts, and reads what it writes.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import orjson
import pytest

from tests.pipes import alive, children_of, seismo_command, start_seismo, wait_for

pytestmark = [pytest.mark.pipe, pytest.mark.kafka, pytest.mark.redis]


class Watch:
    """Runs ``seismo demo`` and remembers every process it started."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.log = tmp_path / "demo.log"
        self.out = tmp_path / "runs"
        self.proc = start_seismo("demo", "--no-tty", "--out-dir", str(self.out), *args,
                                 log=self.log)  # fmt: skip
        self.started: set[int] = set()
        self.commands: dict[int, str] = {}

    def poll(self) -> bool:
        """Record children and their command lines; True once the demo has exited.

        A child's command line is read again at every poll: one seen between fork and
        exec still shows the demo's own (a local slow-tier run missed the retrainer that way)."""
        if self.proc.poll() is None:
            for pid in children_of(self.proc.pid):
                self.started.add(pid)
                try:
                    raw = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                if raw:
                    self.commands[pid] = raw.replace(b"\0", b" ").decode(errors="replace")
        return self.proc.poll() is not None

    def wait(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while not self.poll():
            if time.monotonic() > deadline:
                self.proc.kill()
                raise AssertionError(f"demo still running: {self.text()[-3000:]}")
            time.sleep(0.2)
        return self.proc.returncode

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def summary(self) -> dict:
        [path] = list(self.out.glob("*/summary.json"))
        return orjson.loads(path.read_bytes())

    def assert_nothing_left(self) -> None:
        joined = " | ".join(self.commands.values())
        for part in ("tansu", "redis-server", "seismo score", "seismo retrain"):
            assert part in joined, f"expected Kafka, Redis, scorer, retrainer: {joined}"
        assert wait_for(lambda: not any(alive(p) for p in self.started), timeout=10), [
            p for p in self.started if alive(p)
        ]


def test_headless_demo_detects_the_injected_anomalies_and_cleans_up(tmp_path: Path) -> None:
    demo = Watch(tmp_path, "--duration", "60")
    try:
        code = demo.wait(timeout=300)
    finally:
        if demo.proc.poll() is None:
            demo.proc.kill()
    text = demo.text()
    assert code == 0, text[-3000:]
    assert re.search(r"\d+s produced \d+ scored \d+ alerts \d+", text), text[-2000:]
    summary = demo.summary()
    print(f"\ndemo summary: { {k: v for k, v in summary.items() if k != 'by_kind'} }")
    print(f"by kind: {summary['by_kind']}")
    assert summary["events"] == summary["produced"] > 10_000  # every event scored
    assert summary["episodes"] >= 8
    assert summary["recall"] >= 0.8, summary
    assert summary["precision"] >= 0.8, summary
    assert summary["mean_time_to_detect_s"] is not None
    report = next(demo.out.glob("*/report.html")).read_text()
    assert report.count("<svg") >= 2 and "pump-" in report
    demo.assert_nothing_left()


def test_ctrl_c_ends_the_demo_with_a_summary_and_no_process_left(tmp_path: Path) -> None:
    demo = Watch(tmp_path, "--duration", "0", "--devices", "5", "--rate", "500")
    try:
        streaming = lambda: demo.poll() or re.search(r"scored [1-9]", demo.text()) is not None  # noqa: E731
        assert wait_for(streaming, timeout=180), demo.text()[-3000:]
        assert demo.proc.poll() is None, demo.text()[-3000:]
        demo.poll()
        demo.proc.send_signal(signal.SIGINT)
        code = demo.wait(timeout=120)
    finally:
        if demo.proc.poll() is None:
            demo.proc.kill()
    assert code == 0, demo.text()[-3000:]
    assert "summary" in demo.text()
    assert demo.summary()["events"] > 0
    demo.assert_nothing_left()


def test_demo_refuses_bad_options_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [*seismo_command(), "demo", "--scenario", "chaos", "--out-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == ["seismo: error: scenario must be steady or drift"]


def test_demo_uses_given_kafka_and_redis_with_topics_of_its_own(
    kafka_bootstrap: str, redis_url: str, redis_client, tmp_path: Path
) -> None:
    """With --bootstrap-servers/--redis-url nothing is embedded; topics carry the run id."""
    from confluent_kafka.admin import AdminClient

    from tests.kafka_tools import read_topic

    demo = Watch(tmp_path, "--duration", "15", "--devices", "4", "--rate", "400",
                 "--bootstrap-servers", kafka_bootstrap, "--redis-url", redis_url)  # fmt: skip
    try:
        code = demo.wait(timeout=240)
    finally:
        if demo.proc.poll() is None:
            demo.proc.kill()
    text = demo.text()
    assert code == 0, text[-3000:]
    assert "embedded" not in text
    [run_dir] = list(demo.out.iterdir())
    topics = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=10).topics
    suffix = f"-demo-{run_dir.name}"
    for name in ("sensor-events", "anomalies", "sensor-scores", "sensor-labels"):
        assert f"{name}{suffix}" in topics, sorted(topics)
    summary = demo.summary()
    scores = read_topic(kafka_bootstrap, f"sensor-scores{suffix}", timeout_s=30,
                        until=lambda r: len(r) >= summary["events"])  # fmt: skip
    assert len(scores) == summary["events"] == summary["produced"] > 0
    assert redis_client.get(f"seismo-demo-{run_dir.name}:model:pumps:current") is not None
    joined = " | ".join(demo.commands.values())
    assert "seismo score" in joined and "seismo retrain" in joined, joined
    assert "tansu" not in joined and "redis-server" not in joined, joined  # nothing embedded
    assert wait_for(lambda: not any(alive(p) for p in demo.started), timeout=10)
