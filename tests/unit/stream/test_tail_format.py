"""How `seismo tail` shows records (pure: stream/offline/tail_format.py), and the defaults of
`seismo dev up` against the scorer's."""

from __future__ import annotations

import json

import orjson
import pytest

from seismo.stream.config import defaults
from seismo.stream.config.settings import ScorerSettings
from seismo.stream.offline.tail_format import TailRecord, json_line, kind_of, text_line


def record(value: bytes | None, headers=(), key: bytes | None = None) -> TailRecord:
    return TailRecord("t", 0, 5, 1732350000000, key, value, tuple(headers))


def strict(line: str) -> dict:
    def refuse(name: str) -> None:
        raise AssertionError(f"{name} is not JSON")

    return json.loads(line, parse_constant=refuse)


def test_a_device_scope_alert_reads_as_one_line_with_its_top_channels() -> None:
    alert = {"alert_id": "e:0:1", "device_id": "room\n2", "ts": 0, "score": 3, "threshold": 4,
             "model_version": "7", "top_channels": [{"name": "temp"}, {"name": "door"}]}
    line = text_line(record(orjson.dumps(alert)))
    assert line == ("1970-01-01T00:00:00.000Z room\\n2 score 3 <= threshold 4 model 7 "
                    "top temp, door [e:0:1]")


@pytest.mark.parametrize("value, kind, shown", [
    (b"NaN", "text", "NaN"),
    (b'{"x": NaN}', "text", '{"x": NaN}'),
    (b"null", "json", "null"),
    (b"\xff\xfe" * 20, "text", "<40 bytes: fffefffefffefffefffefffefffefffe...>"),
    (b"", "text", ""),
])  # fmt: skip
def test_values_that_are_not_json_objects(value: bytes, kind: str, shown: str) -> None:
    assert kind_of(record(value)) == kind
    assert text_line(record(value)) == shown
    strict(json_line(record(value)))


def test_json_output_keeps_binary_values_and_keys_lossless() -> None:
    out = strict(json_line(record(b"\x00\xff", key=b"pump\xff")))
    assert out["value_base64"] == "AP8=" and "value" not in out
    assert out["key"] == "pump\\xff"


def test_a_stub_dead_letter_has_no_value_but_its_reason() -> None:
    headers = [("seismo-error", b"invalid JSON; the original was not published: too large"),
               ("seismo-source-topic", b"ev"), ("seismo-source-partition", b"3"),
               ("seismo-source-offset", b"9"), ("seismo-stub", b"1")]
    letter = record(None, headers)
    assert text_line(letter) == ("DLQ ev:3:9 reason: invalid JSON; the original was not "
                                 "published: too large | value: <no value>")
    out = strict(json_line(letter))
    assert out["kind"] == "dead_letter" and out["value"] is None
    assert out["headers"]["seismo-stub"] == "1"


def test_a_long_dead_letter_value_is_cut_on_its_line_only() -> None:
    letter = record(b"x" * 1000, [("seismo-error", b"too big")])
    assert text_line(letter).endswith("x" * 200 + "...")
    assert strict(json_line(letter))["value"] == "x" * 1000


def test_dev_up_creates_the_topics_the_scorer_reads_and_writes_by_default() -> None:
    fields = ScorerSettings.model_fields
    assert fields["input_topic"].default == defaults.INPUT_TOPIC
    assert fields["alerts_topic"].default == defaults.ALERTS_TOPIC
    assert fields["dlq_topic"].default == defaults.DLQ_TOPIC
    assert fields["bootstrap_servers"].default == defaults.BOOTSTRAP_SERVERS
