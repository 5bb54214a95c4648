"""Memory over time of a scorer fed a steady stream (``seismo bench --soak-seconds``).

A producer process publishes generated events at ``rate`` for ``seconds``; the
scorer runs in this process, and the resident set size (RSS) of this process
is sampled every ``every_s`` seconds together with the events scored so far.
Memory is bounded when the RSS at the end is about the RSS after the warm-up,
however many events went through. Each sample also counts the blocks
Python's allocator holds (``sys.getallocatedblocks``): when those stay flat
while the RSS moves, the growth is native memory (librdkafka's fetch buffers,
the C allocator's arenas), not Python objects piling up.
"""

from __future__ import annotations

import multiprocessing
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
from confluent_kafka import Producer

from seismo.stream.config.settings import ScorerSettings
from seismo.stream.io.kafka import RDKAFKA_LOG
from seismo.stream.io.metrics import ScorerMetrics


@dataclass(frozen=True)
class SoakResult:
    """Samples ``(seconds, RSS MiB, events scored, Python blocks)``; growth after warm-up."""

    samples: list[tuple[float, float, int, int]]

    @property
    def growth_mib(self) -> float:
        """RSS at the end minus RSS at the first sample after a fifth of the run.

        >>> r = SoakResult([(0, 100.0, 0, 9), (10, 150.0, 5, 20), (50, 152.5, 20, 19)])
        >>> r.growth_mib, r.block_growth
        (2.5, -1)
        """
        return self._after_warm_up(1)

    @property
    def block_growth(self) -> int:
        """Python allocator blocks at the end minus those after a fifth of the run."""
        return int(self._after_warm_up(3))

    def _after_warm_up(self, column: int) -> float:
        if len(self.samples) < 2:
            return 0.0
        end = self.samples[-1][0]
        warm = next(s for s in self.samples if s[0] >= end / 5)
        return self.samples[-1][column] - warm[column]


def rss_mib(status: Path = Path("/proc/self/status")) -> float:
    """Resident set size of this process in MiB (0 where /proc is missing)."""
    try:
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _generate_and_publish(
    bootstrap: str, topic: str, d: int, rate: float, seconds: float, extra: dict[str, str]
) -> None:
    """Publish generated events at ``rate`` for ``seconds`` (runs in its own process)."""
    from seismo.stream.sim.factors import factor_rows

    producer = Producer({"logger": RDKAFKA_LOG, **extra, "bootstrap.servers": bootstrap,
                         "linger.ms": 5, "queue.buffering.max.messages": 1_000_000})  # fmt: skip
    chunk = max(int(rate / 10), 1)  # a tenth of a second of events at a time
    started = time.perf_counter()
    sent = 0
    while time.perf_counter() - started < seconds:
        rows = factor_rows(chunk, d, seed=sent).astype(float).round(5).tolist()
        due = started + sent / rate
        if due > time.perf_counter():
            time.sleep(due - time.perf_counter())
        for i, row in enumerate(rows, sent):
            key = f"dev-{i % 100}".encode()
            while True:
                try:
                    producer.produce(topic, orjson.dumps({"device_id": key.decode(),
                                                          "values": row}), key)  # fmt: skip
                    break
                except BufferError:
                    producer.poll(0.05)
        producer.poll(0)
        sent += chunk
    producer.flush(60)


def run_soak(
    settings: ScorerSettings, d: int, rate: float, seconds: float, partitions: int,
    every_s: float = 5.0,
) -> SoakResult:  # fmt: skip
    """Feed the scorer of ``settings`` for ``seconds`` at ``rate``; sample RSS."""
    from seismo.stream.bench.latency import wait_assigned
    from seismo.stream.scoring.service import open_scorer, tune_gc

    metrics = ScorerMetrics()
    stop = threading.Event()
    context = multiprocessing.get_context("spawn")
    producer = context.Process(
        target=_generate_and_publish, name="bench-soak-producer", daemon=True,
        args=(settings.bootstrap_servers, settings.input_topic, d, rate, seconds,
              dict(settings.kafka_config)),
    )  # fmt: skip
    samples: list[tuple[float, float, int, int]] = []

    def sample(started: float) -> None:
        scored = metrics.registry.get_sample_value("seismo_events_scored_total") or 0
        samples.append((round(time.perf_counter() - started, 1), round(rss_mib(), 1),
                        int(scored), sys.getallocatedblocks()))  # fmt: skip

    with open_scorer(settings, metrics) as scorer:
        tune_gc()
        thread = threading.Thread(target=scorer.run, args=(stop,), name="bench-soak")
        thread.start()
        try:
            wait_assigned(scorer.consumer, partitions)  # consuming before the producer starts
            producer.start()
            started = time.perf_counter()
            while producer.is_alive():
                sample(started)
                producer.join(every_s)
            time.sleep(min(every_s, 2.0))  # the last batches
            sample(started)
        finally:
            stop.set()
            thread.join()
            producer.join(10)
    return SoakResult(samples)


__all__ = ["SoakResult", "rss_mib", "run_soak"]
