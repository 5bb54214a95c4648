"""End to end (issue 18): a stream mixing every hostile message class with normal events
keeps `seismo score` running, in model scope and in device scope, across a restart.

Hostile messages come among normal ones, then clear anomalies. Afterwards every
offset is committed, every message is either scored with a finite score or
dead-lettered with a reason, nothing was judged twice or skipped, and at least
90 % of the anomalies after the attack were alerted.
"""

from __future__ import annotations

import math
import uuid
from pathlib import Path

import numpy as np
import pytest
from confluent_kafka import Producer

from seismo.stream.scoring.codec import encode_event
from seismo.stream.scoring.f32_codec import encode_f32, f32_headers
from tests.kafka_tools import committed, create_topics, read_topic
from tests.pipes import SensorData, running, start_seismo, stop, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.redis, pytest.mark.pipe]

D = 8
DEVICES = [f"dev-{i}" for i in range(8)]
Message = tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]


def hostile(round_: int) -> list[Message]:
    """One of each class of message a careless or hostile producer can send."""
    ones = [1.0] * D
    deep = b"[" * 1500 + b"]" * 1500
    return [
        (b"h-deep", b'{"device_id":"h","values":[1,2,3,4,5,6,7,8],"x":' + deep + b"}", []),
        (b"h-deep-obj", b'{"device_id":"h","values":[1],"x":' + b'{"a":' * 1500 + b"1"
         + b"}" * 1501, []),  # fmt: skip
        (b"dev-0", encode_event("dev-0", [3e38, *ones[1:]]), []),  # finite float32, overflows
        (b"dev-1", encode_event("dev-1", [-3e38, *ones[1:]]), []),
        (b"dev-2", encode_event("dev-2", [1e30, *ones[1:]]), []),  # wrote null device states
        (b"h-huge", b'{"device_id":"h","values":[' + b"1," * 1_000_000 + b"1]}", []),  # 2 MB
        (b"k" * 100_000, encode_event("k", ones), []),  # a 100 kB key
        (b"h-headers", b"{not json", [("trace", b"x" * 400_000)]),  # 400 kB of headers
        (b"h-f32", encode_f32([1.0, 2.0]), f32_headers()),  # wrong length, binary
        (b"dev-3", encode_f32([3e38] * D), f32_headers()),  # binary overflow
        (b"h-type", b"a,b,c", [("content-type", b"text/csv")]),
        (b"h-nan", b'{"device_id":"h","values":[NaN,1,1,1,1,1,1,1]}', []),
        (None, None, []),  # tombstone
        (b"h-inj", encode_event("line\nFAKE ERROR <!channel> \x1b[31m", ones), []),
        (b"h-array", b"[" * 100_000 + b"]" * 100_000, []),
        *[(f"id-{round_}-{i}".encode(), encode_event(f"id-{round_}-{i}", ones), [])
          for i in range(300)],  # many distinct ids (max_devices below is 50)  # fmt: skip
    ]


