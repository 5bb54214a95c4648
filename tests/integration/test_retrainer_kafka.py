"""The retraining sidecar's window, fed from a real broker, with the model in a real Redis.

Binary events (``application/x-seismo-f32``, the device id in the key) enter
the window as JSON events do; an event that cannot be decoded is left out and
counted, and so is one whose values would overflow the model's float32 math
or that nests deep enough to exhaust a decoder's recursion.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import orjson
import pytest
from confluent_kafka import Producer

from seismo.models.artifact import build_artifact
from seismo.models.config import DenseConfig, TrainConfig
from seismo.models.training import train_autoencoder
from seismo.stream.config.loader import load_retrain_settings
from seismo.stream.registry.model_registry import ModelRegistry
from seismo.stream.retrain.command import open_retrainer
from seismo.stream.scoring.f32_codec import encode_f32, f32_headers
from tests.kafka_tools import create_topics, produce_raw_header_name
from tests.pipes import wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.redis]

NAME = "pumps"


def publish_champion(rng: np.random.Generator, tmp_path: Path, client, prefix: str) -> None:  # noqa: ANN001
    """A 4-feature champion of ``NAME``, trained one epoch, current in the store."""
    result = train_autoencoder(rng.normal(size=(60, 4)).astype(np.float32),
                               config=DenseConfig(n_features=4, hidden=(4, 2)),
                               train=TrainConfig(epochs=1, seed=0), device="cpu")  # fmt: skip
    ModelRegistry(tmp_path / "store", client, prefix).publish(build_artifact(result, name=NAME))


def retrain_settings(tmp_path: Path, bootstrap: str, topic: str, redis_url: str, prefix: str):  # noqa: ANN201
    """The sidecar's settings for that store, topic and Redis."""
    return load_retrain_settings({
        "model_store": str(tmp_path / "store"), "model_name": NAME,
        "bootstrap_servers": bootstrap, "input_topic": topic,
        "redis_url": redis_url, "redis_prefix": prefix, "metrics_port": 0,
        "kafka_config": {"session.timeout.ms": "6000"}}, env={})  # fmt: skip


def fill_once(settings):  # noqa: ANN001, ANN201
    """One retrainer on ``settings`` reads the topic: (events added, its window, rejected)."""
    with open_retrainer(settings) as retrainer:
        added = retrainer.fill(max_s=30, idle_s=2)
        return added, retrainer.reservoir.window(), retrainer.rejected


def test_binary_f32_events_enter_the_retrainers_window(
    kafka_bootstrap, topic_name, redis_url, redis_client, redis_key_prefix, tmp_path: Path
):
    rng = np.random.default_rng(3)
    publish_champion(rng, tmp_path, redis_client, redis_key_prefix)
    create_topics(kafka_bootstrap, {topic_name: 1})
    binary = rng.normal(size=(20, 4)).astype(np.float32)
    as_json = rng.normal(size=(5, 4)).astype(np.float32).round(3)
    start = int(time.time() * 1000) - 60_000
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for i, row in enumerate(binary):
        producer.produce(topic_name, encode_f32(row), f"pump-{i % 3}".encode(),
                         headers=f32_headers(f"e-{i}"), timestamp=start + i)  # fmt: skip
    producer.produce(topic_name, b"\x00\x01", b"pump-0", headers=f32_headers(), timestamp=start)
    for i, row in enumerate(as_json):
        event = {"device_id": "fan-1", "ts": start + 100 + i, "values": row.tolist()}
        producer.produce(topic_name, orjson.dumps(event), b"fan-1")
    assert producer.flush(10) == 0

    settings = retrain_settings(tmp_path, kafka_bootstrap, topic_name, redis_url,
                                redis_key_prefix)  # fmt: skip
    added, window, rejected = fill_once(settings)
    assert added == 25 and len(window) == 25
    np.testing.assert_array_equal(window.values[:20], binary)  # oldest first: the binary ones
    np.testing.assert_allclose(window.values[20:], as_json)
    assert window.timestamps[:20].tolist() == [start + i for i in range(20)]
    assert rejected == 1, "the 2-byte binary value is left out and counted"


