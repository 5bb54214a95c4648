"""The normal behaviour of simulated pumps: correlated channels, a daily cycle, load changes.

Pure numpy, no Kafka: :mod:`seismo.stream.sim.command` publishes what this computes.
Each device is a pump whose hidden state is its **load** (0.2-1.0) and the
**ambient** temperature. The load follows a target that changes at random
(operators, demand) with a first-order lag, plus a daily demand swing; the
ambient temperature follows the daily cycle. The five channels are functions
of those two plus sensor noise, each device with its own calibration offsets:

=================  =====================================================
temperature (°C)   ambient + 25·load
vibration_rms      0.6 + 1.8·load² (mm/s)
current (A)        6 + 22·load
pressure (bar)     1.5 + 3.2·load² + 0.06·(ambient - 20)
flow (m³/h)        8 + 60·load
=================  =====================================================

One :meth:`Plant.step` is one **tick**: a reading of every device.

Examples
--------
>>> plant = Plant(devices=3, seed=1)
>>> x = plant.step()
>>> x.shape, x.dtype
((3, 5), dtype('float32'))
>>> bool(np.all(np.isfinite(x)))
True
"""

from __future__ import annotations

import math

import numpy as np

CHANNELS = ("temperature", "vibration_rms", "current", "pressure", "flow")
"""Feature names, in the order of every event's ``values``."""

NOISE = np.array([0.25, 0.025, 0.25, 0.03, 0.6])
"""Sensor noise std per channel, in the channel's units."""

SPREAD = np.array([7.0, 0.5, 5.0, 0.9, 13.6])
"""Std of each channel over normal operation (20 pumps, 3000 ticks), its natural unit."""

LOAD_MIN, LOAD_MAX = 0.2, 1.0


def channel_values(load: np.ndarray, ambient: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Noise-free readings (n, 5) for loads and ambient temperatures of shape (n,).

    ``offsets`` (n, 5) are the devices' calibration offsets, added last.

    >>> channel_values(np.array([1.0]), np.array([20.0]), np.zeros((1, 5))).round(2).tolist()
    [[45.0, 2.4, 28.0, 4.7, 68.0]]
    """
    out = np.empty((len(load), len(CHANNELS)))
    out[:, 0] = ambient + 25.0 * load
    out[:, 1] = 0.6 + 1.8 * load**2
    out[:, 2] = 6.0 + 22.0 * load
    out[:, 3] = 1.5 + 3.2 * load**2 + 0.06 * (ambient - 20.0)
    out[:, 4] = 8.0 + 60.0 * load
    return out + offsets


class Plant:
    """``devices`` pumps; each :meth:`step` advances one tick and returns their readings.

    Parameters
    ----------
    devices : int
        Number of pumps.
    day_ticks : int
        Ticks per simulated day (the period of the daily cycle).
    mean_hold_ticks : float
        Mean ticks between two changes of a pump's target load.
    seed : int
        Seed of the generator; equal seeds give equal streams.
    """

    def __init__(
        self,
        devices: int,
        *,
        day_ticks: int = 3000,
        mean_hold_ticks: float = 250.0,
        seed: int = 0,
    ) -> None:
        if devices < 1:
            raise ValueError("devices must be at least 1")
        self.rng = np.random.default_rng(seed)
        self.devices = devices
        self.day_ticks = day_ticks
        self.mean_hold_ticks = mean_hold_ticks
        self.tick = 0
        self.phase = self.rng.uniform(0, 0.15, devices)  # sites a little apart in time
        self.offsets = self.rng.normal(0.0, 1.0, (devices, len(CHANNELS))) * NOISE * 2
        self.target = self.rng.uniform(LOAD_MIN, LOAD_MAX, devices)
        self.load = self.target.copy()
        self.gain = np.ones(len(CHANNELS))

    def ambient(self) -> np.ndarray:
        """Ambient temperature of each site now: 20 °C ± 6 over the day."""
        day = self.tick / self.day_ticks + self.phase
        return 20.0 + 6.0 * np.sin(2 * math.pi * day)

    def kick(self, device: int) -> None:
        """Change a pump's target load now, by at least 0.3 (used by the stuck sensor)."""
        current = self.target[device]
        up = current < (LOAD_MIN + LOAD_MAX) / 2
        low, high = (current + 0.3, LOAD_MAX) if up else (LOAD_MIN, current - 0.3)
        self.target[device] = self.rng.uniform(low, max(low, high))

    def shift_regime(self, gains: dict[str, float]) -> None:
        """A new normal: channels' readings scaled around their idle value (concept drift).

        >>> plant = Plant(devices=1)
        >>> plant.shift_regime({"flow": 1.2})
        >>> plant.gain.tolist()
        [1.0, 1.0, 1.0, 1.0, 1.2]
        """
        for name, gain in gains.items():
            self.gain[CHANNELS.index(name)] = gain

    def step(self) -> np.ndarray:
        """Advance one tick; the readings (devices, 5) as float32, noise included."""
        change = self.rng.random(self.devices) < 1.0 / self.mean_hold_ticks
        self.target[change] = self.rng.uniform(LOAD_MIN, LOAD_MAX, int(change.sum()))
        demand = 0.08 * np.sin(2 * math.pi * (self.tick / self.day_ticks + self.phase - 0.25))
        goal = np.clip(self.target + demand, LOAD_MIN, LOAD_MAX)
        self.load += 0.04 * (goal - self.load) + self.rng.normal(0, 0.004, self.devices)
        self.load = np.clip(self.load, LOAD_MIN, LOAD_MAX)
        values = self.readings(self.load)
        self.tick += 1
        return values

    def readings(self, load: np.ndarray, devices: np.ndarray | None = None) -> np.ndarray:
        """Noisy readings of ``devices`` (default all) at the given loads, this tick."""
        idx = np.arange(self.devices) if devices is None else devices
        clean = channel_values(load, self.ambient()[idx], self.offsets[idx])
        idle = channel_values(np.zeros(len(idx)), self.ambient()[idx], self.offsets[idx])
        clean = idle + (clean - idle) * self.gain
        noisy = clean + self.rng.normal(0.0, 1.0, clean.shape) * NOISE
        return noisy.astype(np.float32)

    def normal_data(self, ticks: int) -> np.ndarray:
        """``ticks`` ticks of every device stacked: (ticks * devices, 5), for training."""
        return np.concatenate([self.step() for _ in range(ticks)])
