"""Retrain requests, the retrainer lease and the scorer's model watcher, against a real Redis."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import redis

from seismo.models.artifact import Artifact, build_artifact
from seismo.models.config import DenseConfig, TrainConfig
from seismo.models.training import train_autoencoder
from seismo.stream.registry.model_registry import ModelRegistry
from seismo.stream.registry.model_versions import current_key
from seismo.stream.registry.model_watch import ModelWatcher
from seismo.stream.retrain.requests import Lease, lease_key, request_retrain, take_request
from seismo.stream.scoring.window_buffer import window_mismatch
from tests.pipes import wait_for

pytestmark = pytest.mark.redis

NAME = "pumps"


def _artifact(seed: int, d: int = 4) -> Artifact:
    x = np.random.default_rng(seed).normal(size=(60, d)).astype(np.float32)
    config = DenseConfig(n_features=d, hidden=(4, 2))
    result = train_autoencoder(x, config=config, train=TrainConfig(epochs=1, seed=seed),
                               device="cpu")  # fmt: skip
    return build_artifact(result, name=NAME)


@pytest.fixture(scope="module")
def versions() -> list[Artifact]:
    made = [_artifact(0), _artifact(1), _artifact(2, d=5)]
    assert len({a.version for a in made}) == 3
    return made


@pytest.fixture
def registry(tmp_path: Path, redis_client: redis.Redis, redis_key_prefix: str) -> ModelRegistry:
    return ModelRegistry(tmp_path / "store", redis_client, redis_key_prefix)


def test_several_scorers_asking_within_the_cooldown_make_one_request(
    redis_client, redis_key_prefix
):
    made = [
        request_retrain(redis_client, redis_key_prefix, NAME, reason="drift", by=f"scorer-{i}",
                        cooldown_s=30)  # fmt: skip
        for i in range(5)
    ]
    assert made == [True, False, False, False, False]
    request = take_request(redis_client, redis_key_prefix, NAME)
    assert request is not None and request["reason"] == "drift" and request["by"] == "scorer-0"
    assert take_request(redis_client, redis_key_prefix, NAME) is None, "served once"


def test_a_request_is_made_again_after_the_cooldown(redis_client, redis_key_prefix):
    ask = dict(reason="drift", by="s", cooldown_s=0.2)
    assert request_retrain(redis_client, redis_key_prefix, NAME, **ask)
    assert not request_retrain(redis_client, redis_key_prefix, NAME, **ask)
    time.sleep(0.3)
    assert request_retrain(redis_client, redis_key_prefix, NAME, **ask)


def test_only_one_retrainer_holds_the_lease_until_it_expires_or_is_released(
    redis_client, redis_key_prefix
):
    key = lease_key(redis_key_prefix, NAME)
    first, second = Lease(redis_client, key, "a", 0.5), Lease(redis_client, key, "b", 0.5)
    assert first.acquire() and first.acquire(), "the holder renews"
    assert not second.acquire()
    first.release()
    assert second.acquire() and not first.acquire()
    time.sleep(0.6)  # b stopped renewing
    assert first.acquire()
    second.release()  # not b's any more: nothing happens
    assert redis_client.get(key) == b"a"


def test_watcher_loads_each_new_version_and_refuses_other_channels(registry, versions):
    """A version of another width, or naming the same channels in another order, is
    refused: positional values (a JSON list, float32) would be read as other channels."""
    v1, v2, wide = versions
    named = replace(v2, version=v2.version + "-named", feature_names=["a", "b", "c", "d"])
    reordered = replace(v2, version=v2.version + "-reordered",
                        feature_names=["d", "c", "b", "a"])  # fmt: skip
    registry.publish(v1)
    refused: list[tuple[str, str]] = []
    watcher = ModelWatcher(registry, NAME, serving=v1.version, channels=v1.feature_names,
                           poll_s=30, on_refused=lambda v, r: refused.append((v, r)),
                           fits=lambda a: window_mismatch(a.feature_names, 1))  # fmt: skip
    watcher.start()
    try:
        time.sleep(0.3)  # subscribed
        registry.publish(v2)
        taken: list[Artifact] = []
        assert wait_for(lambda: bool(taken.append(watcher.take()) or taken[-1]), 10), (
            "the pub/sub notification wakes the watcher long before its 30 s poll"
        )
        assert taken[-1].version == v2.version
        rows = np.ones((3, 4))
        np.testing.assert_allclose(
            taken[-1].detector.score_batch(rows), v2.detector.score_batch(rows)
        )
        assert watcher.take() is None, "taken once"
        registry.publish(wide)
        assert wait_for(lambda: [v for v, _ in refused] == [wide.version], 10)
        assert watcher.take() is None, "a model of another width is never offered"
        # v2 names no channels (f0, f1, ...): a named version of its width is taken, its
        # order unknowable; from then on the names count
        registry.publish(named)
        assert wait_for(lambda: bool(taken.append(watcher.take()) or taken[-1]), 10)
        assert taken[-1].version == named.version and watcher.channels == ["a", "b", "c", "d"]
        registry.publish(reordered)
        assert wait_for(lambda: len(refused) == 2, 10)
        assert refused[0][1].startswith("it takes 5 inputs, the version in use 4")
        assert refused[1] == (reordered.version, "it names its channels d, c, b, a where "
                              "the version in use names a, b, c, d; to serve it, restart "
                              "the scorers on it once the producers send values in its order "
                              "(or by name)")  # fmt: skip
        assert watcher.take() is None, "nor one whose channels are in another order"
        # back to the version served (a rollback after the refusal): nothing to swap, not
        # even the same version again (which would restart its statistics)
        registry.promote(NAME, named.version)
        time.sleep(1.0)
        watcher.check_now()
        assert watcher.take() is None and len(refused) == 2
        # a version loaded but not taken is dropped when the pointer moves on to one that is
        # refused: the scorer keeps what it serves, not a version that is no longer current
        later = replace(v2, version=v2.version + "-later", feature_names=["a", "b", "c", "d"])
        registry.publish(later)
        watcher.check_now()  # loaded now (or by the thread already)
        windowed = replace(v2, version=v2.version + "-windowed",
                           feature_names=["a@t-1", "b@t-1", "a@t-0", "b@t-0"])  # fmt: skip
        registry.publish(windowed)  # windows of 2 readings: this scorer runs without --window
        assert wait_for(lambda: len(refused) == 3, 10)
        assert refused[2] == (windowed.version, "it scores windows of 2 readings (trained with "
                              "--window 2): start the scorer with --window 2 (a scorer's "
                              "--window and --window-step are set at start)")  # fmt: skip
        assert watcher.take() is None, "the version loaded before is not current any more"
    finally:
        asked = time.monotonic()
        watcher.stop()
    assert not watcher.status().alive
    assert time.monotonic() - asked < 5, "stopping does not wait out the 30 s poll"


def test_watcher_polls_when_the_notification_is_lost(registry, versions, redis_client,
                                                     redis_key_prefix):  # fmt: skip
    v1, v2, _ = versions
    registry.publish(v2)
    registry.publish(v1)  # v2 is stored; v1 serves
    watcher = ModelWatcher(registry, NAME, serving=v1.version, channels=v1.feature_names,
                           poll_s=0.5)
    watcher.start()
    try:
        time.sleep(0.3)
        assert watcher.take() is None
        # Move the pointer without a notification (as if the message were lost).
        redis_client.set(current_key(redis_key_prefix, NAME), v2.version)
        ready: list[Artifact | None] = []
        assert wait_for(lambda: bool(ready.append(watcher.take()) or ready[-1]), 10)
        assert ready[-1].version == v2.version
    finally:
        watcher.stop()


def test_watcher_outlives_a_pointer_that_is_no_utf8_and_health_shows_it(
    registry, versions, redis_client, redis_key_prefix
):
    """A non-UTF-8 pointer is an error of each check, not the end of the thread."""
    from seismo.stream.io.health import Health

    v1, v2, _ = versions
    registry.publish(v1)
    errors: list[BaseException] = []
    watcher = ModelWatcher(registry, NAME, serving=v1.version, channels=v1.feature_names,
                           poll_s=0.5,
                           on_error=errors.append).start()  # fmt: skip
    health = Health()
    health.kafka((1, 1))
    health.loop_alive(partitions=1)
    health.watch(watcher.status)
    try:
        assert wait_for(lambda: watcher.status().last_ok_at is not None, 10)
        assert health.report()[1]["model_watcher"]["state"] == "ok"
        redis_client.set(current_key(redis_key_prefix, NAME), b"\xff\xfe-not-utf8")
        assert wait_for(lambda: len(errors) >= 2, 10), "the check is retried after a backoff"
        status = watcher.status()
        assert status.alive and status.errors == len(errors) >= 2
        assert all(isinstance(e, UnicodeDecodeError) for e in errors)
        assert status.last_error.startswith("UnicodeDecodeError: ")
        code, body = health.report()
        watched = body["model_watcher"]
        assert (code, body["status"], watched["state"]) == (200, "ok", "retrying"), body
        assert watched["alive"] and watched["errors"] >= 2 and watched["failing_s"] >= 0
        assert watcher.take() is None

        registry.publish(v2)  # a valid pointer again: the new version is still picked up
        ready: list[Artifact | None] = []
        assert wait_for(lambda: bool(ready.append(watcher.take()) or ready[-1]), 15)
        assert ready[-1].version == v2.version
        assert wait_for(lambda: watcher.status().failing_since is None, 5)
        assert health.report()[1]["model_watcher"]["state"] == "ok"
    finally:
        watcher.stop()
    assert not watcher.status().alive
    assert health.report()[1]["model_watcher"]["state"] == "stopped"


def test_an_idle_scorers_health_says_redis_is_unreachable_when_its_watcher_finds_so(
    tmp_path: Path, versions
):
    """An idle scorer reads Redis only through its model watcher: `/health` said
    `"redis": "ok"` (from the last batch) while the watcher logged connection refused (an
    operator helper's finding). Redis stopped under a real watcher: `unreachable` and
    `degraded` until a batch is judged on Redis again."""
    from seismo.stream.io.health import Health
    from seismo.stream.io.redis_stats import connect
    from seismo.stream.local.embedded import EmbeddedRedis

    v1 = versions[0]
    with EmbeddedRedis() as server:
        client = connect(server.url)
        registry = ModelRegistry(tmp_path / "store", client, "idle")
        registry.publish(v1)
        watcher = ModelWatcher(registry, NAME, serving=v1.version, channels=v1.feature_names,
                               poll_s=0.5).start()  # fmt: skip
        health = Health()
        health.kafka((1, 1))
        health.loop_alive(partitions=1)
        health.watch(watcher.status)
        try:
            health.redis(local=False)  # a batch judged on Redis's statistics
            assert wait_for(lambda: watcher.status().last_ok_at is not None, 10)
            assert health.report()[1]["redis"] == "ok"
            server.stop()
            assert wait_for(lambda: watcher.status().redis_down_since is not None, 15)
            health.loop_alive(partitions=1)
            code, body = health.report()
            assert (code, body["status"], body["redis"]) == (200, "degraded", "unreachable")
            health.redis(local=True)  # a batch that could not read Redis
            assert health.report()[1]["redis"] == "local"
        finally:
            watcher.stop()
            client.close()
