"""How ``seismo tail`` shows a record: one readable line, or one JSON object.

Pure: a :class:`TailRecord` in, a line of text out. A record is one of four
kinds (:func:`kind_of`): a *dead letter* (it carries the ``seismo-error``
header, :mod:`seismo.stream.scoring.dead_letters`), an *alert* (a JSON object
with the scorer's alert fields, :mod:`seismo.stream.scoring.alerts`), other
*json*, or *text* (anything else, bytes included). Control characters of the
data are written as escapes, so no record can forge a line or drive the
terminal; JSON output never holds ``NaN`` (a value with one is not JSON and is
shown as text).

Examples
--------
>>> alert = TailRecord("anomalies", 0, 7, 1732350000000, b"pump-7", (
...     b'{"alert_id": "sensor-events:2:41", "device_id": "pump-7", "ts": 1732350000000,'
...     b' "score": 0.8123, "threshold": 0.4567, "zscore": 5.21, "model_version": "3",'
...     b' "top_features": [{"index": 1, "name": "vibration", "error": 0.5}]}'), ())
>>> print(text_line(alert))
2024-11-23T08:20:00.000Z pump-7 score 0.8123 > threshold 0.4567 (z 5.21) model 3 \
top vibration [sensor-events:2:41]
>>> letter = TailRecord("sensor-events.dlq", 0, 3, None, None, b'{"values": [1, 2]}',
...                     (("seismo-error", b"expected 6 values, got 2"),
...                      ("seismo-source-topic", b"sensor-events"),
...                      ("seismo-source-partition", b"1"), ("seismo-source-offset", b"12")))
>>> print(text_line(letter))
DLQ sensor-events:1:12 reason: expected 6 values, got 2 | value: {"values": [1, 2]}
>>> fields = orjson.loads(json_line(letter))
>>> fields["kind"], fields["reason"], fields["value"], fields["headers"]["seismo-source-offset"]
('dead_letter', 'expected 6 values, got 2', {'values': [1, 2]}, '12')
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from seismo.stream.scoring.alerts import H_ERROR, H_OFFSET, H_PARTITION, H_TOPIC

__all__ = ["TailRecord", "json_line", "kind_of", "text_line"]

#: Fields that make a JSON object an alert of the scorer.
ALERT_FIELDS = frozenset({"alert_id", "device_id", "score", "threshold"})
#: Longest value shown on a dead letter's line (the whole one is in ``--json``).
DLQ_VALUE_CHARS = 200
#: Bytes of a binary value shown (in hex) on its line.
BINARY_PREVIEW = 16

Headers = tuple[tuple[str, bytes | None], ...]


@dataclass(frozen=True)
class TailRecord:
    """One consumed record, as plain data (no Kafka types).

    ``timestamp`` is the record's timestamp (epoch ms), ``None`` when the
    broker gives none; ``headers`` keeps their order and repeats.
    """

    topic: str
    partition: int
    offset: int
    timestamp: int | None
    key: bytes | None
    value: bytes | None
    headers: Headers


def _escape(text: str) -> str:
    r"""``text`` with control characters as escapes.

    >>> _escape("a\nb\x1b[31m")
    'a\\nb\\x1b[31m'
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _text(raw: bytes | None) -> str | None:
    """Bytes as text, undecodable bytes as ``\\x..`` escapes."""
    return None if raw is None else raw.decode("utf-8", errors="backslashreplace")


def _json_value(raw: bytes | None) -> Any:
    """The parsed JSON of ``raw``, or ``None`` (with ``kind`` telling) when it is none.

    >>> _json_value(b'{"a": 1}'), _json_value(b"NaN"), _json_value(b"[1, NaN]")
    ({'a': 1}, None, None)
    """
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def _header(record: TailRecord, name: str) -> str | None:
    """The last value of header ``name`` as text, or ``None``."""
    found = [value for key, value in record.headers if key == name]
    return _text(found[-1]) if found else None


def kind_of(record: TailRecord) -> str:
    """``dead_letter``, ``alert``, ``json`` or ``text``.

    >>> kind_of(TailRecord("t", 0, 0, None, None, b"[1, 2]", ()))
    'json'
    >>> kind_of(TailRecord("t", 0, 0, None, None, b"\\x00\\x01", ()))
    'text'
    """
    if _header(record, H_ERROR) is not None:
        return "dead_letter"
    parsed = _json_value(record.value)
    if isinstance(parsed, dict) and ALERT_FIELDS <= parsed.keys():
        return "alert"
    return "text" if parsed is None and record.value != b"null" else "json"


