"""The scorer says what happens (issue 21), against a real Kafka broker and Redis:
dead letters as a periodic summary line, the threshold's drift from the model's
calibration in the log and in ``/metrics``, and librdkafka's repeated lines once."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from confluent_kafka import Consumer
from prometheus_client import generate_latest

from seismo.stream.errors import ServiceError
from seismo.stream.io.kafka import CONSUMER_DEFAULTS, BrokerErrors, check_topics, client_config
from seismo.stream.io.log_throttle import normalise
from seismo.stream.io.metrics import ScorerMetrics
from seismo.stream.local.embedded import free_port
from seismo.stream.scoring.codec import encode_event
from seismo.stream.scoring.service import open_scorer
from tests.integration.scorer_streams import (
    Streams,
    anomalous_rows,
    consume,
    events,
    normal_rows,
)
from tests.pipes import run_seismo

pytestmark = [pytest.mark.kafka, pytest.mark.redis]

SCORER_LOG = "seismo.stream.scoring.scorer"


def summaries(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == SCORER_LOG and "dead-lettered to" in r.getMessage()]  # fmt: skip


def test_dead_letters_are_logged_as_one_summary_with_a_sample(
    streams: Streams, caplog: pytest.LogCaptureFixture
) -> None:
    streams.create()
    bad = [(b"dev-1", encode_event("dev-1", [1.0, 2.0, 3.0, 4.0, 5.0], event_id=f"bad-{i}"), [])
           for i in range(20)]  # fmt: skip
    streams.produce(bad + events(normal_rows(10, seed=3), "ok"))
    metrics = ScorerMetrics()
    caplog.set_level(logging.WARNING, logger=SCORER_LOG)
    with open_scorer(streams.settings(), metrics) as scorer:
        result = scorer.process(consume(scorer, 30))
    assert result.dead_lettered == 20
    lines = summaries(caplog)
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"20 events dead-lettered to {streams.dlq}, e.g. "
                               f"{streams.topic}[0] offset 0: ")  # fmt: skip
    assert lines[0].endswith("expected 4 values, got 5")  # the sample's reason
    assert metrics.dead_lettered._value.get() == 20
    assert len(streams.read(streams.dlq, 20)) == 20


def test_a_threshold_far_from_the_calibration_is_logged_and_exported(
    streams: Streams, caplog: pytest.LogCaptureFixture
) -> None:
    streams.create()
    streams.produce(events(anomalous_rows(400, seed=4), "far"))
    metrics = ScorerMetrics()
    caplog.set_level(logging.INFO, logger=SCORER_LOG)
    settings = streams.settings(min_samples=50, learn_anomalies=True)
    with open_scorer(settings, metrics) as scorer:
        first = scorer.process(consume(scorer, 200))  # judged on the calibration
        calibrated = metrics.threshold_calibration._value.get()
        assert metrics.threshold._value.get() == pytest.approx(calibrated)
        second = scorer.process(consume(scorer, 200))  # on the rolling statistics of the first
    assert first.alerts == 200 and second.consumed == 200
    live = metrics.threshold._value.get()
    assert live > 2 * calibrated
    warnings = [r for r in caplog.records if "x the model calibration threshold" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert f"calibration threshold {calibrated:.4g}" in warnings[0].getMessage()
    exported = generate_latest(metrics.registry).decode()
    assert re.search(r"^seismo_threshold_calibration \S+$", exported, re.M)
    assert re.search(r"^seismo_threshold \S+$", exported, re.M)


def test_repeated_librdkafka_lines_before_a_broker_error_are_written_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="seismo.librdkafka")
    errors = BrokerErrors()
    config = client_config(f"127.0.0.1:{free_port()}", {**CONSUMER_DEFAULTS, "group.id": "q"}, {})
    consumer = Consumer({**config, "error_cb": errors})
    try:
        with pytest.raises(ServiceError, match="Kafka broker unreachable"):
            check_topics(consumer, ["t"], timeout_s=10, errors=errors)
    finally:
        consumer.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "seismo.librdkafka"]
    assert lines, "librdkafka reported nothing"
    kinds = [normalise(re.sub(r" \(\d+ more like it.*| \(repeated \d+ more times\)", "", line))
             for line in lines if "repeated" not in line]  # fmt: skip
    assert len(kinds) == len(set(kinds)), lines


def test_a_scorer_without_a_broker_writes_each_librdkafka_line_once(
    model_dir: Path, redis_url: str, topic_name: str
) -> None:
    done = run_seismo(
        "score", "--model", str(model_dir), "--bootstrap-servers", f"127.0.0.1:{free_port()}",
        "--redis-url", redis_url, "--input-topic", topic_name, "--device", "cpu", timeout=60,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr[-3000:]
    lines = done.stderr.splitlines()
    assert lines[-1].startswith("seismo: error: Kafka broker unreachable"), lines
    rdkafka = [line.split("seismo.librdkafka: ", 1)[1] for line in lines
               if "seismo.librdkafka: " in line and "repeated" not in line]  # fmt: skip
    kinds = [normalise(line) for line in rdkafka]
    assert len(kinds) == len(set(kinds)), done.stderr[-3000:]