def test_hostile_events_never_enter_the_window_nor_stop_the_retrainer(
    kafka_bootstrap, topic_name, redis_url, redis_client, redis_key_prefix, tmp_path: Path
):
    rng = np.random.default_rng(4)
    publish_champion(rng, tmp_path, redis_client, redis_key_prefix)
    create_topics(kafka_bootstrap, {topic_name: 1})
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    deep = b'{"device_id":"d","values":[1,2,3,4],"x":' + b"[" * 1500 + b"]" * 1500 + b"}"
    producer.produce(topic_name, deep)
    producer.produce(topic_name, orjson.dumps({"device_id": "d", "values": [3e38, 0, 0, 0]}))
    normal = rng.normal(size=(6, 4)).astype(np.float32).round(3)
    for row in normal:
        producer.produce(topic_name, orjson.dumps({"device_id": "d", "values": row.tolist()}))
    assert producer.flush(10) == 0

    settings = retrain_settings(tmp_path, kafka_bootstrap, topic_name, redis_url,
                                redis_key_prefix)  # fmt: skip
    added, window, rejected = fill_once(settings)
    assert added == 6 and rejected == 2
    np.testing.assert_allclose(window.values, normal)
    assert np.isfinite(window.values).all()


def test_the_retrainer_outlives_redis_going_away_and_keeps_an_unfinished_request(
    kafka_bootstrap, topic_name, redis_key_prefix, tmp_path: Path, monkeypatch
):
    """Redis stopped under a running retrainer: it logs, waits and tries again instead of
    dying with a traceback. A round stopped mid-training puts its request back, so a
    restarted retrainer runs it (it would otherwise wait a whole interval)."""
    import threading

    from seismo.models.errors import TrainingStopped
    from seismo.stream.io.redis_stats import connect
    from seismo.stream.local.embedded import EmbeddedRedis
    from seismo.stream.retrain.requests import request_key, request_retrain

    create_topics(kafka_bootstrap, {topic_name: 1})
    with EmbeddedRedis() as server:
        client = connect(server.url)
        publish_champion(np.random.default_rng(5), tmp_path, client, redis_key_prefix)
        settings = retrain_settings(tmp_path, kafka_bootstrap, topic_name, server.url,
                                    redis_key_prefix)  # fmt: skip
        with open_retrainer(settings) as retrainer:
            request_retrain(client, redis_key_prefix, NAME, reason="drift", by="scorer-1")

            def stopped(trigger: str, kind: str | None = None) -> None:
                raise TrainingStopped("stopped after epoch 3")

            monkeypatch.setattr(retrainer, "attempt", stopped)
            retrainer._step()
            kept = client.get(request_key(redis_key_prefix, NAME))
            assert kept is not None and orjson.loads(kept)["reason"] == "drift"

            stop = threading.Event()
            errors: list[BaseException] = []

            def run() -> None:
                try:
                    retrainer.run(stop)
                except BaseException as exc:  # noqa: BLE001 - the test reports it
                    errors.append(exc)

            monkeypatch.setattr(retrainer, "attempt", lambda trigger, kind=None: None)
            thread = threading.Thread(target=run, daemon=True)
            thread.start()
            time.sleep(1.5)
            server.stop()
            time.sleep(4.0)
            assert thread.is_alive() and not errors, errors
            stop.set()
            thread.join(timeout=40)
            assert not thread.is_alive() and not errors, errors


