"""Throughput of 1, 2, 4 ... ``seismo score`` processes in one consumer group (``seismo bench``).

For each count: a fresh topic, that many scorer processes started and given
time to share its partitions (each one's log says ``partitions assigned``),
then the events published at full speed while they consume. The group's
committed offsets are read every 50 ms; the rate is all events over the time
from the start of publishing to the last commit. Start-up and the group join
count for no count of processes, but publishing does: where the producer (or
the broker) is slower than the scorers, every count measures the producer, and
``fill_seconds`` shows it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from seismo.stream.io.kafka import RDKAFKA_LOG
from seismo.stream.local.children import SeismoChild
from seismo.stream.local.embedded import create_topics

POLL_S = 0.05
READY_TIMEOUT_S = 90.0


@dataclass(frozen=True)
class ScalingResult:
    """``processes`` scorers committed ``events`` in ``seconds`` (publishing: ``fill_seconds``)."""

    processes: int
    events: int
    seconds: float
    fill_seconds: float

    @property
    def per_second(self) -> float:
        """Events per second (0 for an empty run)."""
        return self.events / self.seconds if self.seconds > 0 else 0.0


def committed_total(
    bootstrap: str, group: str, topic: str, partitions: int,
    kafka_config: Mapping[str, Any] | None = None,
) -> int:  # fmt: skip
    """Sum of the group's committed offsets over the topic's partitions (0 where none)."""
    consumer = Consumer({"logger": RDKAFKA_LOG, **(kafka_config or {}), "bootstrap.servers":
                         bootstrap, "group.id": group, "enable.auto.commit": False})  # fmt: skip
    try:
        found = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], 10)
    finally:
        consumer.close()
    return sum(max(tp.offset, 0) for tp in found)


def run_scaling(
    processes: int,
    *,
    bootstrap: str,
    redis_url: str,
    model_dir: Path,
    partitions: int,
    fill: Callable[[str], int],
    workdir: Path,
    extra_args: list[str],
    timeout_s: float = 300.0,
    kafka_config: Mapping[str, Any] | None = None,
) -> ScalingResult:
    """Run ``processes`` scorers on a fresh topic that ``fill(topic)`` then fills."""
    tag = uuid.uuid4().hex[:8]
    topic, alerts, dlq, group = f"scale-{tag}", f"scale-{tag}-a", f"scale-{tag}-d", f"g-{tag}"
    config = dict(kafka_config or {})
    create_topics(bootstrap, {topic: partitions, alerts: 1, dlq: 1}, extra_config=config)
    args = ["score", "--model", str(model_dir), "--bootstrap-servers", bootstrap,
            "--redis-url", redis_url, "--redis-prefix", f"scale-{tag}", "--input-topic", topic,
            "--alerts-topic", alerts, "--dlq-topic", dlq, "--group-id", group,
            "--metrics-port", "0", "--drift-m", "0", *extra_args]  # fmt: skip
    with ExitStack() as stack:
        children = [
            stack.enter_context(SeismoChild(f"scorer {i}", args, workdir / f"{tag}-{i}.log"))
            for i in range(processes)
        ]
        _wait_ready(children)
        started = time.perf_counter()
        total = fill(topic)
        filled = time.perf_counter() - started
        done_at = _watch_commits(bootstrap, group, topic, partitions, total, timeout_s, children,
                                 kafka_config)  # fmt: skip
        return ScalingResult(processes, total, done_at - started, filled)


def _wait_ready(children: list[SeismoChild]) -> None:
    """Until every scorer owns partitions (with more scorers than partitions: all started)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        for child in children:
            child.check_alive()
        if all(c.has_logged("partitions assigned") for c in children):
            time.sleep(1.0)  # let a last rebalance settle
            return
        time.sleep(0.2)
    raise TimeoutError(f"the scorers did not all get partitions in {READY_TIMEOUT_S:g} s")


def _watch_commits(
    bootstrap: str, group: str, topic: str, partitions: int, total: int, timeout_s: float,
    children: list[SeismoChild], kafka_config: Mapping[str, Any] | None = None,
) -> float:  # fmt: skip
    """``perf_counter`` time at which the group had committed ``total`` events."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if committed_total(bootstrap, group, topic, partitions, kafka_config) >= total:
            return time.perf_counter()
        for child in children:
            child.check_alive()
        time.sleep(POLL_S)
    raise TimeoutError(f"{len(children)} scorers did not commit {total} events in {timeout_s:g} s")
