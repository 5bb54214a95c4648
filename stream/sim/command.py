"""``seismo simulate``: publish the simulated fleet to Kafka at a steady rate.

Events go to the input topic (key = device id); each anomaly episode's ground
truth goes, when the episode ends, to the labels topic (key = device id, JSON
of :meth:`~seismo.stream.sim.anomalies.Episode.label`) and, with ``labels_file``, as
one JSON line to that file. Episodes still running when the simulator stops
are written with ``last_tick`` = the last tick published.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson

from seismo.stream.errors import ConfigError
from seismo.stream.io.kafka import PRODUCER_DEFAULTS, ConfirmingProducer, client_config
from seismo.stream.sim.plant import CHANNELS
from seismo.stream.sim.simulation import Simulation, SimulationConfig, Tick

log = logging.getLogger(__name__)

#: Most ticks published back to back when the simulator fell behind its schedule.
MAX_CATCH_UP_TICKS = 50
FLUSH_TIMEOUT_S = 60.0


@dataclass
class SimulationTotals:
    """What a run published."""

    ticks: int = 0
    events: int = 0
    anomalous_events: int = 0
    episodes: int = 0


def tick_times(rate: float, devices: int) -> float:
    """Seconds between two ticks for ``rate`` events/s over ``devices`` devices.

    >>> tick_times(1000, 20)
    0.02
    """
    if rate <= 0:
        raise ValueError("rate must be positive")
    return devices / rate


class SimulationPublisher:
    """Publishes a :class:`Simulation`'s ticks and labels; one thread at a time."""

    def __init__(
        self,
        simulation: Simulation,
        producer: ConfirmingProducer,
        topic: str,
        labels_topic: str | None,
        labels_file: IO[bytes] | None = None,
    ) -> None:
        self.simulation = simulation
        self.producer = producer
        self.topic = topic
        self.labels_topic = labels_topic
        self.labels_file = labels_file
        self.totals = SimulationTotals()

    def publish(self, tick: Tick) -> None:
        """Queue one tick's events and the labels of the episodes it ended."""
        for key, value in tick.events:
            self.producer.send(self.topic, value, key=key)
        self._labels(tick.labels)
        self.totals.ticks += 1
        self.totals.events += len(tick.events)
        self.totals.anomalous_events += int(tick.anomalous.sum())

    def _labels(self, labels: list[dict[str, Any]]) -> None:
        for record in labels:
            payload = orjson.dumps(record)
            if self.labels_topic:
                self.producer.send(self.labels_topic, payload, key=record["device_id"].encode())
            if self.labels_file is not None:
                self.labels_file.write(payload + b"\n")
                self.labels_file.flush()
            self.totals.episodes += 1

    def finish(self) -> list[dict[str, Any]]:
        """Write the labels of open episodes, flush everything; return those labels."""
        still_open = self.simulation.open_labels()
        self._labels(still_open)
        self.producer.flush(FLUSH_TIMEOUT_S)
        return still_open

    def run(
        self,
        rate: float,
        stop: threading.Event,
        duration_s: float | None = None,
        on_tick: Callable[[Tick], None] | None = None,
    ) -> SimulationTotals:
        """Publish ticks at ``rate`` events/s until ``stop`` or ``duration_s``; then finish."""
        period = tick_times(rate, self.simulation.config.devices)
        start = time.monotonic()
        due = start
        try:
            while not stop.is_set():
                now = time.monotonic()
                if duration_s is not None and now - start >= duration_s:
                    break
                if due > now:
                    stop.wait(due - now)
                    continue
                due = max(due, now - MAX_CATCH_UP_TICKS * period) + period
                tick = self.simulation.tick(ts_ms=time.time_ns() // 1_000_000)
                self.publish(tick)
                if on_tick is not None:
                    on_tick(tick)
        finally:
            self.finish()
        return self.totals


def write_normal_csv(config: SimulationConfig, path: Path, days: float = 1.0) -> int:
    """Write ``days`` simulated days of normal readings (header: channel names); the rows."""
    if days <= 0:
        raise ConfigError("--days must be positive")
    x = Simulation(config).warmup_data(days)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, x, delimiter=",", header=",".join(CHANNELS), comments="", fmt="%.5f")
    return len(x)


def run_simulate(
    *,
    config: SimulationConfig,
    bootstrap_servers: str,
    topic: str,
    labels_topic: str | None,
    labels_file: Path | None,
    rate: float,
    duration_s: float | None,
    kafka_config: dict[str, str],
    stop: threading.Event,
    echo: Callable[[str], None],
) -> SimulationTotals:
    """The ``seismo simulate`` command: check the topics, publish, report totals."""
    producer = ConfirmingProducer(client_config(bootstrap_servers, PRODUCER_DEFAULTS, kafka_config))
    producer.check_broker([t for t in (topic, labels_topic) if t])
    simulation = Simulation(config)
    sink = labels_file.open("ab") if labels_file is not None else None
    try:
        publisher = SimulationPublisher(simulation, producer, topic, labels_topic, sink)
        echo(
            f"simulating {config.devices} devices at {rate:g} events/s to {topic}"
            + (f", labels to {labels_topic}" if labels_topic else "")
        )
        totals = publisher.run(rate, stop, duration_s)
    finally:
        if sink is not None:
            sink.close()
    echo(
        f"published {totals.events} events ({totals.anomalous_events} inside "
        f"{totals.episodes} anomaly episodes)"
    )
    return totals