def test_a_window_champion_is_refused_in_one_line_not_starved(
    kafka_bootstrap, topic_name, redis_url, redis_client, redis_key_prefix, tmp_path: Path
):
    """The sidecar learns from single events; a champion that scores windows (features
    ``ch@t-k``) had every event left out of the window as the wrong width, for good."""
    from seismo.stream.errors import ConfigError

    rng = np.random.default_rng(5)
    result = train_autoencoder(rng.normal(size=(60, 4)).astype(np.float32),
                               config=DenseConfig(n_features=4, hidden=(4, 2)),
                               train=TrainConfig(epochs=1, seed=0), device="cpu")  # fmt: skip
    names = ["temp@t-1", "rpm@t-1", "temp@t-0", "rpm@t-0"]
    ModelRegistry(tmp_path / "store", redis_client, redis_key_prefix).publish(
        build_artifact(result, name=NAME, feature_names=names)
    )
    create_topics(kafka_bootstrap, {topic_name: 1})
    settings = retrain_settings(tmp_path, kafka_bootstrap, topic_name, redis_url,
                                redis_key_prefix)  # fmt: skip
    with pytest.raises(ConfigError, match=f"{NAME} version .* scores windows of 2 readings; "
                                          "seismo retrain learns from single events"):
        with open_retrainer(settings):
            pass


def test_a_window_version_made_current_mid_run_stops_the_retrainer_keeping_the_request(
    kafka_bootstrap, topic_name, redis_url, redis_client, redis_key_prefix, tmp_path: Path
):
    """Refused in a round, the request taken for it goes back to Redis and the lease is
    released, so a standby retrainer (or this one, restarted after a rollback) runs it
    (a reviewer helper: the request was lost and the lease held until it expired)."""
    import threading

    from seismo.stream.errors import ConfigError
    from seismo.stream.retrain.requests import lease_key, request_key, request_retrain

    rng = np.random.default_rng(6)
    publish_champion(rng, tmp_path, redis_client, redis_key_prefix)
    create_topics(kafka_bootstrap, {topic_name: 1})
    settings = retrain_settings(tmp_path, kafka_bootstrap, topic_name, redis_url,
                                redis_key_prefix)  # fmt: skip
    with open_retrainer(settings) as retrainer:
        result = train_autoencoder(rng.normal(size=(60, 4)).astype(np.float32),
                                   config=DenseConfig(n_features=4, hidden=(4, 2)),
                                   train=TrainConfig(epochs=1, seed=1), device="cpu")  # fmt: skip
        window_model = build_artifact(result, name=NAME,
                                      feature_names=["a@t-1", "b@t-1", "a@t-0", "b@t-0"])
        ModelRegistry(tmp_path / "store", redis_client, redis_key_prefix).publish(window_model)
        request_retrain(redis_client, redis_key_prefix, NAME, reason="operator", by="test")
        with pytest.raises(ConfigError, match="scores windows of 2 readings"):
            retrainer.run(threading.Event())
    pending = redis_client.get(request_key(redis_key_prefix, NAME))
    assert pending is not None and orjson.loads(pending)["reason"] == "operator"
    assert redis_client.get(lease_key(redis_key_prefix, NAME)) is None


def test_a_promotion_as_a_new_regime_is_a_warning_naming_the_rollback(
    kafka_bootstrap, topic_name, redis_url, redis_client, redis_key_prefix, tmp_path: Path,
    monkeypatch, caplog,
):
    """A window taken over by anomalies looks like a new regime to the gate (a stranger
    helper's poisoned window was promoted with an INFO line only). The round itself is
    stubbed: what is checked is what the retrainer says and does with its verdict."""
    import seismo.stream.retrain.retrainer as retrainer_module
    from seismo.stream.registry.promotion import Decision
    from seismo.stream.retrain.round import RoundResult

    rng = np.random.default_rng(8)
    publish_champion(rng, tmp_path, redis_client, redis_key_prefix)
    create_topics(kafka_bootstrap, {topic_name: 1})
    result = train_autoencoder(rng.normal(size=(60, 4)).astype(np.float32),
                               config=DenseConfig(n_features=4, hidden=(4, 2)),
                               train=TrainConfig(epochs=1, seed=2), device="cpu")  # fmt: skip
    challenger = build_artifact(result, name=NAME)
    settings = retrain_settings(tmp_path, kafka_bootstrap, topic_name, redis_url,
                                redis_key_prefix)  # fmt: skip
    for regime in (False, True):
        verdict = RoundResult(Decision(True, "promoted", {"regime_change": regime}),
                              challenger, 0.1)  # fmt: skip
        monkeypatch.setattr(retrainer_module, "run_round", lambda *a, **k: verdict)
        caplog.clear()
        with open_retrainer(settings) as retrainer, caplog.at_level("INFO"):
            retrainer.attempt("interval", "interval")
        warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert bool(warned) == regime, warned
    assert warned == [f"{NAME} version {challenger.version} was promoted as a new regime: the "
                      "champion flagged most of the held-back events, and the challenger learnt "
                      "them as normal. If they were anomalies, not a new normal, roll back: "
                      f"seismo models rollback --store STORE --name {NAME}"]


