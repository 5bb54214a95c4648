"""How the scorer judges a batch's scores: against one shared threshold, or each
device against its own past. The scorer holds one judge and makes the same calls
in every batch, whatever the mode:

- :meth:`Judge.unjudged`: leave out the rows a replay brings back that were
  already judged (a per-device state remembers them; the shared threshold
  keeps nothing per row, so it judges everything);
- :meth:`Judge.judge`: flags and z-scores of the scored rows (step 1);
- :meth:`Judge.save`: write what the batch taught it (inside step 4, with the
  shared statistics' merge);
- :meth:`Judge.forget`: partitions were revoked; state held in memory may be
  stale.

The shared threshold itself (:class:`~seismo.stream.scoring.threshold.Threshold`)
is computed by the scorer in both modes: the device judge reports it, and its
statistics are merged either way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from seismo.models.artifact import Artifact
from seismo.models.calibration import log_scores
from seismo.stream.io.batch_sources import positions_of
from seismo.stream.io.log_throttle import Throttle
from seismo.stream.scoring.alerts import Source
from seismo.stream.scoring.codec import DecodedBatch
from seismo.stream.scoring.devices.batch import judge_grouped
from seismo.stream.scoring.devices.rule import (
    BatchVerdicts,
    DeviceRule,
    DeviceState,
    channels_key,
)
from seismo.stream.scoring.devices.states import DeviceStates
from seismo.stream.scoring.threshold import Threshold
from seismo.stream.scoring.window_buffer import channel_names

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verdicts:
    """Flags and z-scores of a batch's scored rows; a device judge adds its details."""

    flags: np.ndarray
    zscores: np.ndarray
    device: BatchVerdicts | None = None


@dataclass
class StateCounts:
    """What a judge's stored state has been through, for the metrics."""

    held: int = 0
    pending: int = 0
    errors: int = 0
    repairs: int = 0
    evictions: int = 0


class Judge(Protocol):
    """The one interface of both modes."""

    def unjudged(
        self, decoded: DecodedBatch, starts: np.ndarray | None, sources: Sequence[Source]
    ) -> tuple[DecodedBatch, np.ndarray | None]: ...

    def judge(
        self, decoded: DecodedBatch, scores: np.ndarray, sources: Sequence[Source],
        threshold: Threshold, artifact: Artifact, reading_width: int,
    ) -> Verdicts: ...  # fmt: skip

    def save(self) -> None: ...

    def forget(self) -> None: ...

    def counts(self) -> StateCounts | None: ...


class SharedJudge:
    """Every row against the threshold from the shared statistics (``threshold_scope model``)."""

    def unjudged(
        self, decoded: DecodedBatch, starts: np.ndarray | None, sources: Sequence[Source]
    ) -> tuple[DecodedBatch, np.ndarray | None]:
        return decoded, starts

    def judge(
        self, decoded: DecodedBatch, scores: np.ndarray, sources: Sequence[Source],
        threshold: Threshold, artifact: Artifact, reading_width: int,
    ) -> Verdicts:  # fmt: skip
        flags, zscores = threshold.classify(scores)
        return Verdicts(flags, zscores)

    def save(self) -> None:
        return None

    def forget(self) -> None:
        return None

    def counts(self) -> StateCounts | None:
        return None


def last_judged(
    states: Mapping[str, DeviceState | None], device_ids: Sequence[str], partitions: np.ndarray
) -> np.ndarray:
    """Each row's last offset judged by its device's state on the row's partition (-1:
    none), looked up once per device and partition rather than once per row.

    >>> from seismo.stream.scoring.stats import RunningStats
    >>> s = DeviceState("v", RunningStats(), offsets={0: 7, 3: 9})
    >>> last_judged({"a": s, "b": None}, ["a", "b", "a", "a"], np.array([0, 0, 3, 1])).tolist()
    [7, -1, 9, -1]
    """
    index = {device: i for i, device in enumerate(dict.fromkeys(device_ids))}
    found, column = np.unique(partitions, return_inverse=True)
    where = {partition: j for j, partition in enumerate(found.tolist())}
    table = np.full((len(index), len(found)), -1, dtype=np.int64)
    for device, i in index.items():
        state = states.get(device)
        for partition, offset in (state.offsets.items() if state is not None else ()):
            j = where.get(partition)
            if j is not None:
                table[i, j] = offset
    rows = np.fromiter(map(index.__getitem__, device_ids), dtype=np.intp, count=len(device_ids))
    return table[rows, column.reshape(-1)]