def produce(bootstrap: str, topic: str, messages: list[Message]) -> list[tuple[int, int]]:
    """Produce in order; each message's (partition, offset)."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                         "message.max.bytes": 3_000_000})  # fmt: skip
    where: dict[int, tuple[int, int]] = {}

    def delivered(i: int):
        def on_delivery(err, msg) -> None:
            assert err is None, err
            where[i] = (msg.partition(), msg.offset())

        return on_delivery

    for i, (key, value, headers) in enumerate(messages):
        producer.produce(topic, value, key, headers=headers, on_delivery=delivered(i))
        producer.poll(0)
    assert producer.flush(30) == 0
    return [where[i] for i in range(len(messages))]


def normal(data: SensorData, n: int, seed: int, tag: str) -> list[Message]:
    rows = data.normal(n, seed)
    return [(DEVICES[i % len(DEVICES)].encode(),
             encode_event(DEVICES[i % len(DEVICES)], row, event_id=f"{tag}-{i}"), [])
            for i, row in enumerate(rows)]  # fmt: skip


def anomalies(data: SensorData, n: int, seed: int) -> list[Message]:
    rows = data.normal(n, seed)
    rows += 30 * data.normal(2000, 0).std(axis=0) * np.where(np.arange(D) % 2, 1, -1)
    return [(DEVICES[i % len(DEVICES)].encode(),
             encode_event(DEVICES[i % len(DEVICES)], row, event_id=f"x-{i}"), [])
            for i, row in enumerate(rows)]  # fmt: skip


@pytest.fixture(scope="module")
def model_dir(sensor_model_dir: Path) -> Path:
    assert SensorData().n_features == D
    return sensor_model_dir


@pytest.mark.parametrize("scope", ["model", "device"])
def test_every_hostile_class_is_dead_lettered_or_scored_and_anomalies_still_alert(
    kafka_bootstrap, redis_url, model_dir, tmp_path, scope
):
    tag = uuid.uuid4().hex[:8]
    topics = {k: f"{k}-{tag}" for k in ("input", "alerts", "scores", "dlq")}
    create_topics(kafka_bootstrap, {topics["input"]: 2, topics["alerts"]: 2,
                                    topics["scores"]: 2, topics["dlq"]: 1})  # fmt: skip
    group = f"g-{tag}"
    args = ["score", "--model", str(model_dir), "--bootstrap-servers", kafka_bootstrap,
            "--redis-url", redis_url, "--redis-prefix", f"poison-{tag}",
            "--input-topic", topics["input"], "--alerts-topic", topics["alerts"],
            "--scores-topic", topics["scores"], "--dlq-topic", topics["dlq"],
            "--group-id", group, "--metrics-port", "0", "--min-samples", "200",
            "--max-devices", "50", "--kafka-config", "session.timeout.ms=6000"]  # fmt: skip
    if scope == "device":
        args += ["--threshold-scope", "device", "--smooth", "1", "--level-warmup", "20"]
    data = SensorData(n_features=D)
    first = [*normal(data, 600, 2, "a"), *hostile(0), *normal(data, 600, 3, "b")]
    second = [*hostile(1), *normal(data, 400, 4, "c"), *anomalies(data, 40, 5)]
    positions = produce(kafka_bootstrap, topics["input"], first)
    log = tmp_path / "scorer.log"

    def ends(upto: list[tuple[int, int]]) -> dict[int, int]:
        out: dict[int, int] = {}
        for p, o in upto:
            out[p] = max(out.get(p, 0), o + 1)
        return out

    for stream_part in (None, second):  # the second run starts after a restart
        if stream_part is not None:
            positions += produce(kafka_bootstrap, topics["input"], stream_part)
        proc = start_seismo(*args, log=log)
        alive = running(proc, log)
        want = ends(positions)
        try:
            assert wait_for(lambda: alive() or committed(  # noqa: B023
                kafka_bootstrap, group, topics["input"]) == want, 240), log.read_text()[-3000:]
        finally:
            code = stop(proc)
        assert code == 0, log.read_text()[-3000:]

    everything = [*first, *second]
    scores = read_topic(kafka_bootstrap, topics["scores"], until=lambda r: False, timeout_s=5)
    dlq = read_topic(kafka_bootstrap, topics["dlq"], until=lambda r: False, timeout_s=5)
    scored = {(r.json()["source"]["partition"], r.json()["source"]["offset"]) for r in scores}
    assert all(isinstance(r.json()["score"], float) and math.isfinite(r.json()["score"])
               for r in scores)  # fmt: skip
    dead = {(int(r.headers["seismo-source-partition"]), int(r.headers["seismo-source-offset"])):
            r.headers["seismo-error"].decode() for r in dlq}  # fmt: skip
    assert all(dead.values()) and not scored & set(dead)
    assert scored | set(dead) == set(positions)  # nothing skipped, nothing lost
    reasons = {everything[positions.index(p)][0]: reason for p, reason in dead.items()}
    assert reasons[b"h-deep"] == reasons[b"h-deep-obj"] == "too deeply nested"
    assert reasons[b"h-array"] == "too deeply nested"
    assert "exceeds the limit" in reasons[b"h-huge"]
    assert sum(r == "score is not finite" for r in dead.values()) == 2 * 4  # per round
    assert all(len(r.value or b"") < 1_000_000 for r in dlq)

    alerts = read_topic(kafka_bootstrap, topics["alerts"], until=lambda r: False, timeout_s=5)
    alerted = {a.json()["event_id"] for a in alerts}
    caught = sum(f"x-{i}" in alerted for i in range(40))
    print(f"\n{scope} scope: {len(scores)} scores, {len(dlq)} dead letters, "
          f"{caught}/40 anomalies alerted")  # fmt: skip
    assert caught >= 36
    text = log.read_text()
    assert "Traceback" not in text
