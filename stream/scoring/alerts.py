"""Build the JSON records the scorer publishes: alerts, scores, dead letters.

Pure functions from the arrays of one scored batch to plain dicts (and header
lists); the scorer serialises and produces them. Field names are a public
contract, documented in the README.

Examples
--------
>>> import numpy as np
>>> errors = np.array([[0.1, 5.0, 0.2, 3.0]], dtype=np.float32)
>>> top_features(errors[0], ["a", "b", "c", "d"])
[{'index': 1, 'name': 'b', 'error': 5.0}, {'index': 3, 'name': 'd', 'error': 3.0}, \
{'index': 2, 'name': 'c', 'error': 0.2}]
>>> alert_id(Source("sensor-events", 2, 41))
'sensor-events:2:41'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from seismo.stream.scoring.codec import DecodedBatch
from seismo.stream.scoring.devices.rule import BatchVerdicts
from seismo.stream.scoring.threshold import Threshold

#: Header names on dead-letter messages (public contract).
H_ERROR = "seismo-error"
H_TOPIC = "seismo-source-topic"
H_PARTITION = "seismo-source-partition"
H_OFFSET = "seismo-source-offset"


class Source(NamedTuple):
    """Where a consumed message came from."""

    topic: str
    partition: int
    offset: int

    def as_dict(self) -> dict[str, Any]:
        return {"topic": self.topic, "partition": self.partition, "offset": self.offset}


def alert_id(src: Source) -> str:
    """Deterministic alert id, so a replay produces the same id."""
    return f"{src.topic}:{src.partition}:{src.offset}"


def _short(x: np.floating) -> float:
    """A float32 error as the shortest float that reads back the same (tidy JSON)."""
    return float(f"{float(x):.7g}")


def top_features(
    errors: np.ndarray, names: Sequence[str], n: int = 3
) -> list[dict[str, Any]]:
    """The ``n`` features with the largest reconstruction error, largest first.

    Parameters
    ----------
    errors : numpy.ndarray
        ``(d,)`` per-feature errors of one event.
    names : sequence of str
        ``d`` feature names.
    """
    return _top_rows(errors[None, :], names, n)[0]


@dataclass(frozen=True)
class ScoredBatch:
    """Everything known about the valid events of a batch after scoring.

    ``scores``, ``flags``, ``zscores`` are ``(m,)``; ``feature_errors`` is
    ``(m, d)``; ``sources`` holds one :class:`Source` per consumed message
    (indexed by ``decoded.rows``).
    """

    decoded: DecodedBatch
    sources: Sequence[Source]
    scores: np.ndarray
    feature_errors: np.ndarray
    flags: np.ndarray
    zscores: np.ndarray
    threshold: Threshold
    model_version: str
    feature_names: Sequence[str]
    #: With windowed scoring: each row's window start (epoch ms); size, stride, step; channels.
    window_starts: np.ndarray | None = None
    window: tuple[int, int, int] = (1, 1, 1)
    channel_names: Sequence[str] = ()
    #: With ``threshold_scope = "device"``: each row's verdict (then ``threshold`` is unused).
    device: BatchVerdicts | None = None
    #: The scorer's clock where it stood in for events without a time (``None``: nowhere).
    stand_in_ms: int | None = None


def _common(batch: ScoredBatch, i: int) -> dict[str, Any]:
    d = batch.decoded
    record = {
        "event_id": d.event_ids[i],
        "device_id": d.device_ids[i],
        "ts": int(d.timestamps[i]),
        "score": float(batch.scores[i]),
        "threshold": batch.threshold.value if batch.device is None else batch.device.threshold(i),
        "model_version": batch.model_version,
        "source": batch.sources[int(d.rows[i])].as_dict(),
    }
    return _mark_stand_in(record, batch)


def _mark_stand_in(record: dict[str, Any], batch: ScoredBatch) -> dict[str, Any]:
    """``record`` with ``"ts_source": "clock"`` when its ``ts`` is the scorer's clock,
    standing in for an event without a time (a replay would carry another)."""
    if record["ts"] == batch.stand_in_ms:
        record["ts_source"] = "clock"
    return record


def alert_records(batch: ScoredBatch, detected_at_ms: int) -> list[dict[str, Any]]:
    """One alert dict per flagged event, in batch order.

    The flagged rows' numbers are read out of the arrays in one go (``tolist``)
    and their top features ranked together (:func:`_top_rows`): the same
    records as one :func:`top_features` and one lookup per alert, with less
    Python per alert.
    """
    flagged = np.flatnonzero(batch.flags)
    if not len(flagged):
        return []
    d, t, v = batch.decoded, batch.threshold, batch.device
    errors = batch.feature_errors[flagged]
    tops = _top_rows(errors, batch.feature_names)
    size, stride, step = batch.window
    channel_tops = (None if batch.window_starts is None else  # per channel, summed over a window
                    _top_rows(errors.reshape(len(errors), size, -1).sum(axis=1),
                              batch.channel_names))  # fmt: skip
    columns: dict[str, list[Any]] = {
        "score": batch.scores[flagged].astype(np.float64).tolist(),
        "ts": d.timestamps[flagged].astype(np.int64).tolist(),
        "row": d.rows[flagged].tolist(),
    }
    if v is None:
        columns["zscore"] = np.asarray(batch.zscores[flagged], dtype=np.float64).tolist()
    else:
        columns |= {name: np.asarray(getattr(v, name)[flagged], dtype=np.float64).tolist()
                    for name in ("mean", "std", "window_z", "level_z")}  # fmt: skip
        columns["smoothed_score"] = np.exp(v.smoothed[flagged]).tolist()
        columns["threshold"] = np.exp(v.mean[flagged] + v.k * v.std[flagged]).tolist()
        columns["window_flag"] = v.window_flags[flagged].tolist()
        columns["level_flag"] = v.level_flags[flagged].tolist()
    out = []
    for j, i in enumerate(flagged.tolist()):
        src = batch.sources[columns["row"][j]]
        record: dict[str, Any] = {
            "event_id": d.event_ids[i], "device_id": d.device_ids[i], "ts": columns["ts"][j],
            "score": columns["score"][j],
            "threshold": t.value if v is None else columns["threshold"][j],
            "model_version": batch.model_version, "source": src.as_dict(),
            "alert_id": alert_id(src), "detected_at": detected_at_ms,
        }  # fmt: skip
        if v is None:
            record |= {"mean": t.mean, "std": t.std, "k": t.k, "zscore": columns["zscore"][j],
                       "threshold_source": t.source, "threshold_space": t.space}  # fmt: skip
        else:
            record |= {"mean": columns["mean"][j], "std": columns["std"][j], "k": v.k,
                       "zscore": columns["window_z"][j], "threshold_source": "device",
                       "threshold_space": "log", "smoothed_score": columns["smoothed_score"][j],
                       "level_z": columns["level_z"][j],
                       "checks": [name for name, on in (("window", columns["window_flag"][j]),
                                                        ("level", columns["level_flag"][j]))
                                  if on]}  # fmt: skip
        _mark_stand_in(record, batch)
        record["top_features"] = tops[j]
        if channel_tops is not None and batch.window_starts is not None:
            record["window"] = {"start_ts": int(batch.window_starts[i]), "end_ts": record["ts"],
                                "size": size, "stride": stride, "step": step}  # fmt: skip
            record["top_channels"] = channel_tops[j]
        out.append(record)
    return out


def _top_rows(errors: np.ndarray, names: Sequence[str], n: int = 3) -> list[list[dict[str, Any]]]:
    """:func:`top_features` of each row of ``errors`` (``(k, d)``), ranked in one call:
    the ``n`` largest by ``argpartition``, then in order, ties as they were found.

    >>> e = np.array([[0.1, 5.0, 0.2, 3.0], [2.0, 2.0, 1.0, 0.0]], dtype=np.float32)
    >>> [[f["name"] for f in row] for row in _top_rows(e, "abcd", 2)]
    [['b', 'd'], ['a', 'b']]
    """
    n = min(n, errors.shape[1])
    if not n:
        return [[] for _ in range(len(errors))]
    idx = np.argpartition(-errors, n - 1, axis=1)[:, :n]
    chosen = np.take_along_axis(errors, idx, axis=1)
    order = np.argsort(-chosen, axis=1, kind="stable")
    idx, chosen = np.take_along_axis(idx, order, axis=1), np.take_along_axis(chosen, order, axis=1)
    return [[{"index": i, "name": names[i], "error": _short(x)} for i, x in zip(r, e, strict=True)]
            for r, e in zip(idx.tolist(), chosen.tolist(), strict=True)]  # fmt: skip


def score_records(batch: ScoredBatch) -> list[dict[str, Any]]:
    """One score dict per valid event (for the optional scores topic)."""
    out = []
    for i in range(len(batch.decoded)):
        record = _common(batch, i)
        record["is_anomaly"] = bool(batch.flags[i])
        if batch.device is not None:
            record.update(zscore=float(batch.device.window_z[i]),
                          level_z=float(batch.device.level_z[i]), checks=batch.device.checks(i))
        out.append(record)
    return out


def dead_letter_headers(reason: str, src: Source) -> list[tuple[str, bytes]]:
    """Headers of a dead-letter message (public contract).

    >>> dead_letter_headers("invalid JSON", Source("t", 0, 7))[0]
    ('seismo-error', b'invalid JSON')
    """
    return [
        (H_ERROR, reason.encode()),
        (H_TOPIC, src.topic.encode()),
        (H_PARTITION, str(src.partition).encode()),
        (H_OFFSET, str(src.offset).encode()),
    ]
