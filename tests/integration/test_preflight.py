"""The start-up check that the model fits the input topic, on a real broker."""

from __future__ import annotations

import orjson
import pytest

from seismo.stream.io.preflight import dimension_mismatch, latest_values
from tests.kafka_tools import create_topics, produce_values

pytestmark = pytest.mark.kafka


def events(n: int, d: int) -> list[tuple[bytes, bytes]]:
    return [
        (b"dev", orjson.dumps({"device_id": "dev", "values": [float(i)] * d, "id": str(i)}))
        for i in range(n)
    ]


def test_latest_values_reads_the_newest_events_of_every_partition(kafka_bootstrap, topic_name):
    create_topics(kafka_bootstrap, {topic_name: 2})
    produce_values(kafka_bootstrap, topic_name, events(30, d=4))

    values = latest_values({"bootstrap.servers": kafka_bootstrap}, topic_name, per_partition=3)

    ids = [int(orjson.loads(v)["id"]) for v in values if v]
    assert ids, "nothing read from a topic holding 30 events"
    assert len(ids) <= 2 * 3 + 2, "read far more than the newest events"
    assert 29 in ids, "the newest event is not among those read"
    assert dimension_mismatch(values, n_features=8) == "events carry 4 values, the model expects 8"
    assert dimension_mismatch(values, n_features=4) is None


def test_empty_topic_gives_nothing_quickly(kafka_bootstrap, topic_name):
    create_topics(kafka_bootstrap, {topic_name: 1})
    assert latest_values({"bootstrap.servers": kafka_bootstrap}, topic_name) == []
