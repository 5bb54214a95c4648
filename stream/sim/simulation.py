"""A simulated fleet: the plant, the injected anomalies, and the events they become.

No Kafka here (:mod:`seismo.stream.sim.command` publishes, :mod:`seismo.stream.demo.command`
watches). Each :meth:`Simulation.tick` is one reading of every device, encoded
as input events of the message contract (``id`` = ``{device_id}:{tick}``),
plus the ground truth of the anomaly episodes that ended with it.

Examples
--------
>>> sim = Simulation(SimulationConfig(devices=2, seed=0))
>>> tick = sim.tick(ts_ms=1_700_000_000_000)
>>> [key for key, _ in tick.events]
[b'pump-0', b'pump-1']
>>> tick.events[0][1]
b'{"device_id":"pump-0","values":[45.8402,2.0287,25.0844,4.2504,62.032],"ts":1700000000000,"id":"pump-0:0"}'
>>> event_tick("pump-00:41"), event_tick("no tick")
(41, None)
"""  # noqa: E501

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from seismo.stream.scoring.codec import encode_event
from seismo.stream.sim.anomalies import KINDS, Injector
from seismo.stream.sim.plant import CHANNELS, Plant

#: The concept-drift scenario's new normal: flow and vibration of every pump rise.
NEW_REGIME = {"flow": 1.25, "vibration_rms": 1.5, "current": 0.85}


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate; see ``seismo simulate --help`` for each field."""

    devices: int = 20
    anomaly_rate: float = 0.03
    kinds: tuple[str, ...] = KINDS
    day_ticks: int = 1500
    seed: int = 0
    first_anomaly_tick: int = 100
    drift_at_tick: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.devices <= 10_000:
            raise ValueError("devices must be between 1 and 10000")
        if self.day_ticks < 10:
            raise ValueError("day_ticks must be at least 10")


@dataclass
class Tick:
    """One tick's messages: ``(key, value)`` events and label records of ended episodes."""

    index: int
    events: list[tuple[bytes, bytes]]
    labels: list[dict[str, Any]]
    anomalous: np.ndarray = field(repr=False)


def device_ids(devices: int) -> list[str]:
    """``pump-00``, ``pump-01``, ... wide enough to sort.

    >>> device_ids(3), device_ids(120)[-1]
    (['pump-0', 'pump-1', 'pump-2'], 'pump-119')
    """
    width = len(str(devices - 1))
    return [f"pump-{i:0{width}d}" for i in range(devices)]


def event_tick(event_id: str | None) -> int | None:
    """The tick of a simulated event from its id ``{device_id}:{tick}``, else ``None``."""
    if not event_id or ":" not in event_id:
        return None
    tail = event_id.rsplit(":", 1)[1]
    return int(tail) if tail.isdigit() else None


class Simulation:
    """The fleet of :class:`SimulationConfig`, tick by tick (deterministic per seed)."""

    def __init__(self, config: SimulationConfig) -> None:
        self.config = config
        self.plant = Plant(config.devices, day_ticks=config.day_ticks, seed=config.seed)
        self.devices = device_ids(config.devices)
        self.injector = Injector(
            config.devices,
            rate=config.anomaly_rate,
            seed=config.seed,
            kinds=config.kinds,
            first_tick=config.first_anomaly_tick,
        )
        self._last_ts: int | None = None
        self.regime_changed_at: int | None = None

    def warmup_data(self, days: float = 1.0) -> np.ndarray:
        """Normal readings (n, 5) of a separate plant with the same devices, for training."""
        twin = Plant(self.config.devices, day_ticks=self.config.day_ticks, seed=self.config.seed)
        twin.rng = np.random.default_rng(self.config.seed + 104_729)  # new noise, same pumps
        return twin.normal_data(int(days * self.config.day_ticks))

    def tick(self, ts_ms: int) -> Tick:
        """The next tick's events, stamped ``ts_ms``, and the labels of ended episodes."""
        index = self.plant.tick
        if self.config.drift_at_tick is not None and index == self.config.drift_at_tick:
            self.plant.shift_regime(NEW_REGIME)
            self.regime_changed_at = index
        readings, anomalous, ended = self.injector.apply(self.plant, self.plant.step())
        for episode in [*self.injector.active.values(), *ended]:
            if episode.start_ts is None:
                episode.start_ts = ts_ms
        self._last_ts = ts_ms
        rows = readings.astype(float).round(4).tolist()
        events = [
            (device.encode(), encode_event(device, row, ts=ts_ms, event_id=f"{device}:{index}"))
            for device, row in zip(self.devices, rows, strict=True)
        ]
        labels = [e.label(self.devices, end_ts=ts_ms) for e in ended]
        return Tick(index, events, labels, anomalous)

    def open_labels(self) -> list[dict[str, Any]]:
        """Labels of episodes still running (at the end of a run), ``last_tick`` so far."""
        last = self.plant.tick - 1
        return [
            e.label(self.devices, last_tick=last, end_ts=self._last_ts)
            for e in self.injector.active.values()
        ]


__all__ = ["CHANNELS", "NEW_REGIME", "Simulation", "SimulationConfig", "Tick", "device_ids"]
