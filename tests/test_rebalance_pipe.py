"""Scale from 1 to 3 scorer processes and back while events flow: nothing unscored.

A paced producer publishes for about a minute to a 6-partition topic. One
``seismo score`` starts; two more join the same consumer group, one after the
other; then they leave again (SIGTERM), one after the other, each move
waiting until the group has settled. Checked: every event is scored; the
duplicates are counted and bounded by the batches whose commit a rebalance
refused (each such batch is scored again by the partition's next owner); and
the shared Redis statistics, merged by three processes at once, count exactly
one normal score per normal score record published, duplicates included.
Scorers a and c consume ahead (``--prefetch``: their revocations hand over
the batch in flight and the one consumed ahead), b does not.
"""

from __future__ import annotations

import re
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import orjson
import pytest
import redis
from confluent_kafka import Producer

from seismo.models.artifact import build_artifact, load_artifact, save_artifact
from seismo.models.config import TrainConfig
from seismo.models.training import train_autoencoder
from seismo.stream.io.redis_stats import stats_key
from tests.kafka_tools import committed, create_topics, read_topic
from tests.pipes import SensorData, seismo_command, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.redis, pytest.mark.pipe]

RATE, SECONDS, PARTITIONS, MAX_BATCH = 400, 60, 6, 100
PREFETCHING = {"a", "c"}


class Scorer:
    """One ``seismo score`` subprocess and its log."""

    def __init__(self, name: str, args: list[str], tmp: Path) -> None:
        self.name, self.log = name, tmp / f"{name}.log"
        mode = "--prefetch" if name in PREFETCHING else "--no-prefetch"
        with self.log.open("w") as out:
            self.proc = subprocess.Popen([*seismo_command(), *args, mode], stdout=out,
                                         stderr=subprocess.STDOUT)  # fmt: skip

    def text(self) -> str:
        return self.log.read_text()

    def assignments(self) -> int:
        return self.text().count("partitions assigned")

    def owns(self) -> set[int]:
        """The partitions of its latest assignment."""
        lines = [ln for ln in self.text().splitlines() if "partitions assigned" in ln]
        return {int(p) for p in re.findall(r"\[(\d+)\]", lines[-1])} if lines else set()

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(60)


def publish(bootstrap: str, topic: str, n: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    x = SensorData().normal(n, seed=4)
    started = time.monotonic()
    for i, row in enumerate(x.tolist()):
        delay = started + i / RATE - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        key = f"dev-{i % 30}"
        producer.produce(topic, orjson.dumps({"device_id": key, "values": row, "id": str(i)}),
                         key.encode())  # fmt: skip
        producer.poll(0)
    assert producer.flush(30) == 0


def settled(scorers: list[Scorer], joins: dict[str, int]) -> bool:
    """Every scorer was assigned again since ``joins`` and together they own every partition."""
    if any(s.assignments() <= joins.get(s.name, 0) for s in scorers):
        return False
    owned = [s.owns() for s in scorers]
    return set().union(*owned) == set(range(PARTITIONS)) and sum(map(len, owned)) == PARTITIONS


def test_scaling_one_to_three_scorers_and_back_leaves_no_event_unscored(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    result = train_autoencoder(SensorData().normal(3000, seed=1), device="cpu",
                               train=TrainConfig(epochs=20, seed=0))  # fmt: skip
    model = save_artifact(build_artifact(result, name="rebalance"), tmp_path / "model")
    artifact = load_artifact(model)
    tag = uuid.uuid4().hex[:8]
    topics = {name: f"rebal-{tag}-{name}" for name in ("in", "alerts", "scores", "dlq")}
    create_topics(kafka_bootstrap, {topics["in"]: PARTITIONS, topics["alerts"]: 1,
                                    topics["scores"]: 3, topics["dlq"]: 1})  # fmt: skip
    group, n = f"rebal-{tag}", RATE * SECONDS
    args = [
        "score", "--model", str(model), "--bootstrap-servers", kafka_bootstrap,
        "--redis-url", redis_url, "--redis-prefix", group, "--input-topic", topics["in"],
        "--alerts-topic", topics["alerts"], "--scores-topic", topics["scores"],
        "--dlq-topic", topics["dlq"], "--group-id", group, "--metrics-port", "0",
        "--max-batch", str(MAX_BATCH), "--kafka-config", "session.timeout.ms=6000",
    ]  # fmt: skip
    producer = threading.Thread(target=publish, args=(kafka_bootstrap, topics["in"], n))
    first = Scorer("a", args, tmp_path)
    scorers = [first]
    moves: list[str] = []
    try:
        assert wait_for(lambda: settled([first], {}), 60), first.text()[-3000:]
        producer.start()
        started = time.monotonic()
        for name in ("b", "c"):  # scale out, one at a time
            time.sleep(5)
            joins = {s.name: s.assignments() for s in scorers}
            scorers.append(Scorer(name, args, tmp_path))
            assert wait_for(lambda: settled(scorers, joins), 60), scorers[-1].text()[-3000:]
            moves.append(f"+{name} at {time.monotonic() - started:.0f} s")
        for _ in ("c", "b"):  # and back in
            time.sleep(5)
            leaving = scorers.pop()
            joins = {s.name: s.assignments() for s in scorers}
            assert leaving.stop() == 0, leaving.text()[-3000:]
            assert wait_for(lambda: settled(scorers, joins), 60), first.text()[-3000:]
            moves.append(f"-{leaving.name} at {time.monotonic() - started:.0f} s")
        producer.join(SECONDS + 60)
        assert wait_for(lambda: sum(max(o, 0) for o in committed(
            kafka_bootstrap, group, topics["in"]).values()) == n, 60)  # fmt: skip
    finally:
        for scorer in scorers:
            scorer.stop()
    logs = {s: (tmp_path / f"{s}.log").read_text() for s in ("a", "b", "c")}
    refused = sum(text.count("offset commit failed") for text in logs.values())

    records = read_topic(kafka_bootstrap, topics["scores"], until=lambda r: len(r) >= n,
                         timeout_s=60, idle_s=1.0)  # fmt: skip
    ids = Counter(r.json()["event_id"] for r in records)
    assert set(ids) == {str(i) for i in range(n)}, f"{n - len(ids)} events unscored"
    duplicates = len(records) - n
    normal = sum(1 for r in records if not r.json()["is_anomaly"])
    client = redis.Redis.from_url(redis_url)
    try:
        merged = float(client.hget(stats_key(group, artifact.name, artifact.version, "log"),
                                   "count") or 0)  # fmt: skip
    finally:
        client.close()
    print(f"\n{n} events at {RATE}/s, moves {moves}: {duplicates} duplicates, "
          f"{refused} commits refused by a rebalance (bound {refused * MAX_BATCH}); "
          f"Redis count {merged:.0f} = {normal} normal score records")  # fmt: skip
    assert duplicates <= refused * MAX_BATCH
    assert merged == normal
