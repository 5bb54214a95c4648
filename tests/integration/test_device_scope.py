"""``threshold_scope = "device"``: the scorer in-process against a real Kafka broker and
a real Redis, judging each device against its own state, kept in Redis.

The verdicts of scorers that take over from each other equal one pass of the
pure rule over every row (:func:`seismo.stream.scoring.devices.rule.judge_batch`), a replayed
batch is not judged twice, and the level check catches a reading that the
model reconstructs well but that is far off the device's own range.
"""

from __future__ import annotations

import numpy as np
import pytest
import redis

from seismo.models.artifact import load_artifact
from seismo.models.calibration import log_scores
from seismo.stream.io.metrics import ScorerMetrics
from seismo.stream.scoring.devices.rule import DeviceRule, DeviceState, judge_batch
from seismo.stream.scoring.devices.states import device_key
from seismo.stream.scoring.service import open_scorer
from tests.integration.scorer_streams import Streams, consume, events, normal_rows

pytestmark = [pytest.mark.kafka, pytest.mark.redis]

DEVICE = dict(threshold_scope="device", smooth=3, level_warmup=20, k=3.0)


def test_scorers_taking_over_continue_each_device_state_and_match_the_pure_rule(
    streams: Streams, redis_client: redis.Redis
) -> None:
    streams.create()
    rows = normal_rows(400, seed=21)
    rows[300] = rows[300] * 4  # on the model's subspace: reconstructed well, far off in level
    rows[350] = rows[350] + 40.0  # off the subspace: a bad reconstruction
    outgoing = events(rows, "r")  # ten devices, dev-0 .. dev-9, row i from dev-(i % 10)
    streams.produce(outgoing)
    settings = streams.settings(**DEVICE)
    for take in (150, 250):  # one scorer, then another of the group after it left
        with open_scorer(settings, ScorerMetrics()) as scorer:
            scorer.process(consume(scorer, take))
            sample = scorer.metrics.registry.get_sample_value
            assert sample("seismo_device_states") == 10  # every device, held in memory
            assert sample("seismo_device_states_pending") == 0  # and written to Redis

    scores = [r.json() for r in streams.read(streams.scores, 400)]
    alerts = [r.json() for r in streams.read(streams.alerts, sum(s["is_anomaly"] for s in scores))]

    # the same rows through the pure rule in one pass
    artifact = load_artifact(streams.model, device="cpu")
    rule = DeviceRule(k=3.0, smooth=3, level_warmup=20)
    states: dict[str, DeviceState | None] = {}
    expected = judge_batch(states, [f"dev-{i % 10}" for i in range(400)],
                           log_scores(artifact.detector.score_batch(rows.astype(np.float32))),
                           rows, [(0, i) for i in range(400)], artifact.version,
                           artifact.calibration, rule)  # fmt: skip
    assert [s["is_anomaly"] for s in scores] == expected.flags.tolist()
    assert [s["zscore"] for s in scores] == pytest.approx(expected.window_z.tolist(), rel=1e-5)
    assert [s["level_z"] for s in scores] == pytest.approx(expected.level_z.tolist(), rel=1e-5)
    by_id = {a["event_id"]: a for a in alerts}
    assert by_id["r-300"]["checks"] == ["level"], by_id.get("r-300")
    assert "window" in by_id["r-350"]["checks"]
    for alert in alerts:
        assert alert["threshold_source"] == "device" and alert["threshold_space"] == "log"
        assert alert["threshold"] == pytest.approx(np.exp(alert["mean"] + 3.0 * alert["std"]))
    # the window check stays up while the bad window is among the last `smooth` of dev-0
    assert [by_id[f"r-{i}"]["checks"][0] for i in (360, 370)] == ["window", "window"]

    # each device's state is in Redis, where the second scorer left it
    raw = redis_client.get(device_key(streams.redis_prefix, artifact.name, streams.topic,
                                      streams.group_id, "dev-0"))
    assert raw is not None
    saved, alone = DeviceState.from_bytes(raw), states["dev-0"]
    assert alone is not None and saved.offsets == alone.offsets == {0: 390}
    assert saved.version == alone.version and saved.recent == pytest.approx(alone.recent, rel=1e-5)
    assert saved.window.count == alone.window.count
    assert saved.window.mean == pytest.approx(alone.window.mean, rel=1e-6)
    assert [s.mean for s in saved.level] == pytest.approx([s.mean for s in alone.level])


