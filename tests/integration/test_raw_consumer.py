"""The raw ceiling of ``seismo bench``: a plain consumer in its own process, on a real broker."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from seismo.stream.bench.runs import run_raw
from seismo.stream.bench.throughput import fill_topic
from seismo.stream.local.embedded import create_topics

pytestmark = [pytest.mark.kafka]


def test_the_raw_consumer_reads_every_event_in_a_process_of_its_own(kafka_bootstrap: str) -> None:
    topic = f"raw-{uuid.uuid4().hex[:8]}"
    create_topics(kafka_bootstrap, {topic: 3})
    rows = np.random.default_rng(0).normal(size=(25_000, 4))
    total = fill_topic(kafka_bootstrap, topic, rows, devices=7)
    r = run_raw(kafka_bootstrap, topic, total, extra={"session.timeout.ms": "6000"})
    # The first batch (up to 10 000) starts the clock and counts for nothing; every later
    # event is counted, each once.
    assert total - 10_000 <= r.events < total
    assert r.seconds > 0 and r.per_second > 0


def test_a_raw_consumer_that_cannot_start_says_why(kafka_bootstrap: str) -> None:
    with pytest.raises(RuntimeError, match="the raw consumer failed"):
        run_raw(kafka_bootstrap, "no-such-topic", 10, extra={"no.such.property": "1"})
