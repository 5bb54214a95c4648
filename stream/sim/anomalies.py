"""Labelled anomalies injected into the simulated readings, and their ground truth.

Six kinds, each an **episode** on one device and one channel (a noise burst:
two channels) for a number of ticks:

==================  ===========================================================
``spike``           1-3 ticks far off (+ or - 8 channel noise std... x20 scale)
``level_shift``     the channel reads a constant offset too high or too low
``drift``           an offset that grows linearly over the episode
``stuck``           the channel repeats its last reading while the pump changes load
``noise_burst``     sensor noise 12x on two channels
``correlation_break``  the channel follows a different load than the pump's
==================  ===========================================================

Magnitudes are in units of the channel's spread over normal operation
(``scale``), so every kind is clearly anomalous for the channel's relation to
the others, but not for its range alone: a shifted flow reading is still a
plausible flow, just not at that current. Episodes of one device never overlap
and are at least ``min_gap`` ticks apart.

Pure numpy; :class:`Injector` keeps the episodes and tells which readings they
touched.

Examples
--------
>>> from seismo.stream.sim.plant import Plant
>>> plant = Plant(devices=4, seed=3)
>>> injector = Injector(devices=4, rate=0.05, seed=3)
>>> flagged = 0
>>> for _ in range(2000):
...     x, labels, ended = injector.apply(plant, plant.step())
...     flagged += int(labels.sum())
>>> 0.01 < flagged / (2000 * 4) < 0.12
True
>>> {e.kind for e in injector.finished} <= set(KINDS)
True
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from seismo.stream.sim.plant import CHANNELS, SPREAD, Plant

KINDS = ("spike", "level_shift", "drift", "stuck", "noise_burst", "correlation_break")
"""Every kind of injected anomaly, as named in the labels."""

#: Ticks an episode of each kind lasts: (shortest, longest).
DURATION = {
    "spike": (1, 3),
    "level_shift": (60, 150),
    "drift": (100, 200),
    "stuck": (80, 160),
    "noise_burst": (40, 100),
    "correlation_break": (60, 150),
}

FINISHED_KEPT = 10_000
"""Ended episodes kept in :attr:`Injector.finished` (the newest)."""

#: Offsets and noise, in multiples of the channel's spread
#: (:data:`~seismo.stream.sim.plant.SPREAD`).
SPIKE = 4.0
SHIFT = 1.2
DRIFT = 2.0  # at the end of the episode
BURST = 0.6  # noise std
BREAK_LOAD = 0.35  # the channel reads as at a load this much off the pump's


@dataclass
class Episode:
    """One injected anomaly: where, what, when (ticks ``start`` to ``end`` - 1)."""

    anomaly_id: str
    device: int
    kind: str
    channels: tuple[int, ...]
    start: int
    end: int
    sign: float = 1.0
    held: np.ndarray | None = field(default=None, repr=False)
    start_ts: int | None = None

    def label(
        self, device_ids: list[str], last_tick: int | None = None, end_ts: int | None = None
    ) -> dict[str, Any]:
        """The ground-truth record (a message of the labels topic); ``last_tick``
        overrides the end for an episode still running.

        >>> e = Episode("a-1", 0, "stuck", (2,), 10, 20, start_ts=5)
        >>> e.label(["pump-0"], end_ts=9)
        {'anomaly_id': 'a-1', 'device_id': 'pump-0', 'kind': 'stuck', 'channels': ['current'], 'first_tick': 10, 'last_tick': 19, 'start_ts': 5, 'end_ts': 9}
        """  # noqa: E501
        record: dict[str, Any] = {
            "anomaly_id": self.anomaly_id,
            "device_id": device_ids[self.device],
            "kind": self.kind,
            "channels": [CHANNELS[c] for c in self.channels],
            "first_tick": self.start,
            "last_tick": self.end - 1 if last_tick is None else last_tick,
            "start_ts": self.start_ts,
            "end_ts": end_ts,
        }
        return record


class Injector:
    """Schedules episodes per device and applies them to each tick's readings.

    Parameters
    ----------
    devices : int
        Number of devices (rows of each tick).
    rate : float
        Long-run share of readings inside an episode, e.g. 0.03.
    seed : int
        Seed of the schedule.
    kinds : sequence of str
        Kinds to draw from, uniformly.
    first_tick : int
        No episode starts before this tick (the scorers' warm-up).
    min_gap : int
        Fewest ticks between two episodes of one device.
    """

    def __init__(
        self,
        devices: int,
        *,
        rate: float = 0.03,
        seed: int = 0,
        kinds: tuple[str, ...] = KINDS,
        first_tick: int = 100,
        min_gap: int = 100,
    ) -> None:
        if not 0 < rate < 0.5:
            raise ValueError("rate must be in (0, 0.5)")
        unknown = set(kinds) - set(KINDS)
        if unknown or not kinds:
            raise ValueError(f"unknown anomaly kinds {sorted(unknown)}; known: {', '.join(KINDS)}")
        self.rng = np.random.default_rng(seed + 7919)
        self.kinds = tuple(kinds)
        self.rate = rate
        self.min_gap = min_gap
        mean_length = float(np.mean([sum(DURATION[k]) / 2 for k in self.kinds]))
        self.mean_gap = max(mean_length * (1 - rate) / rate - min_gap, 1.0)
        self.next_start = first_tick + self.rng.exponential(self.mean_gap, devices).astype(int)
        self.active: dict[int, Episode] = {}
        self.finished: deque[Episode] = deque(maxlen=FINISHED_KEPT)
        self._count = 0

    def _begin(self, plant: Plant, device: int, tick: int) -> Episode:
        kind = self.kinds[self.rng.integers(len(self.kinds))]
        low, high = DURATION[kind]
        length = int(self.rng.integers(low, high + 1))
        if kind == "noise_burst":
            channels = tuple(sorted(self.rng.choice(len(CHANNELS), 2, replace=False).tolist()))
        elif kind == "stuck":
            channels = (int(self.rng.choice([1, 2, 3, 4])),)  # load-driven channels
        else:
            channels = (int(self.rng.integers(len(CHANNELS))),)
        self._count += 1
        sign = 1.0 if self.rng.random() < 0.5 else -1.0
        if kind == "correlation_break":  # read as at a load inside the range
            sign = -1.0 if plant.load[device] > 0.6 else 1.0
        if kind == "stuck":
            plant.kick(device)
        return Episode(f"a{self._count}", device, kind, channels, tick, tick + length, sign)

    def apply(
        self, plant: Plant, readings: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, list[Episode]]:
        """Inject into one tick's ``readings`` (devices, 5), taken from ``plant``.

        Returns the readings (a modified copy), a boolean label per device
        (inside an episode), and the episodes that ended with this tick.
        """
        tick = plant.tick - 1  # the tick these readings belong to
        out = readings.copy()
        labels = np.zeros(len(readings), dtype=bool)
        for due in np.flatnonzero(self.next_start <= tick).tolist():
            if due not in self.active:
                self.active[due] = self._begin(plant, due, tick)
        ended = []
        for device, episode in list(self.active.items()):
            self._distort(plant, episode, out, tick)
            labels[device] = True
            if tick >= episode.end - 1:
                ended.append(episode)
                del self.active[device]
                gap = self.min_gap + self.rng.exponential(self.mean_gap)
                self.next_start[device] = episode.end + int(gap)
        self.finished.extend(ended)
        return out, labels, ended

    def _distort(self, plant: Plant, e: Episode, out: np.ndarray, tick: int) -> None:
        row = out[e.device]
        spread = SPREAD[list(e.channels)]
        if e.kind == "spike":
            row[list(e.channels)] += e.sign * SPIKE * spread
        elif e.kind == "level_shift":
            row[list(e.channels)] += e.sign * SHIFT * spread
        elif e.kind == "drift":
            progress = (tick - e.start + 1) / (e.end - e.start)
            row[list(e.channels)] += e.sign * DRIFT * spread * progress
        elif e.kind == "stuck":
            if e.held is None:
                e.held = row[list(e.channels)].copy()
            row[list(e.channels)] = e.held
        elif e.kind == "noise_burst":
            row[list(e.channels)] += plant.rng.normal(0, BURST, len(spread)) * spread
        elif e.kind == "correlation_break":
            other = np.clip(plant.load[[e.device]] + e.sign * BREAK_LOAD, 0.0, 1.2)
            broken = plant.readings(other, np.array([e.device]))[0]
            row[list(e.channels)] = broken[list(e.channels)]