def test_a_replayed_batch_is_not_judged_twice(streams: Streams) -> None:
    streams.create()
    outgoing = events(normal_rows(60, seed=22), "p")
    streams.produce(outgoing)
    with open_scorer(streams.settings(**DEVICE), ScorerMetrics()) as scorer:
        first = scorer.process(consume(scorer, 60))
    # the same messages again (the group's offsets back at 0, as after a crash between
    # the Redis write and the commit): every row is already in its device's state
    streams.rewind()
    metrics = ScorerMetrics()
    with open_scorer(streams.settings(**DEVICE), metrics) as scorer:
        again = scorer.process(consume(scorer, 60))
    assert (first.consumed, first.scored) == (60, 60)
    assert (again.consumed, again.scored, again.alerts) == (60, 0, 0)
    assert metrics.registry.get_sample_value("seismo_rows_skipped_total") == 60
    streams.read(streams.scores, 60)  # nothing more was published
    # offsets further back than one batch (here 5 messages) are no crash replay: a
    # recreated topic or offsets reset to reprocess; each device's last row (within
    # 5 of its last judged offset) is skipped, its five earlier ones judged again
    streams.rewind()
    with open_scorer(streams.settings(**DEVICE, max_batch=5), ScorerMetrics()) as scorer:
        judged = scorer.process(consume(scorer, 60))
    assert (judged.consumed, judged.scored) == (60, 50)


def test_pipelines_on_other_topics_or_groups_keep_their_own_device_states(
    streams: Streams, tmp_path
) -> None:
    # The same model and Redis prefix over a second topic, and a second group on the first
    # topic: before, the second pipeline found its offsets "already judged" in the
    # first one's states and committed every event with no score and no alert.
    from dataclasses import replace

    streams.create()
    streams.produce(events(normal_rows(60, seed=23), "a"))
    with open_scorer(streams.settings(**DEVICE), ScorerMetrics()) as scorer:
        assert scorer.process(consume(scorer, 60)).scored == 60
    other = replace(streams, topic=streams.topic + "-b")
    other.create()
    other.produce(events(normal_rows(60, seed=24), "b"))
    with open_scorer(other.settings(**DEVICE), ScorerMetrics()) as scorer:
        assert scorer.process(consume(scorer, 60)).scored == 60
    assert len(other.read(other.scores, 60)) == 60
    second_group = streams.settings(**DEVICE, group_id=streams.group_id + "-audit")
    with open_scorer(second_group, ScorerMetrics()) as scorer:
        assert scorer.process(consume(scorer, 60)).scored == 60


def test_device_states_are_read_through_written_back_and_survive_a_dead_redis(
    redis_url: str, redis_client: redis.Redis, redis_key_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    from seismo.stream.local.embedded import free_port
    from seismo.stream.scoring.devices.states import DeviceStates
    from seismo.stream.scoring.stats import RunningStats

    prefix = redis_key_prefix.rstrip(":")
    store = DeviceStates(redis.Redis.from_url(redis_url), prefix, "m", "t", "g", ttl_s=3600)
    assert store.load(["a", "b"]) == {"a": None, "b": None}
    state = DeviceState("v1", RunningStats(3.0, 1.0, 2.0), [0.5], [RunningStats(3.0, 7.0, 1.0)],
                        {0: 12})  # fmt: skip
    store.put("a", state)
    assert store.pending == 1 and store.save() and store.pending == 0
    assert 0 < redis_client.ttl(device_key(prefix, "m", "t", "g", "a")) <= 3600
    fresh = DeviceStates(redis.Redis.from_url(redis_url), prefix, "m", "t", "g")
    assert fresh.load(["a"]) == {"a": state}

    # Redis gone: an unknown device reads as new, a write stays pending, nothing raises
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    gone = redis.Redis(port=free_port(), socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    dead = DeviceStates(gone, prefix, "m", "t", "g")
    assert dead.load(["a"]) == {"a": None} and dead.errors == 1
    dead.put("a", state)
    assert not dead.save() and dead.pending == 1 and dead.errors == 2
    # every batch fails the same way while Redis is away: counted each time, logged once
    # a period (Throttle), not once per batch
    for _ in range(5):
        dead.load(["b"])
        assert not dead.save()
    assert dead.errors == 12
    failures = [r.getMessage() for r in caplog.records if "device states failed" in r.getMessage()]
    assert [m.split(" of ")[0] for m in failures] == ["Redis read", "Redis write"], failures
    # a revocation drops even what was never written: the new owner writes now
    dead.forget()
    assert dead.pending == 0 and len(dead) == 0
