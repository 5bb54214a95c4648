"""Alert, score and dead-letter records: the published contract."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from seismo.stream.scoring.alerts import (
    ScoredBatch,
    Source,
    alert_id,
    alert_records,
    dead_letter_headers,
    score_records,
    top_features,
)
from seismo.stream.scoring.codec import DecodedBatch, decode_batch, encode_event
from seismo.stream.scoring.devices.rule import BatchVerdicts
from seismo.stream.scoring.threshold import Threshold

ALERT_FIELDS = {
    "threshold_source",
    "threshold_space",
    "alert_id",
    "event_id",
    "device_id",
    "ts",
    "detected_at",
    "score",
    "threshold",
    "mean",
    "std",
    "zscore",
    "model_version",
    "source",
    "top_features",
}
SCORE_FIELDS = {
    "event_id",
    "device_id",
    "ts",
    "score",
    "threshold",
    "is_anomaly",
    "model_version",
    "source",
}


def scored_batch() -> ScoredBatch:
    raw = [
        encode_event("d0", [0, 0, 0], ts=10, event_id="e0"),
        b"garbage",
        encode_event("d1", [9, 0, 0], ts=20),
    ]
    decoded = decode_batch(raw, kafka_timestamps=[1, 2, 3], n_features=3)
    sources = [Source("events", 1, 100 + i) for i in range(3)]
    t = Threshold(value=2.0, mean=1.0, std=0.25, k=4.0, source="redis")
    scores = np.array([0.5, 30.0], dtype=np.float32)
    flags, z = t.classify(scores)
    errors = np.array([[0.1, 0.2, 0.3], [80.0, 1.0, 9.0]], dtype=np.float32)
    return ScoredBatch(decoded, sources, scores, errors, flags, z, t, "v1", ["temp", "vib", "amp"])


def test_one_alert_per_flagged_event_with_every_contract_field():
    (alert,) = alert_records(scored_batch(), detected_at_ms=99)
    assert ALERT_FIELDS <= alert.keys()
    assert alert["alert_id"] == "events:1:102"
    assert alert["source"] == {"topic": "events", "partition": 1, "offset": 102}
    assert alert["device_id"] == "d1" and alert["event_id"] is None and alert["ts"] == 20
    assert alert["score"] == 30.0 and alert["threshold"] == 2.0
    assert (alert["mean"], alert["std"], alert["zscore"]) == (1.0, 0.25, 116.0)
    assert alert["model_version"] == "v1" and alert["detected_at"] == 99
    assert [f["name"] for f in alert["top_features"]] == ["temp", "amp", "vib"]


def test_alert_ids_are_deterministic_across_replays():
    first = alert_records(scored_batch(), detected_at_ms=1)
    again = alert_records(scored_batch(), detected_at_ms=2)
    assert [a["alert_id"] for a in first] == [a["alert_id"] for a in again]


def test_one_score_record_per_valid_event():
    records = score_records(scored_batch())
    assert [r["event_id"] for r in records] == ["e0", None]
    assert all(SCORE_FIELDS <= r.keys() for r in records)
    assert [r["is_anomaly"] for r in records] == [False, True]
    assert [r["source"]["offset"] for r in records] == [100, 102]


def test_top_features_orders_by_error_and_handles_few_features():
    errors = np.array([3.0, 1.0], dtype=np.float32)
    assert [f["index"] for f in top_features(errors, ["a", "b"])] == [0, 1]
    errors = np.array([0.0, 7.0, 2.0, 7.5, 1.0], dtype=np.float32)
    assert [f["index"] for f in top_features(errors, list("abcde"))] == [3, 1, 2]


def test_dead_letter_headers_name_reason_and_source():
    headers = dict(dead_letter_headers("expected 3 values, got 2", Source("t", 3, 9)))
    assert headers == {
        "seismo-error": b"expected 3 values, got 2",
        "seismo-source-topic": b"t",
        "seismo-source-partition": b"3",
        "seismo-source-offset": b"9",
    }


def _reference_alert(batch: ScoredBatch, i: int, detected_at: int) -> dict:
    """One alert built row by row, as the scorer did before the records were built from
    the flagged rows' columns at once (the fields and their order are the contract)."""
    d, t, v = batch.decoded, batch.threshold, batch.device
    src = batch.sources[int(d.rows[i])]
    record = {"event_id": d.event_ids[i], "device_id": d.device_ids[i], "ts": int(d.timestamps[i]),
              "score": float(batch.scores[i]),
              "threshold": t.value if v is None else v.threshold(i),
              "model_version": batch.model_version, "source": src.as_dict(),
              "alert_id": alert_id(src), "detected_at": detected_at}  # fmt: skip
    if v is None:
        record |= {"mean": t.mean, "std": t.std, "k": t.k, "zscore": float(batch.zscores[i]),
                   "threshold_source": t.source, "threshold_space": t.space}  # fmt: skip
    else:
        record |= {"mean": float(v.mean[i]), "std": float(v.std[i]), "k": v.k,
                   "zscore": float(v.window_z[i]), "threshold_source": "device",
                   "threshold_space": "log", "smoothed_score": float(np.exp(v.smoothed[i])),
                   "level_z": float(v.level_z[i]), "checks": v.checks(i)}  # fmt: skip
    record["top_features"] = top_features(batch.feature_errors[i], batch.feature_names)
    if batch.window_starts is not None:
        size, stride, step = batch.window
        record["window"] = {"start_ts": int(batch.window_starts[i]), "end_ts": record["ts"],
                            "size": size, "stride": stride, "step": step}  # fmt: skip
        per_channel = batch.feature_errors[i].reshape(size, -1).sum(axis=0)
        record["top_channels"] = top_features(per_channel, batch.channel_names)
    return record


