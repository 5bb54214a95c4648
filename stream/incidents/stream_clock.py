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
  incidents resolve as before; it never runs ahead of the wall clock (an
  alert stamped in the future counts as read now);
- after a restart or a rebalance, a partition whose incidents come back from
  the table's changelog and whose alerts were not read yet starts at the
  newest of their last alerts (:meth:`StreamClock.resume`), so they get a
  quiet period from then, not a wall clock that a backlog is behind.

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

A partition restored with incidents whose last alerts are an hour old, then its
first alerts read: a newer one moves the clock; an older one (stamped long ago by
whoever wrote it) does not take it back, where the restored incidents would wait
for the partition's next alert to resolve:

>>> wall = iter([7_200_000, 7_230_000, 7_230_000, 7_230_005] + [7_240_000] * 3)
>>> clock = StreamClock(lambda: next(wall))
>>> clock.resume(3, 3_600_000); clock.now(3)
3630000
>>> clock.saw(3, 3_700_000); clock.now(3)
3700005
>>> clock.resume(4, 3_600_000); clock.saw(4, 1); clock.now(4)
3600000
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
        #: partition -> (stream time, wall time it was read at, from resume() only)
        self._marks: dict[int, tuple[int, int, bool]] = {}

    def saw(self, partition: int, detected_at: int) -> None:
        """An alert of ``partition`` detected at ``detected_at`` was read now."""
        wall = self._wall()
        at = min(detected_at, wall)
        mark = self._marks.get(partition)
        if mark is None or at >= mark[0]:
            self._marks[partition] = (at, wall, False)
        elif mark[2]:  # older than the restored incidents: read, but it cannot hold them back
            self._marks[partition] = (mark[0], mark[1], False)

    def wall(self) -> int:
        """The wall clock it runs on (epoch ms)."""
        return self._wall()

    def resume(self, partition: int | None, last_alert_at: int) -> None:
        """A restored incident of ``partition`` whose last alert came at ``last_alert_at``:
        until an alert of the partition is read, its clock starts at the newest of these,
        from the first call on."""
        if partition is None:
            return
        mark = self._marks.get(partition)
        if mark is None:
            wall = self._wall()
            self._marks[partition] = (min(last_alert_at, wall), wall, True)
        elif mark[2] and last_alert_at > mark[0]:
            self._marks[partition] = (min(last_alert_at, mark[1]), mark[1], True)

    def forget(self, partition: int) -> None:
        """``partition`` was revoked: if it comes back, its clock starts again (from its
        restored incidents, :meth:`resume`, or its first alert read).

        >>> clock = StreamClock(lambda: 1000)
        >>> clock.saw(0, 400); clock.forget(0); clock.resume(0, 200); clock.now(0)
        200
        """
        self._marks.pop(partition, None)

    def now(self, partition: int | None) -> int:
        """The stream time of ``partition`` (the wall clock for one never read)."""
        wall = self._wall()
        mark = None if partition is None else self._marks.get(partition)
        if mark is None:
            return wall
        latest, read_at, _ = mark
        return min(wall, latest + (wall - read_at))