def test_an_event_whose_headers_cannot_be_read_is_left_out_not_a_halt(
    kafka_bootstrap, topic_name, redis_url, redis_client, redis_key_prefix, tmp_path: Path
):
    # Red-team finding (2026-12-07): a header name that is not UTF-8 made seismo
    # retrain exit at every restart (confluent-kafka raised in Message.headers()).
    rng = np.random.default_rng(5)
    publish_champion(rng, tmp_path, redis_client, redis_key_prefix)
    create_topics(kafka_bootstrap, {topic_name: 1})
    produce_raw_header_name(kafka_bootstrap, topic_name)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for row in rng.normal(size=(5, 4)).round(3):
        producer.produce(topic_name, orjson.dumps({"device_id": "fan-1", "values": row.tolist()}))
    assert producer.flush(10) == 0
    settings = retrain_settings(tmp_path, kafka_bootstrap, topic_name, redis_url,
                                redis_key_prefix)  # fmt: skip
    added, _, rejected = fill_once(settings)
    assert (added, rejected) == (5, 1)


def test_events_stamped_ahead_of_the_clock_do_not_take_over_the_held_back_slice(
    kafka_bootstrap, topic_name, redis_url, redis_client, redis_key_prefix, tmp_path: Path,
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
):
    """A red-team finding: rows stamped a year ahead sorted last in every window, so the
    held-back slice (the newest events) was theirs in round after round. A time ahead of
    the retrainer's clock is now taken as the moment the event was read, so the fleet's
    events pass them once the clock has moved on. One-off device prefixes beyond --max-groups
    drop each other, not the fleet's group, and are logged."""
    rng = np.random.default_rng(6)
    publish_champion(rng, tmp_path, redis_client, redis_key_prefix)
    create_topics(kafka_bootstrap, {topic_name: 1})
    now = int(time.time() * 1000)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})

    def send(device: str, ts: int, value: float) -> None:
        event = {"device_id": device, "ts": ts, "values": [value] * 4}
        producer.produce(topic_name, orjson.dumps(event))

    for i in range(5):
        send("pump-1", now + i, 1.0)
        send(f"spoof{i}x-1", now + 365 * 86_400_000, 0.0)  # a year ahead
    assert producer.flush(10) == 0
    settings = retrain_settings(tmp_path, kafka_bootstrap, topic_name, redis_url,
                                redis_key_prefix).model_copy(update={"max_groups": 3})
    with caplog.at_level("WARNING"), open_retrainer(settings) as retrainer:
        assert retrainer.fill(max_s=30, idle_s=2) == 10
        first = retrainer.reservoir.window()
        assert first.timestamps.max() <= int(time.time() * 1000), "read now, not a year on"
        assert sorted(first.timestamps[:5].tolist()) == [now + i for i in range(5)]

        six_minutes_on = now + 6 * 60_000
        for i in range(5):
            send("pump-2", six_minutes_on + i, 2.0)
        assert producer.flush(10) == 0
        real = time.time
        monkeypatch.setattr(time, "time", lambda: real() + 6 * 60)  # the clock moved on
        assert retrainer.fill(max_s=30, idle_s=2) == 5
        monkeypatch.setattr(time, "time", real)
        window = retrainer.reservoir.window()
        groups = retrainer.reservoir.groups
    assert window.values[-5:].tolist() == [[2.0] * 4] * 5, "the newest are the fleet's now"
    assert "pump" in groups and len(groups) == 3
    assert "3 device group(s) dropped from the training window" in caplog.text


