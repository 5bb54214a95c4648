"""The time ``seismo incidents`` measures quiet periods on: the alerts' own, per partition.

An incident resolves once its device has sent no alert for the quiet period.
Measured on the wall clock alone, an app that reads a backlog (started late,
or after an outage) resolved every incident at its next tick, since the
alerts it was reading were older than the quiet period, and the device's
next alerts in the backlog opened new incidents (an operator helper's
finding). The stream clock of a partition is the newest ``detected_at`` read
from it, advancing with the wall clock from the moment that alert was read:

- reading a backlog, it stays with the alerts (each one read moves it);
- caught up, the alerts' times are the wall clock's, and so is it;
- when a partition falls silent, it goes on with the wall clock, so the last
  incidents resolve as before; it never runs ahead of the wall clock.

Pure: the wall clock is a parameter.

>>> wall = iter([1_000_000, 1_000_010, 1_000_020, 1_003_000, 1_100_000])
>>> clock = StreamClock(lambda: next(wall))
>>> clock.saw(0, 40_000)   # a backlog: an alert detected long ago, read now
>>> clock.now(0)           # 10 ms later on the wall
40010
>>> clock.now(1)           # a partition never read: the wall clock
1000020
>>> clock.now(0), clock.now(0)
(43000, 140000)
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["StreamClock", "wall_ms"]


def wall_ms() -> int:
    """The wall clock, epoch milliseconds."""
    return int(time.time() * 1000)


class StreamClock:
    """Per partition: the newest alert time read, and the wall time it was read at."""

    def __init__(self, wall: Callable[[], int] = wall_ms) -> None:
        self._wall = wall
        self._marks: dict[int, tuple[int, int]] = {}

    def saw(self, partition: int, detected_at: int) -> None:
        """An alert of ``partition`` detected at ``detected_at`` was read now."""
        mark = self._marks.get(partition)
        if mark is None or detected_at >= mark[0]:
            self._marks[partition] = (detected_at, self._wall())

    def now(self, partition: int | None) -> int:
        """The stream time of ``partition`` (the wall clock for one never read)."""
        wall = self._wall()
        mark = None if partition is None else self._marks.get(partition)
        if mark is None:
            return wall
        latest, read_at = mark
        return min(wall, latest + (wall - read_at))