class DeviceJudge:
    """Each row against its device's own state (``threshold_scope device``), kept in Redis.

    Parameters
    ----------
    states : DeviceStates
        The device states store (read through, written back by :meth:`save`).
    rule : DeviceRule
        The per-device rule.
    max_batch : int
        The scorer's batch size: a replay reaches back less than one batch.
    on_skipped : callable
        Called with the number of rows left out as already judged.
    """

    def __init__(self, states: DeviceStates, rule: DeviceRule, max_batch: int,
                 on_skipped: Callable[[int], None] | None = None) -> None:  # fmt: skip
        self.states = states
        self.rule = rule
        self.max_batch = max_batch
        self.on_skipped = on_skipped
        self._key: tuple[tuple[str, int], str] | None = None
        #: devices whose reading statistics started again, logged at most once a period
        self._throttle = Throttle()

    def unjudged(
        self, decoded: DecodedBatch, starts: np.ndarray | None, sources: Sequence[Source]
    ) -> tuple[DecodedBatch, np.ndarray | None]:
        """Leave out the rows a device's state has already judged: a batch replayed after
        a crash between the Redis write (step 4) and the commit (step 5), whose output
        was confirmed (step 3) before. Such a replay reaches back less than one batch;
        offsets further back (a recreated topic, offsets reset to reprocess) are judged
        again."""
        states = self.states.load(decoded.device_ids)
        if not any(state is not None and state.offsets for state in states.values()):
            return decoded, starts  # devices never judged before: nothing to leave out
        partitions, offsets = (a[decoded.rows] for a in positions_of(sources))
        last = last_judged(states, decoded.device_ids, partitions)
        again = offsets <= last
        keep = ~again | (last - offsets >= self.max_batch)
        rewound = int((again & keep).sum())
        if rewound:
            log.warning("%d rows lie more than a batch before their device's last judged "
                        "offset (topic recreated or offsets reset?): judged again", rewound)
        if keep.all():
            return decoded, starts
        skipped = int((~keep).sum())
        if self.on_skipped is not None:
            self.on_skipped(skipped)
        log.warning("%d rows already judged by their device's state (a replay after a "
                    "restart): not judged again, no output", skipped)  # fmt: skip
        return decoded.take(keep), None if starts is None else starts[keep]

    def judge(
        self, decoded: DecodedBatch, scores: np.ndarray, sources: Sequence[Source],
        threshold: Threshold, artifact: Artifact, reading_width: int,
    ) -> Verdicts:  # fmt: skip
        """Each row against its device's state; the states are kept for :meth:`save`."""
        states = self.states.load(decoded.device_ids)
        partitions, offsets = (a[decoded.rows] for a in positions_of(sources))
        positions = np.column_stack((partitions, offsets))
        readings = decoded.values[:, -reading_width:]  # the reading ending each window
        channels = self._channels_key(artifact, reading_width)
        relearnt = self._throttle.tally("relearn", sum(
            1 for state in states.values()
            if state is not None and state.learnt_elsewhere(channels, reading_width,
                                                            artifact.version)
        ))  # fmt: skip
        if relearnt is not None:
            log.warning("%d device(s) start their reading statistics again: model %s version %s "
                        "reads other channels, or the same in another order, than those they "
                        "were learnt on", relearnt, artifact.name, artifact.version)  # fmt: skip
        verdicts = judge_grouped(states, decoded.device_ids, log_scores(scores), readings,
                                 positions, artifact.version, artifact.calibration,
                                 self.rule, channels)  # fmt: skip
        for device, state in states.items():
            if state is not None:
                self.states.put(device, state)
        return Verdicts(verdicts.flags, verdicts.window_z, verdicts)

    def _channels_key(self, artifact: Artifact, reading_width: int) -> str:
        """The fingerprint of one reading's channels in the model's order (cached)."""
        if self._key is None or self._key[0] != (artifact.version, reading_width):
            window = len(artifact.feature_names) // reading_width
            names = channel_names(artifact.feature_names, window)
            self._key = ((artifact.version, reading_width), channels_key(names))
        return self._key[1]

    def save(self) -> None:
        self.states.save()

    def forget(self) -> None:
        self.states.forget()

    def counts(self) -> StateCounts | None:
        s = self.states
        return StateCounts(len(s), s.pending, s.errors, s.repairs, s.evictions)