def test_promotions_never_prune_the_version_an_operator_published(
    kafka_bootstrap, topic_name, redis_url, redis_client, redis_key_prefix, tmp_path: Path,
    monkeypatch,
):
    """With ``--keep 2`` three promotions deleted the hand-published version, the one every
    promoted version is bounded by and the one an operator rolls back to (an operator
    helper's finding). The round is stubbed to promote; each challenger records that
    version as its reference, as ``run_round`` does."""
    from dataclasses import asdict

    import seismo.stream.retrain.retrainer as retrainer_module
    from seismo.stream.registry.promotion import Decision
    from seismo.stream.retrain.round import RoundResult

    rng = np.random.default_rng(9)
    publish_champion(rng, tmp_path, redis_client, redis_key_prefix)
    registry = ModelRegistry(tmp_path / "store", redis_client, redis_key_prefix)
    published = registry.current(NAME)
    create_topics(kafka_bootstrap, {topic_name: 1})
    settings = retrain_settings(tmp_path, kafka_bootstrap, topic_name, redis_url,
                                redis_key_prefix).model_copy(update={"keep": 2})  # fmt: skip
    promoted = []
    with open_retrainer(settings) as retrainer:
        reference = {"version": published,
                     "calibration": asdict(retrainer.champion.calibration)}  # fmt: skip
        for seed in (20, 21, 22):
            result = train_autoencoder(rng.normal(size=(60, 4)).astype(np.float32),
                                       config=DenseConfig(n_features=4, hidden=(4, 2)),
                                       train=TrainConfig(epochs=1, seed=seed),
                                       device="cpu")  # fmt: skip
            challenger = build_artifact(result, name=NAME)
            challenger.training["window"] = {"reference": reference}
            verdict = RoundResult(Decision(True, "promoted", {}), challenger, 0.1)
            monkeypatch.setattr(retrainer_module, "run_round", lambda *a, v=verdict, **k: v)
            retrainer.attempt("interval", "interval")
            promoted.append(challenger.version)
    stored = [v.version for v in registry.list_versions(NAME)]
    assert registry.current(NAME) == promoted[-1]
    assert sorted(stored) == sorted([published, *promoted[-2:]]), "keep 2, and the reference"


