"""End to end: `seismo train`, `seismo produce`, `seismo score` against real Kafka and Redis.

10 000 events with about 1% injected anomalies and a handful of malformed
messages go through the scorer running as a subprocess. The first run checks
every output and a clean SIGTERM; the second kills the scorer with SIGKILL
mid-stream, restarts it, and checks that no event went missing.
"""

from __future__ import annotations

import signal
import uuid
from pathlib import Path

import numpy as np
import orjson
import pytest

from tests.kafka_tools import committed, create_topics, produce_values, read_topic
from tests.pipes import SensorData, run_seismo, running, start_seismo, stop, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.redis, pytest.mark.pipe]

N_EVENTS = 10_000
MAX_MESSAGE_BYTES = 4096
MALFORMED: list[tuple[bytes | None, str]] = [
    (b"{not json", "invalid JSON"),
    (b"\xff\xfe\x00garbage", "invalid UTF-8"),
    (b'{"device_id": "bad-1", "values": [1, 2]}', "expected 8 values, got 2"),
    (b'{"values": [1, 2, 3, 4, 5, 6, 7, 8]}', "missing field 'device_id'"),
    (
        b'{"device_id": "bad-2", "values": [1, 2, 3, "x", 5, 6, 7, 8]}',
        "field 'values' must be an array of numbers",
    ),
    (b'{"device_id": "bad-3", "values": [1, 2, 3, 4, 5, 6, 7, 1e309]}', "invalid JSON"),
    (None, "empty message value (tombstone)"),
    (b'{"device_id": "bad-4", "values": [' + b"1," * 3000 + b"1]}", "exceeds the limit of 4096"),
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A dense model trained by `seismo train` on generated normal sensor data.

    The training rows are clean, so the dense autoencoder (the README's advice
    for clean data) rather than the default VAE, which is chosen for training
    data that holds anomalies: on this pipe the VAE ranks as well (ROC-AUC 1.0
    offline) but its k = 3 threshold gave precision 0.78 against 0.94.
    """
    root = tmp_path_factory.mktemp("pipe-model")
    data = root / "normal.npz"
    np.savez(data, X=SensorData().normal(6000, seed=1))
    out = str(root / "model")
    done = run_seismo(
        "train", "--data", str(data), "--out", out, "--arch", "dense", "--epochs", "60",
        "--seed", "0", "--clean",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return root / "model"


@pytest.fixture
def stream_setup(kafka_bootstrap, tmp_path):
    """Fresh topics holding 10 000 events (ids = row indexes) plus malformed messages."""
    tag = uuid.uuid4().hex[:8]
    topics = {
        "input": f"events-{tag}",
        "alerts": f"anomalies-{tag}",
        "scores": f"scores-{tag}",
        "dlq": f"dlq-{tag}",
    }
    create_topics(
        kafka_bootstrap,
        {topics["input"]: 3, topics["alerts"]: 3, topics["scores"]: 3, topics["dlq"]: 1},
    )
    x, labels = SensorData().with_anomalies(N_EVENTS, rate=0.01, seed=11)
    data = tmp_path / "events.npz"
    np.savez(data, X=x)
    done = run_seismo(
        "produce",
        "--bootstrap-servers",
        kafka_bootstrap,
        "--topic",
        topics["input"],
        "--data",
        str(data),
        "--devices",
        "25",
    )
    assert done.returncode == 0, done.stderr
    bad = [(f"bad-{i}".encode(), value) for i, (value, _) in enumerate(MALFORMED)]
    produce_values(kafka_bootstrap, topics["input"], bad)
    return topics, labels


def score_args(kafka_bootstrap, redis_url, topics, group, model_dir, *extra) -> list[str]:
    return [
        "score",
        "--model",
        str(model_dir),
        "--bootstrap-servers",
        kafka_bootstrap,
        "--redis-url",
        redis_url,
        "--redis-prefix",
        f"test-{group}",
        "--input-topic",
        topics["input"],
        "--alerts-topic",
        topics["alerts"],
        "--scores-topic",
        topics["scores"],
        "--dlq-topic",
        topics["dlq"],
        "--group-id",
        group,
        "--metrics-port",
        "0",
        "--min-samples",
        "500",
        "--max-message-bytes",
        str(MAX_MESSAGE_BYTES),
        "--kafka-config",
        "session.timeout.ms=6000",
        *extra,
    ]


def input_ends(kafka_bootstrap, topic) -> dict[int, int]:
    records = read_topic(
        kafka_bootstrap, topic, until=lambda r: len(r) >= N_EVENTS + len(MALFORMED)
    )
    ends: dict[int, int] = {}
    for r in records:
        ends[r.partition] = max(ends.get(r.partition, 0), r.offset + 1)
    return ends


def test_scorer_scores_every_event_once_alerts_dead_letters_commits_and_stops(
    kafka_bootstrap, redis_url, model_dir, stream_setup, tmp_path
):
    topics, labels = stream_setup
    group = f"g-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "scorer.log"
    proc = start_seismo(*score_args(kafka_bootstrap, redis_url, topics, group, model_dir), log=log)
    alive = running(proc, log)
    try:
        scores = read_topic(
            kafka_bootstrap,
            topics["scores"],
            until=lambda r: alive() or len(r) >= N_EVENTS,
            timeout_s=180,
            idle_s=2.0,
        )
        ends = input_ends(kafka_bootstrap, topics["input"])
        assert wait_for(lambda: committed(kafka_bootstrap, group, topics["input"]) == ends, 30), (
            committed(kafka_bootstrap, group, topics["input"]),
            ends,
        )
    finally:
        code = stop(proc)
    text = log.read_text()
    assert code == 0, text[-3000:]
    assert "scorer stopped cleanly" in text

    ids = [s.json()["event_id"] for s in scores]
    assert sorted(ids, key=int) == [str(i) for i in range(N_EVENTS)], (
        "each valid event scored exactly once"
    )

    alerts = read_topic(kafka_bootstrap, topics["alerts"], until=lambda r: False, timeout_s=5)
    alerted = np.zeros(N_EVENTS, dtype=bool)
    for a in alerts:
        body = a.json()
        assert body["alert_id"] == "{topic}:{partition}:{offset}".format(**body["source"])
        assert a.key == body["device_id"].encode()
        assert len(body["top_features"]) == 3 and body["model_version"]
        assert body["score"] > body["threshold"]
        alerted[int(body["event_id"])] = True
    tp = int((alerted & labels).sum())
    recall, precision = tp / labels.sum(), tp / max(alerted.sum(), 1)
    print(
        f"\nalerts={alerted.sum()} anomalies={labels.sum()}"
        f" recall={recall:.3f} precision={precision:.3f}"
    )
    assert recall >= 0.95
    assert precision >= 0.85

    dlq = read_topic(
        kafka_bootstrap, topics["dlq"], until=lambda r: len(r) >= len(MALFORMED), idle_s=1.0
    )
    assert len(dlq) == len(MALFORMED)
    by_key = {r.key: r for r in dlq}
    for i, (value, reason) in enumerate(MALFORMED):
        record = by_key[f"bad-{i}".encode()]
        assert record.value == value  # a tombstone stays a tombstone (None)
        assert reason in record.headers["seismo-error"].decode()
        assert record.headers["seismo-source-topic"].decode() == topics["input"]
        assert int(record.headers["seismo-source-offset"]) >= 0
        assert "seismo-source-partition" in record.headers


def test_scorer_killed_mid_stream_loses_no_event_after_restart(
    kafka_bootstrap, redis_url, model_dir, stream_setup, tmp_path
):
    topics, _ = stream_setup
    group = f"g-{uuid.uuid4().hex[:8]}"
    args = score_args(kafka_bootstrap, redis_url, topics, group, model_dir, "--max-batch", "100")
    log = tmp_path / "scorer.log"
    first = start_seismo(*args, log=log)
    alive = running(first, log)
    try:
        partial = read_topic(
            kafka_bootstrap,
            topics["scores"],
            until=lambda r: alive() or len(r) >= 2000,
            timeout_s=120,
        )
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    assert len(partial) < N_EVENTS, "the kill should land mid-stream"
    second = start_seismo(*args, log=log)
    alive = running(second, log)
    try:
        scores = read_topic(
            kafka_bootstrap,
            topics["scores"],
            until=lambda r: (
                alive() or len({orjson.loads(x.value)["event_id"] for x in r}) >= N_EVENTS
            ),
            timeout_s=180,
        )
    finally:
        code = stop(second)
    ids = {s.json()["event_id"] for s in scores}
    assert ids == {str(i) for i in range(N_EVENTS)}, f"{N_EVENTS - len(ids)} events missing"
    duplicates = len(scores) - len(ids)
    print(f"\nscores={len(scores)} unique={len(ids)} duplicates after SIGKILL={duplicates}")
    assert code == 0, log.read_text()[-3000:]
