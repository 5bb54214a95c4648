"""Alert, score and dead-letter records: the published contract."""

from __future__ import annotations

import numpy as np

from seismo.stream.scoring.alerts import (
    ScoredBatch,
    Source,
    alert_records,
    dead_letter_headers,
    score_records,
    top_features,
)
from seismo.stream.scoring.codec import decode_batch, encode_event
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
