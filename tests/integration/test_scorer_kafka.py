"""The scorer in-process against a real Kafka broker and a real Redis.

Each test opens a :class:`~seismo.stream.scoring.scorer.Scorer` with
:func:`seismo.stream.scoring.service.open_scorer` on its own topics, consumer group and Redis
prefix, then checks what reached the output topics, the metrics, the committed
offsets and the shared statistics. The batching tests drive ``run()`` in a
thread; the others call ``process()`` on batches of a known make-up.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter

import numpy as np
import orjson
import pytest
import redis

from seismo.stream.io.kafka import ConfirmingProducer, client_config
from seismo.stream.io.metrics import ScorerMetrics
from seismo.stream.io.redis_stats import stats_key
from seismo.stream.scoring.alerts import H_ERROR, H_OFFSET, H_PARTITION, H_TOPIC
from seismo.stream.scoring.codec import encode_event
from seismo.stream.scoring.f32_codec import encode_f32, f32_headers
from seismo.stream.scoring.scorer import Scorer
from seismo.stream.scoring.service import open_scorer
from seismo.stream.scoring.threshold import widened_band
from tests.integration.scorer_streams import (
    F32,
    FEATURES,
    Headers,
    Outgoing,
    Streams,
    anomalous_rows,
    consume,
    events,
    normal_rows,
    running,
)
from tests.kafka_tools import committed

pytestmark = [pytest.mark.kafka, pytest.mark.redis]


def shared_stats(client: redis.Redis, scorer: Scorer) -> dict[str, float]:
    s, a = scorer.settings, scorer.artifact
    key = stats_key(s.redis_prefix, a.name, a.version, s.threshold_space)
    return {k.decode(): float(v) for k, v in client.hgetall(key).items()}


@pytest.mark.parametrize("prefetch", [False, True])
def test_run_bounds_batches_by_max_batch_and_scores_every_event_once(
    streams: Streams, prefetch: bool
) -> None:
    streams.create(partitions=2)
    positions = streams.produce(events(normal_rows(250, seed=2), "e"))
    assert {p for p, _ in positions} == {0, 1}
    settings = streams.settings(max_batch=64, prefetch=prefetch)
    with open_scorer(settings, ScorerMetrics()) as scorer:
        with running(scorer) as batches:
            streams.read(streams.scores, 250)  # wait until every event is scored
        scores = [r.json() for r in streams.read(streams.scores, 250)]  # none twice
        n_alerts = sum(s["is_anomaly"] for s in scores)
        streams.read(streams.alerts, n_alerts)
        sample = scorer.metrics.registry.get_sample_value

        assert all(b.consumed <= 64 for b in batches) and len(batches) >= math.ceil(250 / 64)
        assert sum(b.consumed for b in batches) == 250
        sources = sorted((s["source"]["partition"], s["source"]["offset"]) for s in scores)
        assert sources == sorted(positions)
        assert sample("seismo_events_consumed_total") == 250
        assert sample("seismo_events_scored_total") == 250
        assert sample("seismo_events_dead_lettered_total") == 0
        assert sample("seismo_alerts_total") == n_alerts
        assert sample("seismo_batch_size_count") == len(batches)
        assert sample("seismo_batch_size_sum") == 250
    ends = {p: max(o for q, o in positions if q == p) + 1 for p in (0, 1)}
    assert committed(streams.bootstrap, streams.group_id, streams.topic) == ends


def test_unconfirmed_output_holds_the_scorer_on_its_batch_until_the_broker_confirms(
    streams: Streams,
) -> None:
    """Backpressure: while nothing can be written, nothing more is consumed or committed.

    A backlog of 20 000 more events arrives during the hold; the scorer takes
    none of it until its batch is confirmed, then scores all of it.
    """
    streams.create()
    streams.produce(events(normal_rows(300, seed=6), "e"))
    nowhere = client_config("127.0.0.1:1", {"message.timeout.ms": 500}, {})
    settings = streams.settings(max_batch=50, flush_timeout_s=1.0)
    with open_scorer(settings, ScorerMetrics()) as scorer:
        working = scorer.new_producer
        assert working is not None
        scorer.producer = ConfirmingProducer(nowhere)  # outputs unwritable from the start
        scorer.new_producer = lambda: ConfirmingProducer(nowhere)
        sample = scorer.metrics.registry.get_sample_value
        with running(scorer) as batches:
            backlog = events(normal_rows(20_000, seed=7), "b")
            streams.produce(backlog)
            deadline = time.monotonic() + 60
            while (sample("seismo_delivery_failures_total") or 0) < 3:
                assert time.monotonic() < deadline, "the first batch was never attempted"
                time.sleep(0.1)
            # Three attempts at the first batch, nothing else consumed: it is still in flight.
            assert batches == [] and (sample("seismo_events_consumed_total") or 0) == 0
            assert committed(streams.bootstrap, streams.group_id, streams.topic) == {0: -1001}
            scorer.new_producer = working  # the broker can be written again
            streams.read(streams.scores, 300 + len(backlog))
        assert sum(b.consumed for b in batches) == 300 + len(backlog)
    assert committed(streams.bootstrap, streams.group_id, streams.topic) == {0: 20_300}


def test_run_closes_a_partial_batch_after_linger(streams: Streams) -> None:
    streams.create()
    streams.produce(events(normal_rows(10, seed=3), "e"))
    settings = streams.settings(max_batch=1000, linger_ms=100)
    with open_scorer(settings, ScorerMetrics()) as scorer, running(scorer) as batches:
        streams.read(streams.scores, 10)
    assert [b.consumed for b in batches] == [10]
    assert committed(streams.bootstrap, streams.group_id, streams.topic) == {0: 10}


def test_dead_letters_keep_key_value_and_headers_and_the_rest_is_scored(
    streams: Streams,
) -> None:
    streams.create()
    valid = events(normal_rows(3, seed=4), "ok")
    bad: list[Outgoing] = [
        (b"k-json", b"not json", [("trace-id", b"t-1"), ("origin", b"plant-a")]),
        (b"k-count", encode_event("d", [1.0, 2.0]), [("trace-id", b"t-2"), ("empty", None)]),
        (None, b'{"values": [1, 2, 3, 4]}', []),
        (b"k-big", b'{"pad": "' + b"x" * 300 + b'"}', [("trace-id", b"t-4")]),
        (b"k-tomb", None, [("trace-id", b"t-5")]),
    ]
    outgoing = [valid[0], bad[0], bad[1], valid[1], bad[2], bad[3], valid[2], bad[4]]
    positions = streams.produce(outgoing)
    with open_scorer(streams.settings(max_message_bytes=256), ScorerMetrics()) as scorer:
        result = scorer.process(consume(scorer, len(outgoing)))

    assert (result.consumed, result.scored, result.dead_lettered) == (8, 3, 5)
    scores = [r.json() for r in streams.read(streams.scores, 3)]
    assert [s["event_id"] for s in scores] == ["ok-0", "ok-1", "ok-2"]
    letters = streams.read(streams.dlq, 5)
    reasons = [
        "invalid JSON", "expected 4 values", "missing field 'device_id'", "exceeds", "tombstone"
    ]
    for (key, value, headers), (partition, offset), letter, reason in zip(
        bad, [positions[i] for i in (1, 2, 4, 5, 7)], letters, reasons, strict=True
    ):
        assert (letter.key, letter.value) == (key, value)
        assert list(letter.headers.items())[: len(headers)] == headers
        assert list(letter.headers)[len(headers) :] == [H_ERROR, H_TOPIC, H_PARTITION, H_OFFSET]
        assert reason in letter.headers[H_ERROR].decode()
        assert letter.headers[H_TOPIC] == streams.topic.encode()
        assert letter.headers[H_PARTITION] == str(partition).encode()
        assert letter.headers[H_OFFSET] == str(offset).encode()


def test_binary_f32_events_mixed_with_json_are_scored_alike_and_bad_ones_dead_lettered(
    streams: Streams,
) -> None:
    streams.create()
    rows = normal_rows(6, seed=5)
    json_events = events(rows, "j")
    binary: list[Outgoing] = [
        (f"dev-{i % 10}".encode(), encode_f32(row), list(f32_headers(f"b-{i}")))
        for i, row in enumerate(rows)
    ]
    bad: list[Outgoing] = [
        (b"k-short", encode_f32(rows[0][:3]), list(F32)),
        (None, encode_f32(rows[0]), list(F32)),
        (b"k-csv", b"1,2,3,4", [("content-type", b"text/csv")]),
    ]
    outgoing = [x for pair in zip(json_events, binary, strict=True) for x in pair] + bad
    streams.produce(outgoing)
    with open_scorer(streams.settings(), ScorerMetrics()) as scorer:
        result = scorer.process(consume(scorer, len(outgoing)))

    assert (result.consumed, result.scored, result.dead_lettered) == (15, 12, 3)
    scores = [r.json() for r in streams.read(streams.scores, 12)]
    assert [s["event_id"] for s in scores] == [x for i in range(6) for x in (f"j-{i}", f"b-{i}")]
    by_id = {s["event_id"]: s for s in scores}
    for i in range(6):
        # The same row as JSON (rounded by orjson to float64) and as float32: the same score.
        assert by_id[f"b-{i}"]["score"] == pytest.approx(by_id[f"j-{i}"]["score"], rel=1e-5)
        assert by_id[f"b-{i}"]["device_id"] == f"dev-{i % 10}"
    reasons = [letter.headers[H_ERROR].decode() for letter in streams.read(streams.dlq, 3)]
    assert reasons == [
        "application/x-seismo-f32 value of 12 bytes; expected 16 (4 float32)",
        "application/x-seismo-f32 event without a message key (the device id)",
        "unsupported content-type 'text/csv'",
    ]


def test_warm_up_uses_calibration_then_redis_and_alerts_carry_their_context(
    streams: Streams,
) -> None:
    streams.create()
    first = events(normal_rows(30, seed=5), "a") + events(anomalous_rows(1, seed=6), "x1")
    second = events(normal_rows(60, seed=7), "b")
    third = events(anomalous_rows(1, seed=8), "x2")
    positions = streams.produce(first + second + third)
    with open_scorer(streams.settings(min_samples=50, k=3.0), ScorerMetrics()) as scorer:
        for batch in (first, second, third):
            scorer.process(consume(scorer, len(batch)))
        artifact = scorer.artifact

    cal = artifact.calibration
    calibrated = math.exp(cal.log_mean + 3.0 * cal.log_std)
    scores = [r.json() for r in streams.read(streams.scores, 92)]
    assert all(s["threshold"] == pytest.approx(calibrated, rel=1e-12) for s in scores[:91])
    alerts = {a["event_id"]: a for a in (r.json() for r in streams.read(streams.alerts, 2))}
    warm, settled = alerts["x1-0"], alerts["x2-0"]
    assert (warm["threshold_source"], warm["mean"], warm["std"]) == (
        "calibration", cal.log_mean, cal.log_std
    )
    assert settled["threshold_source"] == "redis"
    assert settled["threshold"] == scores[91]["threshold"] != pytest.approx(calibrated)
    for alert, (partition, offset) in ((warm, positions[30]), (settled, positions[-1])):
        assert alert["alert_id"] == f"{streams.topic}:{partition}:{offset}"
        assert alert["model_version"] == artifact.version
        assert alert["zscore"] > alert["k"] == 3.0
        assert [set(f) for f in alert["top_features"]] == [{"index", "name", "error"}] * 3
        assert all(FEATURES[f["index"]] == f["name"] for f in alert["top_features"])


@pytest.mark.parametrize("learn_anomalies", [False, True])
def test_learn_anomalies_decides_whether_flagged_scores_reach_redis(
    streams: Streams, redis_client: redis.Redis, learn_anomalies: bool
) -> None:
    streams.create()
    outgoing = events(normal_rows(40, seed=9), "n") + events(anomalous_rows(5, seed=10), "x")
    streams.produce(outgoing)
    settings = streams.settings(learn_anomalies=learn_anomalies)
    with open_scorer(settings, ScorerMetrics()) as scorer:
        result = scorer.process(consume(scorer, len(outgoing)))
        stats = shared_stats(redis_client, scorer)
        # 45 < min_samples: the threshold in force is the calibration's
        in_force = scorer.rule.calibrated(scorer.artifact.calibration)

    scores = [r.json() for r in streams.read(streams.scores, 45)]
    assert {s["event_id"] for s in scores if s["is_anomaly"]} >= {f"x-{i}" for i in range(5)}
    assert result.alerts == sum(s["is_anomaly"] for s in scores)
    kept = [s["score"] for s in scores if learn_anomalies or not s["is_anomaly"]]
    assert stats["count"] == len(kept) == (45 if learn_anomalies else 45 - result.alerts)
    # each learnt clipped to the band of the threshold in force, widened by the batch's
    # own robust band (docs/thresholds.md)
    band = widened_band(in_force.band, np.log(kept), in_force.k)
    assert stats["mean"] == pytest.approx(np.clip(np.log(kept), *band).mean(), rel=1e-9)
    if learn_anomalies:
        assert stats["mean"] < np.log(kept).mean()  # the anomalies entered at the band's edge


def fuzz_corpus(n: int, seed: int) -> list[tuple[bytes | None, bytes | None, Headers]]:
    """``n`` messages the contract refuses, each tagged with a ``fuzz-id`` header."""
    rng = np.random.default_rng(seed)
    good = normal_rows(1, seed)[0].tolist()

    def obj(**fields: object) -> bytes:
        return orjson.dumps({"device_id": "d", "values": good, **fields})

    def make(kind: int) -> tuple[bytes | None, bytes | None, Headers]:
        if kind == 0:  # arbitrary bytes (never a JSON object by chance: no leading '{')
            return b"k", b"\x00" + rng.bytes(int(rng.integers(0, 300))), []
        if kind == 1:  # deeply nested
            depth = int(rng.integers(200, 5000))
            return b"k", b'{"device_id": "d", "values": ' + b"[" * depth + b"]" * depth + b"}", []
        if kind == 2:  # a huge array, over max_message_bytes
            return b"k", obj(values=[0.5] * int(rng.integers(300, 3000))), []
        if kind == 3:  # wrong length
            return b"k", obj(values=good[: int(rng.integers(0, len(good)))]), []
        if kind == 4:  # wrong types
            field, value = [("values", "1,2,3,4"), ("values", {"a": 1}), ("values", [True] * 4),
                            ("values", [None] * 4), ("device_id", 7), ("device_id", ["d"]),
                            ("ts", True), ("ts", 10**18), ("id", [1])][int(rng.integers(0, 9))]
            return b"k", obj(**{field: value}), []  # fmt: skip
        if kind == 5:  # NaN / Inf in every spelling JSON does not allow, and beyond float32
            bad = [b"NaN", b"Infinity", b"-Infinity", b"1e309", b"3.5e38"][int(rng.integers(0, 5))]
            return b"k", b'{"device_id": "d", "values": [1, 2, 3, ' + bad + b"]}", []
        if kind == 6:  # missing keys
            return b"k", orjson.dumps({"values": good} if rng.random() < 0.5
                                      else {"device_id": "d"}), []  # fmt: skip
        if kind == 7:  # other text encodings of a valid event
            return b"k", obj().decode().encode(["utf-16", "utf-32"][int(rng.integers(0, 2))]), []
        if kind == 8:  # binary-tagged junk
            return (None if rng.random() < 0.3 else b"k"), rng.bytes(int(rng.integers(0, 40))),\
                list(F32)  # fmt: skip
        return b"k", b"x", [("content-type", b"application/x-protobuf")]

    out = []
    for i in range(n):
        key, value, headers = make(i % 10)
        if key is not None and len(value or b"") == 16 and headers == list(F32):
            value = value[:15]  # 16 random bytes could be 4 finite float32: not junk
        out.append((key, value, [*headers, ("fuzz-id", str(i).encode())]))
    return out


def test_fuzzed_messages_all_reach_the_dead_letter_topic_and_the_good_ones_are_scored(
    streams: Streams,
) -> None:
    streams.create(partitions=2)
    bad = fuzz_corpus(500, seed=8)
    good = events(normal_rows(500, seed=9), "ok")
    mixed = [m for pair in zip(good, bad, strict=True) for m in pair]
    streams.produce(mixed)
    with open_scorer(streams.settings(max_batch=128, max_message_bytes=4096),
                     ScorerMetrics()) as scorer, running(scorer):  # fmt: skip
        scores = streams.read(streams.scores, 500)
        letters = streams.read(streams.dlq, 500)
    assert sorted(r.json()["event_id"] for r in scores) == sorted(f"ok-{i}" for i in range(500))
    fuzz_ids = sorted(int(letter.headers["fuzz-id"]) for letter in letters)
    assert fuzz_ids == list(range(500)), "every fuzzed message dead-lettered once"
    reasons = Counter(re.sub(r"\d+", "N", letter.headers[H_ERROR].decode().split(":")[0])
                      for letter in letters)  # fmt: skip
    print(f"\n500 fuzzed messages among 500 good ones; dead-letter reasons: {dict(reasons)}")
    assert all(letter.headers[H_ERROR] for letter in letters)


@pytest.mark.slow  # two group joins and a rebalance on Tansu
def test_a_scorer_that_owns_no_partition_says_so(
    streams: Streams, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A stranger's finding: a scorer in a group whose only partition another member
    owns (or whose group the broker left stuck) waited in silence, health 'ok', for good.
    Now it logs a WARNING after UNOWNED_WARN_S without a partition (here 1 s), and
    /health gives how long (``no_partitions_s``); a member that owns the partition does
    neither."""
    import seismo.stream.io.health as health_module

    monkeypatch.setattr(health_module, "UNOWNED_WARN_S", 1.0)
    monkeypatch.setattr(health_module, "UNOWNED_SESSIONS", 0.0)  # unit-tested in health.py
    streams.create(partitions=1)
    streams.produce(events(normal_rows(5, seed=11), "u"))
    caplog.set_level("WARNING", logger="seismo.stream.scoring.scorer")
    first, second = ScorerMetrics(), ScorerMetrics()
    with open_scorer(streams.settings(), first) as a, running(a) as batches:
        deadline = time.monotonic() + 30
        while not batches and time.monotonic() < deadline:
            time.sleep(0.1)
        assert batches, "the first scorer never got its partition"
        caplog.clear()  # its own join may have taken longer than UNOWNED_WARN_S
        with open_scorer(streams.settings(), second) as b, running(b):
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                pairs = sorted([(first.health.report()[1], a), (second.health.report()[1], b)],
                               key=lambda pair: pair[0]["partitions"])  # fmt: skip
                (idle, idle_scorer), (owner, owner_scorer) = pairs
                settled = (idle["partitions"], owner["partitions"]) == (0, 1)
                if settled and idle_scorer.idle_notice.told:
                    break
                time.sleep(0.2)
            told = (idle_scorer.idle_notice.told, owner_scorer.idle_notice.told)
    assert (idle["partitions"], owner["partitions"]) == (0, 1), (idle, owner)
    assert idle["no_partitions_s"] >= 1.0 and idle["status"] == "ok"
    assert owner["no_partitions_s"] is None
    assert told == (True, False)  # the idle one said so; the owner has nothing to say
    warned = [r for r in caplog.records if "no partition of" in r.getMessage()]
    assert warned and warned[0].levelname == "WARNING", warned
    assert f"(group {streams.group_id})" in warned[0].getMessage()