def test_an_interval_round_waits_for_new_events_and_for_a_current_version(
    kafka_bootstrap, topic_name, redis_url, redis_client, redis_key_prefix, tmp_path: Path,
    monkeypatch, caplog,
):
    """Without new events a scheduled round trained the same window again and promoted a
    version each time (an operator helper saw one per round, each a swap of every
    scorer): it is skipped, and counted. And a current version gone from Redis (it came
    back empty) made the sidecar exit: it now waits until one is published. The round
    itself is stubbed (rejected); what is checked is when the retrainer starts one."""
    import threading

    import seismo.stream.retrain.retrainer as retrainer_module
    from seismo.stream.registry.model_versions import current_key
    from seismo.stream.registry.promotion import Decision
    from seismo.stream.retrain.round import RoundResult

    rejected = RoundResult(Decision(False, "too_little_data", {}), None, 0.1)
    monkeypatch.setattr(retrainer_module, "run_round", lambda *a, **k: rejected)
    rng = np.random.default_rng(10)
    publish_champion(rng, tmp_path, redis_client, redis_key_prefix)
    create_topics(kafka_bootstrap, {topic_name: 1})
    producer = Producer({"bootstrap.servers": kafka_bootstrap})

    def send(n: int) -> None:
        for row in rng.normal(size=(n, 4)).round(3):
            producer.produce(topic_name, orjson.dumps({"device_id": "d", "values": row.tolist()}))
        assert producer.flush(10) == 0

    send(5)
    settings = retrain_settings(tmp_path, kafka_bootstrap, topic_name, redis_url,
                                redis_key_prefix)  # fmt: skip
    settings = settings.model_copy(update={"interval_s": 0.3})
    with open_retrainer(settings) as retrainer:
        assert retrainer.fill(max_s=30, idle_s=2) == 5
        time.sleep(0.4)
        assert retrainer.due() == "interval"
        retrainer.attempt("interval")
        time.sleep(0.4)
        with caplog.at_level("INFO"):
            assert retrainer.due() is None, "the same window: no round"
        assert "no event joined the window since the last round (5 events in it)" in caplog.text
        assert retrainer.metrics.skipped.labels("no_new_events")._value.get() == 1
        send(1)
        assert retrainer.fill(max_s=30, idle_s=2) == 1
        time.sleep(0.4)
        assert retrainer.due() == "interval", "a new event: the round is due again"

        def failing(*args: object, **kwargs: object) -> RoundResult:
            raise RuntimeError("the store did not answer")

        monkeypatch.setattr(retrainer_module, "run_round", failing)
        with pytest.raises(RuntimeError):
            retrainer.attempt("interval")
        time.sleep(0.4)
        assert retrainer.due() == "interval", "a round that did not end leaves its events new"
        monkeypatch.setattr(retrainer_module, "run_round", lambda *a, **k: rejected)

    stop, errors = threading.Event(), []
    hourly = settings.model_copy(update={"interval_s": 3600.0})
    with open_retrainer(hourly) as retrainer:
        redis_client.delete(current_key(redis_key_prefix, NAME))  # Redis came back empty
        retrainer._last_round -= 3600  # the hourly round is due now
        send(1)

        def run() -> None:
            try:
                retrainer.run(stop)
            except BaseException as exc:  # noqa: BLE001 - the test reports it
                errors.append(exc)

        caplog.clear()
        thread = threading.Thread(target=run, daemon=True)
        with caplog.at_level("INFO"):
            thread.start()
            assert wait_for(lambda: any(r.levelname == "WARNING" for r in caplog.records), 20)
            assert thread.is_alive() and not errors, errors
            waiting = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
            assert waiting[0].startswith(f"{NAME} has no current version in "), waiting
            assert "no round until there is one; retrying in 1 s" in waiting[0]
            assert retrainer.rounds == 0
            publish_champion(rng, tmp_path, redis_client, redis_key_prefix)  # the operator
            assert wait_for(lambda: retrainer.rounds == 1, timeout=8), (
                "the round is tried again after the backoff, not an interval later"
            )
            stop.set()
            thread.join(timeout=30)
    assert not thread.is_alive() and not errors, errors


def test_a_drift_request_of_a_version_no_longer_current_is_skipped(
    kafka_bootstrap, topic_name, redis_url, redis_client, redis_key_prefix, tmp_path: Path,
    caplog,
):
    """A scorer still on the old version asks again after its cool-down, until it swaps:
    a round on that request retrained the window the new version was just trained on (a
    slow test saw one rejected right after a promotion, its /health then naming that
    round). A drift request names its version; another version current, it is skipped.
    A request of the current version, or a person's, still starts a round."""
    from seismo.stream.retrain.requests import request_retrain

    rng = np.random.default_rng(11)
    publish_champion(rng, tmp_path, redis_client, redis_key_prefix)
    create_topics(kafka_bootstrap, {topic_name: 1})
    settings = retrain_settings(tmp_path, kafka_bootstrap, topic_name, redis_url,
                                redis_key_prefix)  # fmt: skip
    registry = ModelRegistry(tmp_path / "store", redis_client, redis_key_prefix)
    current = registry.current(NAME)
    assert current is not None

    def ask(version: str | None, kind: str = "drift") -> None:
        assert request_retrain(redis_client, redis_key_prefix, NAME, reason=f"drift of {version}",
                               by="scorer-1", kind=kind, version=version)  # fmt: skip

    with open_retrainer(settings) as retrainer:
        ask("an-older-version")
        with caplog.at_level("INFO"):
            assert retrainer.due() is None
        assert f"drift of an-older-version, but {current} is current" in caplog.text
        assert retrainer.metrics.skipped.labels("stale_drift")._value.get() == 1
        ask(current)
        assert retrainer.due() == f"drift of {current}"
        ask("an-older-version", kind="request")  # a person's request is never stale
        assert retrainer.due() == "drift of an-older-version"