@pytest.mark.parametrize("scope", ["model", "device", "device-windows"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_alerts_built_from_columns_are_the_row_by_row_records(scope, seed):
    rng = np.random.default_rng(seed)
    m, size, channels = 300, (3 if scope == "device-windows" else 1), 4
    d = size * channels
    decoded = DecodedBatch(values=rng.normal(size=(m, d)), rows=np.arange(m) + 5,
                           device_ids=[f"dev-{i % 7}" for i in range(m)],
                           event_ids=[None if i % 3 else f"e{i}" for i in range(m)],
                           timestamps=rng.integers(0, 2**45, m), rejected=[])  # fmt: skip
    flags = rng.random(m) < 0.2
    errors = rng.random((m, d)).astype(np.float32)
    errors[:, 1] = errors[:, 2]  # ties among the top features
    verdicts = None
    if scope != "model":
        window_flags = flags & (rng.random(m) < 0.7)
        verdicts = BatchVerdicts(flags, window_flags, flags & ~window_flags | (rng.random(m) < 0.1),
                                 *rng.normal(size=(5, m)), 2.5)  # fmt: skip
    batch = ScoredBatch(
        decoded=decoded, sources=[Source("t", 1, 1000 + i) for i in range(m + 5)],
        scores=rng.random(m).astype(np.float32), feature_errors=errors, flags=flags,
        zscores=rng.normal(size=m), threshold=Threshold(2.0, 1.0, 0.25, 4.0, "redis"),
        model_version="v3", feature_names=[f"f{i}" for i in range(d)],
        window_starts=rng.integers(0, 2**40, m) if size > 1 else None, window=(size, 1, 1),
        channel_names=[f"c{i}" for i in range(channels)], device=verdicts,
    )  # fmt: skip
    got = alert_records(batch, 77)
    want = [_reference_alert(batch, i, 77) for i in np.flatnonzero(flags)]
    assert [orjson.dumps(r) for r in got] == [orjson.dumps(r) for r in want]
    assert len(got) == int(flags.sum()) > 0
