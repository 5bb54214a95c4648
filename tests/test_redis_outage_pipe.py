"""Redis frozen for 30 s under a running scorer: scoring goes on locally, nothing is lost.

A dedicated ``redis-server`` is stopped with SIGSTOP (it keeps its data and
its sockets, and answers nothing: the worst case for a client, which only
learns from timeouts) while a paced producer feeds ``seismo score``, then
resumed with SIGCONT. Checked: the scorer never stops; every event is scored
exactly once; alerts during the outage carry ``threshold_source: "local"``
and arrive seconds after their event, not after the outage; the metrics say
``seismo_threshold_local 1`` meanwhile; and once Redis answers again the
scores held back are merged, so its count equals every normal score.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import orjson
import pytest
import redis
from confluent_kafka import Producer

from seismo.models.artifact import build_artifact, load_artifact, save_artifact
from seismo.models.config import TrainConfig
from seismo.models.training import train_autoencoder
from seismo.stream.io.redis_stats import stats_key
from seismo.stream.local.embedded import EmbeddedRedis, free_port
from tests.kafka_tools import committed, create_topics, read_topic
from tests.pipes import SensorData, metric, running, start_seismo, stop, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.redis, pytest.mark.pipe]

RATE = 200  # events/s
BEFORE_S, OUTAGE_S, AFTER_S = 8.0, 30.0, 6.0


def publish(bootstrap: str, topic: str, x: np.ndarray, anomalous: np.ndarray) -> None:
    """Publish ``x`` at RATE events/s, stamped at send time; every 50th row far off."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    started = time.monotonic()
    for i, row in enumerate(x):
        delay = started + i / RATE - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        values = (row + 60 * anomalous[i]).tolist()
        event = {"device_id": f"dev-{i % 10}", "values": values, "id": str(i),
                 "ts": time.time_ns() // 1_000_000}  # fmt: skip
        producer.produce(topic, orjson.dumps(event), f"dev-{i % 10}".encode())
        producer.poll(0)
    assert producer.flush(30) == 0


def test_a_frozen_redis_for_30_s_neither_stops_nor_stalls_the_scorer(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    result = train_autoencoder(SensorData().normal(3000, seed=1), device="cpu",
                               train=TrainConfig(epochs=30, batch_size=64, lr=3e-3, seed=0,
                                                 trim_share=0.0, neighbours=0))  # clean
    model = save_artifact(build_artifact(result, name="outage"), tmp_path / "model")
    artifact = load_artifact(model)
    tag = uuid.uuid4().hex[:8]
    topics = {name: f"outage-{tag}-{name}" for name in ("in", "alerts", "scores", "dlq")}
    create_topics(kafka_bootstrap, {topics["in"]: 2, topics["alerts"]: 1, topics["scores"]: 1,
                                    topics["dlq"]: 1})  # fmt: skip
    n = int(RATE * (BEFORE_S + OUTAGE_S + AFTER_S))
    x = SensorData().normal(n, seed=5)
    anomalous = np.zeros(n, dtype=bool)
    anomalous[::50] = True
    port, group = free_port(), f"outage-{tag}"
    log = tmp_path / "scorer.log"

    with EmbeddedRedis() as server:
        proc = start_seismo(
            "score", "--model", str(model), "--bootstrap-servers", kafka_bootstrap,
            "--redis-url", server.url, "--redis-prefix", group, "--input-topic", topics["in"],
            "--alerts-topic", topics["alerts"], "--scores-topic", topics["scores"],
            "--dlq-topic", topics["dlq"], "--group-id", group, "--metrics-port", str(port),
            "--min-samples", "200", "--max-batch", "200", "--linger-ms", "50", "--k", "6",
            "--redis-timeout-s", "1", "--redis-retry-s", "2",
            "--kafka-config", "session.timeout.ms=6000", log=log,
        )  # fmt: skip
        alive = running(proc, log)
        try:
            assert wait_for(lambda: alive() or "partitions assigned" in log.read_text(), 60)
            producer = threading.Thread(
                target=publish, args=(kafka_bootstrap, topics["in"], x, anomalous)
            )
            producer.start()
            time.sleep(BEFORE_S)
            assert server.pid is not None
            frozen_at = time.time() * 1000
            os.kill(server.pid, signal.SIGSTOP)
            try:
                time.sleep(OUTAGE_S / 2)
                local_midway = metric(port, "seismo_threshold_local")
                pending_midway = metric(port, "seismo_stats_pending")
                time.sleep(OUTAGE_S / 2)
            finally:
                os.kill(server.pid, signal.SIGCONT)
            resumed_at = time.time() * 1000
            producer.join(60)
            scores = read_topic(kafka_bootstrap, topics["scores"],
                                until=lambda r: alive() or len(r) >= n, timeout_s=60)  # fmt: skip
            assert wait_for(lambda: sum(max(o, 0) for o in committed(
                kafka_bootstrap, group, topics["in"]).values()) == n, 30)  # fmt: skip
            # Settle: the next successful merge after the pause empties the pending scores.
            assert wait_for(lambda: metric(port, "seismo_stats_pending") == 0, 30)
            local_after = metric(port, "seismo_threshold_local")
            redis_errors = metric(port, "seismo_redis_errors_total")
            client = redis.Redis.from_url(server.url)
            key = stats_key(group, artifact.name, artifact.version, "log")
            redis_count = float(client.hget(key, "count") or 0)
            client.close()
        finally:
            code = stop(proc)
    assert code == 0, log.read_text()[-3000:]

    ids = [r.json()["event_id"] for r in scores]
    assert sorted(ids, key=int) == [str(i) for i in range(n)], "every event scored exactly once"
    normal_scores = sum(1 for r in scores if not r.json()["is_anomaly"])
    assert redis_count == normal_scores, "the scores held back were merged once Redis was back"

    alerts = [r.json() for r in read_topic(kafka_bootstrap, topics["alerts"],
                                           until=lambda r: False, timeout_s=3)]  # fmt: skip
    assert {int(a["event_id"]) for a in alerts} == set(np.flatnonzero(anomalous).tolist())
    during = [a for a in alerts if frozen_at + 3000 <= a["ts"] <= resumed_at - 1000]
    # Before: after the warm-up of 200 scores (judged on the model's calibration).
    before = [a for a in alerts if a["ts"] < frozen_at - 1000 and int(a["event_id"]) >= 400]
    assert len(during) >= 100 and len(before) >= 20
    assert {a["threshold_source"] for a in during} == {"local"}
    assert {a["threshold_source"] for a in before} == {"redis"}
    waits = [(a["detected_at"] - a["ts"]) / 1000 for a in during]
    print(f"\nRedis frozen {OUTAGE_S:g} s: {len(during)} alerts judged locally, event-to-alert "
          f"max {max(waits):.2f} s, p50 {np.median(waits):.2f} s; Redis errors "
          f"{redis_errors:.0f}; pending midway {pending_midway:.0f}; merged after: "
          f"{redis_count:.0f} = {normal_scores} normal scores")  # fmt: skip
    # A batch waits at most one call's timeout (1 s) per retry pause (2 s), never the outage.
    assert max(waits) < 5.0
    assert local_midway == 1 and local_after == 0 and pending_midway and pending_midway > 0
    assert redis_errors and redis_errors >= 3
