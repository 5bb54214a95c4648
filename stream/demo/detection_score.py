"""How well alerts match injected anomalies: episode recall, alert precision, time to detect.

Pure Python over label records (as the simulator writes them) and alerts
reduced to ``(device_id, tick, detected_at_ms)``; used by ``seismo demo``.

- An **episode is detected** when at least one alert of its device falls on
  one of its ticks. ``recall`` = detected episodes / episodes.
- An **alert is true** when it falls on an episode's ticks or within
  ``grace`` ticks after (a reading just after a fault often still looks odd).
  ``precision`` = true alerts / alerts (replays deduplicated by the caller).
- ``f1`` combines the two. Point-wise figures count events instead:
  ``point_recall`` = anomalous events alerted / anomalous events.
- ``mean_time_to_detect_s``: first alert's ``detected_at`` minus the
  episode's first event time, over detected episodes (so it includes the
  pipeline's event-to-alert latency); ``mean_ticks_to_detect`` in readings.

Examples
--------
>>> labels = [{"device_id": "p1", "kind": "spike", "first_tick": 10, "last_tick": 12,
...            "start_ts": 1000},
...           {"device_id": "p2", "kind": "drift", "first_tick": 50, "last_tick": 90,
...            "start_ts": 5000}]
>>> alerts = [("p1", 11, 1600), ("p1", 14, 1700), ("p1", 300, 9000)]
>>> s = score_detections(labels, alerts, events=1000, grace=5)
>>> s.detected, s.episodes, s.true_alerts, s.alerts
(1, 2, 2, 3)
>>> round(s.recall, 3), round(s.precision, 3), round(s.f1, 3)
(0.5, 0.667, 0.571)
>>> s.mean_time_to_detect_s, s.mean_ticks_to_detect, s.by_kind
(0.6, 1.0, {'drift': (0, 1), 'spike': (1, 1)})
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

Alert = tuple[str, int, int]
"""``(device_id, tick, detected_at_ms)`` of one alert."""


@dataclass(frozen=True)
class DetectionScore:
    """The figures of :func:`score_detections` (see the module docstring)."""

    events: int
    alerts: int
    episodes: int
    detected: int
    true_alerts: int
    anomalous_events: int
    alerted_anomalous_events: int
    mean_time_to_detect_s: float | None
    mean_ticks_to_detect: float | None
    by_kind: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def recall(self) -> float:
        """Detected episodes / episodes (0 with no episodes)."""
        return self.detected / self.episodes if self.episodes else 0.0

    @property
    def precision(self) -> float:
        """True alerts / alerts (1 with no alerts: nothing was claimed)."""
        return self.true_alerts / self.alerts if self.alerts else 1.0

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall."""
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def point_recall(self) -> float:
        """Anomalous events alerted / anomalous events."""
        if not self.anomalous_events:
            return 0.0
        return self.alerted_anomalous_events / self.anomalous_events

    @property
    def false_alert_rate(self) -> float:
        """False alerts / normal events."""
        normal = self.events - self.anomalous_events
        return (self.alerts - self.true_alerts) / normal if normal > 0 else 0.0

    def to_json_dict(self) -> dict[str, Any]:
        """Every field and derived figure, JSON-able (``by_kind`` as detected/total)."""
        out = asdict(self)
        out["by_kind"] = {k: {"detected": d, "episodes": n} for k, (d, n) in self.by_kind.items()}
        for name in ("recall", "precision", "f1", "point_recall", "false_alert_rate"):
            out[name] = getattr(self, name)
        return out


class _Episodes:
    """One device's episodes, sorted, for bisecting alert ticks."""

    def __init__(self, records: list[Mapping[str, Any]]) -> None:
        self.records = sorted(records, key=lambda r: int(r["first_tick"]))
        self.starts = [int(r["first_tick"]) for r in self.records]

    def find(self, tick: int, grace: int) -> tuple[int, bool] | None:
        """Index of the episode at ``tick`` (or ``grace`` ticks after it) and whether inside."""
        i = bisect.bisect_right(self.starts, tick) - 1
        if i < 0:
            return None
        last = int(self.records[i]["last_tick"])
        if tick <= last:
            return i, True
        return (i, False) if tick <= last + grace else None


def score_detections(
    labels: Sequence[Mapping[str, Any]],
    alerts: Iterable[Alert],
    *,
    events: int,
    grace: int = 20,
) -> DetectionScore:
    """Match ``alerts`` against the episodes in ``labels``; ``events`` = events scored."""
    by_device: dict[str, list[Mapping[str, Any]]] = {}
    for record in labels:
        by_device.setdefault(str(record["device_id"]), []).append(record)
    index = {device: _Episodes(records) for device, records in by_device.items()}
    first: dict[tuple[str, int], Alert] = {}
    n_alerts = true_alerts = alerted_inside = 0
    for alert in alerts:
        device, tick, _ = alert
        n_alerts += 1
        found = index[device].find(tick, grace) if device in index else None
        if found is None:
            continue
        true_alerts += 1
        i, inside = found
        if inside:
            alerted_inside += 1
            key = (device, i)
            if key not in first or tick < first[key][1]:
                first[key] = alert
    return _summarise(index, first, events, n_alerts, true_alerts, alerted_inside)


def _summarise(
    index: Mapping[str, _Episodes],
    first: Mapping[tuple[str, int], Alert],
    events: int,
    n_alerts: int,
    true_alerts: int,
    alerted_inside: int,
) -> DetectionScore:
    by_kind: dict[str, list[int]] = {}
    seconds: list[float] = []
    ticks: list[int] = []
    anomalous = 0
    for device, episodes in index.items():
        for i, record in enumerate(episodes.records):
            anomalous += int(record["last_tick"]) - int(record["first_tick"]) + 1
            counts = by_kind.setdefault(str(record.get("kind", "?")), [0, 0])
            counts[1] += 1
            hit = first.get((device, i))
            if hit is None:
                continue
            counts[0] += 1
            ticks.append(hit[1] - int(record["first_tick"]))
            if record.get("start_ts") is not None:
                seconds.append((hit[2] - int(record["start_ts"])) / 1000)
    return DetectionScore(
        events=events,
        alerts=n_alerts,
        episodes=sum(n for _, n in by_kind.values()),
        detected=sum(d for d, _ in by_kind.values()),
        true_alerts=true_alerts,
        anomalous_events=anomalous,
        alerted_anomalous_events=alerted_inside,
        mean_time_to_detect_s=sum(seconds) / len(seconds) if seconds else None,
        mean_ticks_to_detect=sum(ticks) / len(ticks) if ticks else None,
        by_kind={k: (d, n) for k, (d, n) in sorted(by_kind.items())},
    )
