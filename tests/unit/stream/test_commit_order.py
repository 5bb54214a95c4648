"""The scorer's delivery rule, step by step, with recording fakes (milliseconds).

Produce every output → confirm delivery → write what the batch taught to Redis →
commit. The integration and crash tests show it against a real broker; this
test pins the order itself, and that nothing is committed when the broker does
not confirm.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import orjson
import pytest

from seismo.models.artifact import build_artifact
from seismo.models.config import DenseConfig, TrainConfig
from seismo.models.training import train_autoencoder
from seismo.stream.config.loader import load_settings
from seismo.stream.errors import DeliveryError
from seismo.stream.io.log_throttle import Throttle
from seismo.stream.io.metrics import ScorerMetrics
from seismo.stream.scoring.scorer import Scorer
from seismo.stream.scoring.stats import RunningStats

D = 4


@dataclass
class Message:
    """The accessors of ``confluent_kafka.Message`` the scorer reads."""

    _value: bytes
    _offset: int

    def value(self) -> bytes:
        return self._value

    def key(self) -> bytes:
        return b"pump-1"

    def headers(self) -> None:
        return None

    def topic(self) -> str:
        return "events"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_700_000_000_000 + self._offset)

    def error(self) -> None:
        return None


@dataclass
class Recorder:
    """The calls of every fake, in order."""

    calls: list[str] = field(default_factory=list)


class Producer:
    def __init__(self, log: Recorder, confirm: bool = True) -> None:
        self.log, self.confirm = log, confirm
        self.topics: list[str] = []

    def send(self, topic, value, key, headers, tag=None) -> None:  # noqa: ANN001
        self.topics.append(topic)
        self.log.calls.append(f"produce {topic}")

    def flush(self, timeout_s: float) -> None:
        self.log.calls.append("flush")
        if not self.confirm:
            raise DeliveryError("1 message(s) not delivered")

    def poll(self) -> None:
        return None

    def close(self) -> int:
        return 0


class Consumer:
    def __init__(self, log: Recorder) -> None:
        self.log = log
        self.committed: list[tuple[int, int]] = []

    def commit(self, offsets, asynchronous: bool) -> None:  # noqa: ANN001
        assert asynchronous is False
        self.committed += [(tp.partition, tp.offset) for tp in offsets]
        self.log.calls.append("commit")


class Stats:
    errors = repairs = 0

    def __init__(self, log: Recorder) -> None:
        self.log = log
        self.pending = RunningStats()

    def read(self) -> tuple[RunningStats, str]:
        self.log.calls.append("read stats")
        return RunningStats(), "redis"

    def merge(self, batch: RunningStats) -> None:
        self.log.calls.append("merge stats")


@pytest.fixture(scope="module")
def artifact():
    rng = np.random.default_rng(0)
    result = train_autoencoder(rng.normal(size=(64, D)).astype(np.float32),
                               config=DenseConfig(n_features=D, hidden=(4, 2)),
                               train=TrainConfig(epochs=1, seed=0), device="cpu")  # fmt: skip
    return build_artifact(result, name="order")


def scorer_with(artifact, log: Recorder, confirm: bool = True) -> tuple[Scorer, Consumer]:
    consumer = Consumer(log)
    settings = load_settings({"model": "unused", "scores_topic": "scores", "drift_m": 0}, env={})
    scorer = Scorer(settings=settings, artifact=artifact, consumer=consumer,  # type: ignore[arg-type]
                    producer=Producer(log, confirm), stats=Stats(log),  # type: ignore[arg-type]
                    metrics=ScorerMetrics())  # fmt: skip
    return scorer, consumer


def batch() -> list[Message]:
    good = [orjson.dumps({"device_id": "pump-1", "values": [0.1] * D}) for _ in range(3)]
    return [Message(v, i) for i, v in enumerate([*good, b"not json"])]


def test_outputs_are_confirmed_before_redis_learns_and_before_the_commit(artifact) -> None:
    log = Recorder()
    scorer, consumer = scorer_with(artifact, log)
    result = scorer.process(batch())  # type: ignore[arg-type]
    steps = [c for c in log.calls if not c.startswith("produce")]
    assert steps == ["read stats", "flush", "merge stats", "commit"]
    produced = [i for i, c in enumerate(log.calls) if c.startswith("produce")]
    assert produced and max(produced) < log.calls.index("flush")
    assert {c for c in log.calls if c.startswith("produce")} == {
        "produce scores", "produce sensor-events.dlq"
    }
    assert (result.scored, result.dead_lettered) == (3, 1)
    assert consumer.committed == [(0, 4)], "the highest offset + 1"


def test_nothing_is_learned_or_committed_when_the_broker_does_not_confirm(artifact) -> None:
    log = Recorder()
    scorer, consumer = scorer_with(artifact, log, confirm=False)
    with pytest.raises(DeliveryError):
        scorer.process(batch())  # type: ignore[arg-type]
    assert "merge stats" not in log.calls and "commit" not in log.calls
    assert consumer.committed == []


def test_a_failed_commit_is_remembered_until_the_next_one_succeeds(artifact) -> None:
    """So a scorer stopped right after a refused commit does not say "stopped cleanly"."""
    from confluent_kafka import KafkaError, KafkaException

    log = Recorder()
    scorer, consumer = scorer_with(artifact, log)
    refuse = [True]

    def commit(offsets, asynchronous: bool) -> None:  # noqa: ANN001
        if refuse[0]:
            raise KafkaException(KafkaError(KafkaError.REBALANCE_IN_PROGRESS))
        consumer.committed += [(tp.partition, tp.offset) for tp in offsets]

    consumer.commit = commit  # type: ignore[method-assign]
    scorer.process(batch())  # type: ignore[arg-type]
    assert scorer.last_commit_failed and consumer.committed == []
    refuse[0] = False
    scorer.process([Message(m.value(), m.offset() + 4) for m in batch()])  # type: ignore[arg-type]
    assert not scorer.last_commit_failed and consumer.committed == [(0, 8)]


def test_a_lasting_drift_is_logged_once_a_period_and_reported_each_time(artifact, caplog):
    """The drift check fires every few batches while a drift lasts; each firing still asks
    for a retrain (the cool-down is the retrainer's), but the log says it once per 10 s."""
    log = Recorder()
    settings = load_settings({"model": "unused", "drift_m": 1.0, "drift_window": 10}, env={})
    reports: list[str] = []
    scorer = Scorer(settings=settings, artifact=artifact, consumer=Consumer(log),  # type: ignore[arg-type]
                    producer=Producer(log, True), stats=Stats(log),  # type: ignore[arg-type]
                    metrics=ScorerMetrics(),
                    on_drift=lambda a: reports.append(a.version))  # fmt: skip
    far = [orjson.dumps({"device_id": "pump-1", "values": [50.0] * D}) for _ in range(10)]
    with caplog.at_level("WARNING"):
        for n in range(12):
            scorer.process([Message(v, 10 * n + i) for i, v in enumerate(far)])
    assert len(reports) >= 3, reports
    assert caplog.text.count("drifted from its calibration") == 1, caplog.text


def test_events_with_a_ts_in_epoch_seconds_are_named_once_a_period(artifact, caplog):
    """``ts`` is epoch milliseconds; 1732500000 (seconds) is 1970-01-21 and its alerts said
    so without a word (a stranger helper). Now a warning, once per 10 s, says how many
    events since the last one."""
    log = Recorder()
    settings = load_settings({"model": "unused"}, env={})
    scorer = Scorer(settings=settings, artifact=artifact, consumer=Consumer(log),  # type: ignore[arg-type]
                    producer=Producer(log, True), stats=Stats(log),  # type: ignore[arg-type]
                    metrics=ScorerMetrics())  # fmt: skip
    now = [0.0]
    scorer._log_throttle = Throttle(clock=lambda: now[0])
    millis = [orjson.dumps({"device_id": "p", "values": [0.0] * D, "ts": 1732500000000})]
    seconds = [orjson.dumps({"device_id": "p", "values": [0.0] * D, "ts": 1732500000 + i})
               for i in range(3)]  # fmt: skip
    with caplog.at_level("WARNING"):
        scorer.process([Message(v, i) for i, v in enumerate(millis)])
        assert "epoch seconds" not in caplog.text
        for n in range(4):
            scorer.process([Message(v, 10 * n + i) for i, v in enumerate(seconds)])
        now[0] += 10.0  # the next line may pass: it counts every event held back since
        scorer.process([Message(v, 100 + i) for i, v in enumerate(seconds)])
    lines = [r.getMessage() for r in caplog.records if "epoch seconds" in r.getMessage()]
    assert lines == [
        "3 event(s) with a time before 1973 (as low as 1732500000 ms): epoch seconds? An "
        "event's ts (without one, its Kafka timestamp) is read as epoch milliseconds; their "
        "alerts and windows carry that time",
        "12 event(s) with a time before 1973 (as low as 1732500000 ms): epoch seconds? An "
        "event's ts (without one, its Kafka timestamp) is read as epoch milliseconds; their "
        "alerts and windows carry that time",
    ], lines


def test_a_producer_that_fails_in_flush_is_a_delivery_error_so_a_new_one_is_made() -> None:
    """After a broker restart an idempotent producer hit a fatal error and confluent-kafka's
    flush raised a bare SystemError: the scorer died with a traceback (an operator helper)
    instead of publishing the batch again with a new producer."""
    from seismo.stream.io.kafka import ConfirmingProducer

    class Broken:
        def flush(self, timeout_s: float) -> int:
            raise SystemError("<method 'flush' of 'cimpl.Producer' objects> returned NULL")

    producer = ConfirmingProducer({"bootstrap.servers": "127.0.0.1:1"})
    producer._producer = Broken()  # type: ignore[assignment]
    with pytest.raises(DeliveryError, match="the producer failed \\(SystemError"):
        producer.flush(0.1)
