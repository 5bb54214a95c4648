"""20 SIGKILLs of the scorer, one at each step of a batch in turn: nothing lost, nothing new.

The scorer runs as a subprocess (``tests.crash_scorer``: the real ``seismo
score`` that SIGKILLs itself right after consume, score, produce, the Redis
merge or the commit of its Nth batch) against real Kafka and Redis, and is
restarted after every kill; a last, unarmed run finishes the topic. An
uninterrupted run over the same input in its own group gives the reference.

On the embedded broker the session timeout is 2 s
(``tests.services.restart_session_timeout_ms``), so the killed member is
evicted and the restarted one joins within a few seconds; Apache Kafka
refuses less than 6 s.

Checked: every input event is in the scores topic at least once; the alerts,
deduplicated by ``alert_id``, are exactly the reference run's; and the number
of duplicates per kill (replayed batches) is printed and bounded by the
batches a kill can leave uncommitted.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from seismo.stream.scoring.codec import encode_event
from tests.crash_scorer import STEPS
from tests.kafka_tools import Record, committed, create_topics, produce_values, read_topic
from tests.pipes import SensorData, seismo_command, wait_for
from tests.services import restart_session_timeout_ms

pytestmark = [pytest.mark.kafka, pytest.mark.redis, pytest.mark.pipe]

N_EVENTS = 8000
MAX_BATCH = 100
KILLS = 20
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model_dir(sensor_model_dir: Path) -> Path:
    return sensor_model_dir


def far_anomalies(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Normal rows, 2 % of them pushed 40 standard deviations off on one channel."""
    data = SensorData()
    x = data.normal(n, seed)
    rng = np.random.default_rng(seed + 1)
    idx = rng.choice(n, size=n // 50, replace=False)
    x[idx, rng.integers(data.n_features, size=len(idx))] += 40 * x.std(axis=0).max()
    labels = np.zeros(n, dtype=bool)
    labels[idx] = True
    return x, labels


def score_args(bootstrap: str, redis_url: str, model: Path, run: str, topics: dict[str, str],
               group: str) -> list[str]:  # fmt: skip
    return [
        "score", "--model", str(model), "--bootstrap-servers", bootstrap,
        "--redis-url", redis_url, "--redis-prefix", f"crash-{group}",
        "--input-topic", topics["input"], "--alerts-topic", topics[f"{run}-alerts"],
        "--scores-topic", topics[f"{run}-scores"], "--dlq-topic", topics["dlq"],
        "--group-id", group, "--metrics-port", "0", "--max-batch", str(MAX_BATCH),
        "--k", "6", "--min-samples", "300",
        "--kafka-config", f"session.timeout.ms={restart_session_timeout_ms()}",
    ]  # fmt: skip


def run_to_end(args: list[str], bootstrap: str, group: str, topic: str,
               ends: dict[int, int], log: Path) -> None:  # fmt: skip
    """An unarmed scorer until the group committed every offset; then a clean stop."""
    with log.open("a") as out:
        proc = subprocess.Popen([*seismo_command(), *args], stdout=out, stderr=subprocess.STDOUT)
    try:
        done = wait_for(lambda: proc.poll() is not None
                        or committed(bootstrap, group, topic) == ends, 180, 0.5)  # fmt: skip
        assert done and proc.poll() is None, log.read_text()[-3000:]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()[-3000:]


def alerts_by_id(records: list[Record]) -> dict[str, str]:
    out: dict[str, str] = {}
    for r in records:
        body = r.json()
        assert out.setdefault(body["alert_id"], body["event_id"]) == body["event_id"]
    return out


def test_twenty_sigkills_at_every_step_lose_no_event_and_change_no_alert(
    kafka_bootstrap: str, redis_url: str, model_dir: Path, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    topics = {name: f"crash-{tag}-{name}" for name in
              ("input", "dlq", "ref-alerts", "ref-scores", "run-alerts", "run-scores")}  # fmt: skip
    create_topics(kafka_bootstrap, {topics["input"]: 3, **{t: 1 for n, t in topics.items()
                                                           if n != "input"}})  # fmt: skip
    x, labels = far_anomalies(N_EVENTS, seed=3)
    ends = produce_values(kafka_bootstrap, topics["input"], [
        (f"dev-{i % 20}".encode(), encode_event(f"dev-{i % 20}", row.tolist(), event_id=str(i)))
        for i, row in enumerate(x)
    ])  # fmt: skip
    log = tmp_path / "scorer.log"

    # The reference: one uninterrupted run.
    ref_group = f"ref-{tag}"
    run_to_end(score_args(kafka_bootstrap, redis_url, model_dir, "ref", topics, ref_group),
               kafka_bootstrap, ref_group, topics["input"], ends, log)  # fmt: skip
    reference = alerts_by_id(read_topic(kafka_bootstrap, topics["ref-alerts"],
                                        until=lambda r: False, timeout_s=3))  # fmt: skip
    # The data leaves no event near the threshold, so both runs must judge alike.
    assert sorted(int(e) for e in reference.values()) == np.flatnonzero(labels).tolist()

    # 20 kills, each step in turn, at the 1st to 3rd batch of each process.
    group = f"run-{tag}"
    args = score_args(kafka_bootstrap, redis_url, model_dir, "run", topics, group)
    rng = np.random.default_rng(0)
    kills: Counter[str] = Counter()
    started = time.monotonic()
    for i in range(KILLS):
        step, nth = STEPS[i % len(STEPS)], int(rng.integers(1, 4))
        with log.open("a") as out:
            out.write(f"--- kill {i + 1}: {step} of batch {nth}\n")
            out.flush()
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.crash_scorer", step, str(nth), *args],
                stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
            )  # fmt: skip
        try:
            code = proc.wait(120)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert code == -signal.SIGKILL, f"kill {i + 1} ({step}): exit {code}\n" + (
            log.read_text()[-3000:]
        )
        kills[step] += 1
    chaos_s = time.monotonic() - started
    progress = sum(max(o, 0) for o in committed(kafka_bootstrap, group, topics["input"]).values())
    assert 0 < progress < N_EVENTS, "the kills should land mid-stream"

    run_to_end(args, kafka_bootstrap, group, topics["input"], ends, log)

    scores = read_topic(kafka_bootstrap, topics["run-scores"], until=lambda r: False, timeout_s=3)
    ids = Counter(r.json()["event_id"] for r in scores)
    assert set(ids) == {str(i) for i in range(N_EVENTS)}, f"{N_EVENTS - len(ids)} events unscored"
    alerts = read_topic(kafka_bootstrap, topics["run-alerts"], until=lambda r: False, timeout_s=3)
    assert alerts_by_id(alerts) == reference
    duplicates = len(scores) - len(ids)
    print(f"\n{KILLS} kills {dict(kills)} in {chaos_s:.0f} s; committed before the last run: "
          f"{progress}; scores {len(scores)} for {N_EVENTS} events: {duplicates} duplicates, "
          f"{duplicates / KILLS:.0f} per kill; alerts {len(alerts)} records, "
          f"{len(reference)} unique = the reference's")  # fmt: skip
    # A kill replays at most the batch in flight: a batch of up to MAX_BATCH events.
    assert duplicates <= KILLS * MAX_BATCH
    assert kills == {step: KILLS // len(STEPS) for step in STEPS}
