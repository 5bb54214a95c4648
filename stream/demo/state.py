"""What ``seismo demo`` has seen so far: scores, alerts, rates, per-device series.

Pure Python and numpy, fed with the decoded JSON records of the scores and
alerts topics (:mod:`seismo.stream.demo.command` consumes them); the live view
(:mod:`seismo.stream.demo.view`), the summary and the HTML report read it.

Examples
--------
>>> state = DemoState(series_points=3)
>>> for i in range(5):
...     state.add_score({"event_id": f"p1:{i}", "device_id": "p1", "score": 0.1 * i,
...                      "threshold": 0.25, "model_version": "v1"})
>>> state.scored, state.threshold, state.model_version
(5, 0.25, 'v1')
>>> state.series["p1"].ticks.tolist()  # the newest series_points
[2, 3, 4]
>>> alert = {"alert_id": "t:0:4", "event_id": "p1:4", "device_id": "p1", "zscore": 4.2,
...          "detected_at": 1000, "top_features": [{"name": "flow", "error": 2.0}]}
>>> state.add_alert(alert), state.add_alert(alert)  # a replay is counted once
(True, False)
>>> state.alert_ticks
[('p1', 4, 1000)]
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from seismo.stream.sim.simulation import event_tick


@dataclass
class Series:
    """The newest ``capacity`` scores of one device: tick, score and threshold arrays."""

    capacity: int
    _ticks: deque[int] = field(init=False)
    _scores: deque[float] = field(init=False)
    _thresholds: deque[float] = field(init=False)

    def __post_init__(self) -> None:
        self._ticks = deque(maxlen=self.capacity)
        self._scores = deque(maxlen=self.capacity)
        self._thresholds = deque(maxlen=self.capacity)

    def add(self, tick: int, score: float, threshold: float) -> None:
        """Append one scored reading."""
        self._ticks.append(tick)
        self._scores.append(score)
        self._thresholds.append(threshold)

    @property
    def ticks(self) -> np.ndarray:
        """Ticks, oldest first."""
        return np.fromiter(self._ticks, dtype=np.int64, count=len(self._ticks))

    @property
    def scores(self) -> np.ndarray:
        """Scores, aligned with :attr:`ticks`."""
        return np.fromiter(self._scores, dtype=np.float64, count=len(self._scores))

    @property
    def thresholds(self) -> np.ndarray:
        """Thresholds in force for each score."""
        return np.fromiter(self._thresholds, dtype=np.float64, count=len(self._thresholds))


class Rate:
    """Events per second over a sliding window of ``window_s`` seconds.

    >>> rate = Rate(window_s=10)
    >>> rate.add(0, now=100.0); rate.add(500, now=105.0)
    >>> rate.per_second(now=105.0)
    100.0
    """

    def __init__(self, window_s: float = 5.0) -> None:
        self.window_s = window_s
        self._points: deque[tuple[float, int]] = deque()

    def add(self, total: int, now: float | None = None) -> None:
        """Record the running ``total`` at time ``now`` (monotonic seconds)."""
        now = time.monotonic() if now is None else now
        self._points.append((now, total))
        while len(self._points) > 2 and now - self._points[1][0] > self.window_s:
            self._points.popleft()

    def per_second(self, now: float | None = None) -> float:
        """Rate between the oldest and the newest point of the window."""
        if len(self._points) < 2:
            return 0.0
        (t0, n0), (t1, n1) = self._points[0], self._points[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0


class DemoState:
    """Counters and series built from score and alert records (one thread writes)."""

    def __init__(self, series_points: int = 6000, latest_alerts: int = 8) -> None:
        self.series_points = series_points
        self.scored = 0
        self.threshold: float | None = None
        self.model_version: str | None = None
        self.versions_seen: list[str] = []
        self.series: dict[str, Series] = {}
        self.alert_ids: set[str] = set()
        self.alert_ticks: list[tuple[str, int, int]] = []
        self.latest: deque[dict[str, Any]] = deque(maxlen=latest_alerts)
        self.latencies_ms: deque[float] = deque(maxlen=5000)
        self.rate = Rate()

    def add_score(self, record: Mapping[str, Any]) -> None:
        """One record of the scores topic."""
        self.scored += 1
        self.threshold = float(record["threshold"])
        version = str(record.get("model_version", ""))
        if version != self.model_version:
            self.model_version = version
            if version not in self.versions_seen:
                self.versions_seen.append(version)
        tick = event_tick(record.get("event_id"))
        if tick is None:
            return
        device = str(record["device_id"])
        if device not in self.series:
            self.series[device] = Series(self.series_points)
        self.series[device].add(tick, float(record["score"]), self.threshold)

    def add_alert(self, record: Mapping[str, Any]) -> bool:
        """One record of the alerts topic; ``False`` for a replay already seen."""
        alert_id = str(record["alert_id"])
        if alert_id in self.alert_ids:
            return False
        self.alert_ids.add(alert_id)
        self.latest.appendleft(dict(record))
        tick = event_tick(record.get("event_id"))
        detected = int(record.get("detected_at", 0))
        if tick is not None:
            self.alert_ticks.append((str(record["device_id"]), tick, detected))
        if "ts" in record and detected:
            self.latencies_ms.append(detected - int(record["ts"]))
        return True

    @property
    def alerts(self) -> int:
        """Distinct alerts seen."""
        return len(self.alert_ids)

    def latency_ms(self, q: float) -> float | None:
        """Quantile ``q`` of event-to-alert latency over the newest alerts, in ms."""
        if not self.latencies_ms:
            return None
        return float(np.quantile(np.fromiter(self.latencies_ms, dtype=np.float64), q))