def _iso_ms(ms: Any) -> str:
    """Epoch milliseconds as UTC ISO-8601, or the value as it is.

    >>> _iso_ms(1732350000000), _iso_ms("soon")
    ('2024-11-23T08:20:00.000Z', 'soon')
    """
    if isinstance(ms, int | float) and not isinstance(ms, bool):
        try:
            moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return str(ms)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return str(ms)


def _num(x: Any) -> str:
    return f"{x:.4g}" if isinstance(x, int | float) and not isinstance(x, bool) else str(x)


def _alert_line(alert: dict[str, Any]) -> str:
    """Reading time, device, score against threshold, model version, top features, source."""
    score, threshold = alert.get("score"), alert.get("threshold")
    above = isinstance(score, int | float) and isinstance(threshold, int | float)
    op = (">" if score > threshold else "<=") if above else "vs"  # type: ignore[operator]
    parts = [_iso_ms(alert.get("ts")), str(alert.get("device_id")),
             f"score {_num(score)} {op} threshold {_num(threshold)}"]  # fmt: skip
    if "zscore" in alert:
        parts[-1] += f" (z {_num(alert['zscore'])})"
    parts.append(f"model {alert.get('model_version', '?')}")
    top = alert.get("top_channels") or alert.get("top_features") or []
    names = [str(f.get("name")) for f in top[:3] if isinstance(f, dict)]
    if names:
        parts.append("top " + ", ".join(names))
    parts.append(f"[{alert.get('alert_id')}]")
    return _escape(" ".join(parts))


def _value_text(raw: bytes | None) -> str:
    """A value for a text line: compact JSON, text, or a hex preview of binary bytes.

    >>> _value_text(b'{"a": [1, 2]}'), _value_text(b"\\xff\\x00"), _value_text(None)
    ('{"a": [1, 2]}', '<2 bytes: ff00>', '<no value>')
    """
    if raw is None:
        return "<no value>"
    parsed = _json_value(raw)
    if parsed is not None or raw == b"null":
        return _escape(json.dumps(parsed, ensure_ascii=False))
    try:
        return _escape(raw.decode("utf-8"))
    except UnicodeDecodeError:
        more = "..." if len(raw) > BINARY_PREVIEW else ""
        return f"<{len(raw)} bytes: {raw[:BINARY_PREVIEW].hex()}{more}>"


def text_line(record: TailRecord) -> str:
    """The record as one readable line (see the module's examples)."""
    kind = kind_of(record)
    if kind == "alert":
        return _alert_line(orjson.loads(record.value or b"{}"))
    if kind == "dead_letter":
        source = ":".join(str(_header(record, h)) for h in (H_TOPIC, H_PARTITION, H_OFFSET))
        value = _value_text(record.value)
        if len(value) > DLQ_VALUE_CHARS:
            value = value[:DLQ_VALUE_CHARS] + "..."
        reason = _escape(_header(record, H_ERROR) or "")
        return f"DLQ {_escape(source)} reason: {reason} | value: {value}"
    if kind == "json":
        return orjson.dumps(_json_value(record.value)).decode()
    return _value_text(record.value)


def json_object(record: TailRecord) -> dict[str, Any]:
    """The record as a JSON-ready dict: where it was, its kind, key, value and headers.

    ``value`` is the parsed JSON when the value is JSON, else its text; a value
    that is not UTF-8 is given as ``value_base64`` instead. Dead letters also
    carry their ``reason``.
    """
    kind = kind_of(record)
    out: dict[str, Any] = {"topic": record.topic, "partition": record.partition,
                           "offset": record.offset, "timestamp": record.timestamp,
                           "key": _text(record.key), "kind": kind}  # fmt: skip
    parsed = _json_value(record.value)
    if parsed is not None or record.value == b"null":
        out["value"] = parsed
    elif record.value is None:
        out["value"] = None
    else:
        try:
            out["value"] = record.value.decode("utf-8")
        except UnicodeDecodeError:
            out["value_base64"] = base64.b64encode(record.value).decode()
    if kind == "dead_letter":
        out["reason"] = _header(record, H_ERROR)
    if record.headers:
        out["headers"] = {name: _text(value) for name, value in record.headers}
    return out


def json_line(record: TailRecord) -> str:
    """:func:`json_object` as one line of JSON."""
    return orjson.dumps(json_object(record)).decode()
