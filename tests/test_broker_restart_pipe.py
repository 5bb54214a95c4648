"""The broker stops and starts again under a running scorer: it reconnects by itself.

The scorer (``seismo score``, a subprocess) works against a dedicated
embedded broker. The broker is stopped; the scorer's ``/health`` must turn to
503 with ``"kafka": "down"`` and its metrics must show no broker connection,
while the process keeps running. The broker then starts again on the same
port. Its storage is in memory, so it comes back empty, as after a disaster
on a real cluster: the test creates the topics again and publishes new events,
which the scorer must score without being restarted or touched, and
``/health`` returns to 200.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from seismo.models.artifact import build_artifact, save_artifact
from seismo.models.config import TrainConfig
from seismo.models.training import train_autoencoder
from seismo.stream.local.embedded import EmbeddedKafka, free_port
from seismo.stream.scoring.codec import encode_event
from tests.kafka_tools import create_topics, produce_values, read_topic
from tests.pipes import SensorData, get_health, metric, running, start_seismo, stop, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.redis, pytest.mark.pipe]

N = 500


def publish(bootstrap: str, topic: str, tag: str) -> None:
    rows = SensorData().normal(N, seed=hash(tag) % 1000)
    produce_values(bootstrap, topic, [
        (f"dev-{i % 5}".encode(), encode_event(f"dev-{i % 5}", r.tolist(), event_id=f"{tag}-{i}"))
        for i, r in enumerate(rows)
    ])  # fmt: skip


def scored_ids(bootstrap: str, topic: str, tag: str, alive) -> set[str]:
    def done(records) -> bool:
        return alive() or sum(r.json()["event_id"].startswith(tag) for r in records) >= N

    records = read_topic(bootstrap, topic, until=done, timeout_s=90)
    return {r.json()["event_id"] for r in records if r.json()["event_id"].startswith(tag)}


def test_scorer_survives_a_broker_restart_and_reports_it_meanwhile(
    redis_url: str, tmp_path: Path
) -> None:
    result = train_autoencoder(SensorData().normal(2000, seed=1), device="cpu",
                               train=TrainConfig(epochs=10, seed=0))  # fmt: skip
    model = save_artifact(build_artifact(result, name="restart"), tmp_path / "model")
    tag = uuid.uuid4().hex[:8]
    topics = {name: f"restart-{tag}-{name}" for name in ("in", "alerts", "scores", "dlq")}
    layout = {topics["in"]: 2, topics["alerts"]: 1, topics["scores"]: 1, topics["dlq"]: 1}
    port, log = free_port(), tmp_path / "scorer.log"

    with EmbeddedKafka() as kafka:
        bootstrap = kafka.bootstrap_servers
        create_topics(bootstrap, layout)
        proc = start_seismo(
            "score", "--model", str(model), "--bootstrap-servers", bootstrap,
            "--redis-url", redis_url, "--redis-prefix", f"restart-{tag}",
            "--input-topic", topics["in"], "--alerts-topic", topics["alerts"],
            "--scores-topic", topics["scores"], "--dlq-topic", topics["dlq"],
            "--group-id", f"restart-{tag}", "--metrics-port", str(port),
            "--flush-timeout-s", "5", "--kafka-config", "session.timeout.ms=6000", log=log,
        )  # fmt: skip
        alive = running(proc, log)
        try:
            publish(bootstrap, topics["in"], "before")
            assert len(scored_ids(bootstrap, topics["scores"], "before", alive)) == N
            code, body = get_health(port)
            assert (code, body["status"], body["kafka"]) == (200, "ok", "up"), body
            assert body["partitions"] == 2 and body["model_version"]

            kafka.stop()
            stopped = time.monotonic()
            assert wait_for(lambda: get_health(port)[0] == 503, 30), get_health(port)
            down_after = time.monotonic() - stopped
            code, body = get_health(port)
            assert (body["status"], body["kafka"], body["brokers_up"]) == ("down", "down", 0)
            time.sleep(5)
            alive()  # the scorer is still running, broker or not

            kafka.start()
            restarted = time.monotonic()
            create_topics(bootstrap, layout)  # in-memory storage: the broker came back empty
            publish(bootstrap, topics["in"], "after")
            assert len(scored_ids(bootstrap, topics["scores"], "after", alive)) == N
            resumed_after = time.monotonic() - restarted
            assert wait_for(lambda: get_health(port)[0] == 200, 30), get_health(port)
            failures = metric(port, "seismo_delivery_failures_total")
        finally:
            code = stop(proc)
    print(f"\nbroker stopped: /health 503 after {down_after:.1f} s; restarted: "
          f"{N} new events scored {resumed_after:.1f} s after the broker came back; "
          f"batches published again: {failures:.0f}")
    assert code == 0, log.read_text()[-3000:]
