"""The retrainer's training window: the last N events of each device group.

Pure: numpy only, no Kafka. Each device group keeps a ring buffer of its
newest ``capacity`` events (values, event time, and where the event came
from), so a chatty device cannot push a quiet one out of the window, and the
memory is bounded by ``capacity * max_groups`` rows whatever the stream does.
When more than ``max_groups`` groups appear, the group holding the fewest
events (of those, the one updated least recently; never the group just
added) is dropped whole: a flood of one-off device prefixes drops its own
groups, not the fleet's (dropping the least recently updated group instead,
1 000 events of 1 000 new prefixes emptied the window of a fleet's 3 000
and the next round had too little to train on: a red-team finding).

Examples
--------
>>> r = Reservoir(n_features=2, capacity=3)
>>> r.add("pump", np.arange(10, dtype=np.float32).reshape(5, 2), np.arange(5), [0] * 5, range(5))
>>> r.add("fan", np.ones((1, 2), dtype=np.float32), [9], [1], [7])
>>> len(r), r.groups
(4, ['pump', 'fan'])
>>> w = r.window()
>>> w.timestamps.tolist(), w.offsets.tolist(), w.values[:, 0].tolist()
([2, 3, 4, 9], [2, 3, 4, 7], [4.0, 6.0, 8.0, 1.0])
>>> r = Reservoir(n_features=1, capacity=5, max_groups=2)
>>> r.add("pump", np.ones((3, 1), dtype=np.float32), [1, 2, 3], [0] * 3, [0, 1, 2])
>>> for i in range(5):  # one-off prefixes drop each other, not the pump group
...     r.add(f"x{i}", np.ones((1, 1), dtype=np.float32), [4 + i], [0], [3 + i])
>>> r.groups, r.dropped
(['pump', 'x4'], 4)
>>> device_group("pump-17"), device_group("pump_17"), device_group("fan3"), device_group("7")
('pump', 'pump', 'fan', '7')
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np

GroupBy = Literal["prefix", "device", "none"]
"""How events are grouped: by device-id prefix, by device id, or all in one group."""

_TRAILING_NUMBER = re.compile(r"[-_.:]?\d+$")


def device_group(device_id: str) -> str:
    """The device's group: its id without a trailing number (``pump-17`` -> ``pump``).

    An id that is only a number is its own group.
    """
    stripped = _TRAILING_NUMBER.sub("", device_id)
    return stripped or device_id


def group_of(device_id: str, group_by: GroupBy) -> str:
    """The reservoir group of an event under a grouping rule.

    >>> group_of("pump-3", "prefix"), group_of("pump-3", "device"), group_of("pump-3", "none")
    ('pump', 'pump-3', '*')
    """
    if group_by == "device":
        return device_id
    if group_by == "none":
        return "*"
    return device_group(device_id)


@dataclass(frozen=True)
class Window:
    """Events of the reservoir, oldest first (by event time, then partition and offset).

    Attributes
    ----------
    values : numpy.ndarray
        ``(n, d)`` float32 feature vectors.
    timestamps : numpy.ndarray
        ``(n,)`` int64 event times, epoch milliseconds.
    partitions, offsets : numpy.ndarray
        ``(n,)`` int64: where each event was read.
    """

    values: np.ndarray
    timestamps: np.ndarray
    partitions: np.ndarray
    offsets: np.ndarray

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def take(self, index: np.ndarray) -> Window:
        """The events at ``index`` (an int array or a boolean mask), in that order."""
        return Window(
            self.values[index], self.timestamps[index], self.partitions[index], self.offsets[index]
        )


class _Ring:
    """A fixed-size ring buffer of events: the newest ``capacity`` ones."""

    def __init__(self, n_features: int, capacity: int) -> None:
        self.values = np.empty((capacity, n_features), dtype=np.float32)
        self.meta = np.empty((capacity, 3), dtype=np.int64)  # ts, partition, offset
        self.size = 0
        self.next = 0

    def add(self, values: np.ndarray, meta: np.ndarray) -> None:
        capacity = len(self.values)
        if len(values) >= capacity:  # only the newest `capacity` rows can survive
            values, meta = values[-capacity:], meta[-capacity:]
        slots = (self.next + np.arange(len(values))) % capacity
        self.values[slots] = values
        self.meta[slots] = meta
        self.next = int((self.next + len(values)) % capacity)
        self.size = min(self.size + len(values), capacity)

    def rows(self) -> tuple[np.ndarray, np.ndarray]:
        return self.values[: self.size], self.meta[: self.size]


class Reservoir:
    """The newest ``capacity`` events of each of at most ``max_groups`` device groups.

    Parameters
    ----------
    n_features : int
        Width ``d`` of every event.
    capacity : int
        Events kept per group (at least 1).
    max_groups : int
        Groups kept; beyond it the smallest other group is dropped (see the module).
    """

    def __init__(self, n_features: int, capacity: int, max_groups: int = 1000) -> None:
        if n_features < 1 or capacity < 1 or max_groups < 1:
            raise ValueError("n_features, capacity and max_groups must be at least 1")
        self.n_features = n_features
        self.capacity = capacity
        self.max_groups = max_groups
        self._rings: OrderedDict[str, _Ring] = OrderedDict()
        #: Groups dropped whole to stay under ``max_groups``.
        self.dropped = 0

    def __len__(self) -> int:
        return sum(ring.size for ring in self._rings.values())

    @property
    def groups(self) -> list[str]:
        """Group names, least recently updated first."""
        return list(self._rings)

    def add(
        self,
        group: str,
        values: np.ndarray,
        timestamps: Iterable[int],
        partitions: Iterable[int],
        offsets: Iterable[int],
    ) -> None:
        """Append events of one group, oldest first; ``values`` is ``(n, d)``."""
        rows = np.asarray(values, dtype=np.float32)
        if rows.ndim != 2 or rows.shape[1] != self.n_features:
            raise ValueError(f"expected rows of {self.n_features} values, got shape {rows.shape}")
        meta = np.column_stack(
            [np.fromiter(column, dtype=np.int64) for column in (timestamps, partitions, offsets)]
        ).reshape(-1, 3)
        if len(meta) != len(rows):
            raise ValueError("values, timestamps, partitions and offsets differ in length")
        if len(rows) == 0:
            return
        ring = self._rings.pop(group, None) or _Ring(self.n_features, self.capacity)
        ring.add(rows, meta)
        self._rings[group] = ring  # most recently updated last
        while len(self._rings) > self.max_groups:
            del self._rings[self._smallest_other(group)]
            self.dropped += 1

    def _smallest_other(self, group: str) -> str:
        """The group to drop: the smallest but ``group``, of those the least recently
        updated. The scan stops at the first group of one event, the least any group
        holds: under a flood of one-off prefixes, one near the front (the oldest)."""
        best, best_size = "", self.capacity + 1
        for name, ring in self._rings.items():  # least recently updated first
            if name != group and ring.size < best_size:
                best, best_size = name, ring.size
                if best_size == 1:
                    break
        return best

    def window(self) -> Window:
        """Every event held, oldest first."""
        if not self._rings:
            empty = np.empty(0, dtype=np.int64)
            return Window(np.empty((0, self.n_features), np.float32), empty, empty, empty)
        values, meta = zip(*(ring.rows() for ring in self._rings.values()), strict=True)
        all_values, all_meta = np.concatenate(values), np.concatenate(meta)
        order = np.lexsort((all_meta[:, 2], all_meta[:, 1], all_meta[:, 0]))
        m = all_meta[order]
        return Window(all_values[order], m[:, 0], m[:, 1], m[:, 2])
