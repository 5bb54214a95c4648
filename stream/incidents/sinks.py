"""What ``seismo notify`` sends to each sink: pure functions from an incident change.

- **webhook**: the change itself as JSON, with ``Idempotency-Key``
  (``{incident_id}:{seq}``), ``X-Seismo-Timestamp`` and, with a secret,
  ``X-Seismo-Signature: sha256=<hex>``, the HMAC-SHA256 of
  ``"{timestamp}." + body`` (verify it before trusting the body).
- **slack**: a Slack-compatible incoming-webhook message (``{"text": ...}``);
  ``&``, ``<`` and ``>`` are escaped as Slack asks (so a device id cannot
  mention ``<!channel>`` or make a link), and control characters show as
  ``\\n``, ``\\x1b``... (so it cannot start a line of its own).
- **alertmanager**: Alertmanager's v2 API (``POST /api/v2/alerts``), one alert
  per incident labelled ``alertname="SeismoIncident"``, ``device_id``,
  ``incident_id``, ``severity``; a resolved incident carries ``endsAt``.

A change is checked first (:func:`change_problem`): one that lacks a field
these need, or holds one of another type, is no change to deliver, and goes
to the dead topic with the reason.

Examples
--------
>>> change = {"incident_id": "inc-1", "device_id": "pump-7", "status": "open", "seq": 0,
...           "severity": "warning", "alert_count": 3, "max_zscore": 7.5,
...           "opened_at": 1764547200000, "resolved_at": None, "channels": ["rpm"],
...           "top_features": [{"name": "rpm", "error": 4.0}], "model_version": "v1"}
>>> idempotency_key(change)
'inc-1:0'
>>> sign(b"k", "1764547200", b'{"a":1}')
'sha256=0e9ff11603d94b8251afdcae8e006f36311d0ffaeda690757f660e9121d569d0'
>>> slack_message(change)["text"]
':rotating_light: [WARNING] pump-7: incident opened (3 alerts, max z 7.5; rpm) inc-1'
>>> alert = alertmanager_alerts(change)[0]
>>> alert["labels"]["alertname"], alert["startsAt"], "endsAt" in alert
('SeismoIncident', '2025-12-01T00:00:00Z', False)
>>> change_problem(change) is None
True
>>> print(slack_message({**change, "device_id": "<!channel> <https://x|y>\\n:fire:"})["text"])
:rotating_light: [WARNING] &lt;!channel&gt; &lt;https://x|y&gt;\\n:fire:: incident opened \
(3 alerts, max z 7.5; rpm) inc-1
"""

from __future__ import annotations

import hashlib
import hmac
import math
from datetime import UTC, datetime
from typing import Any

Change = dict[str, Any]

#: Label ``alertname`` of every alert seismo sends to Alertmanager.
ALERTNAME = "SeismoIncident"
_VERB = {"open": "opened", "update": "updated", "resolved": "resolved"}
_ICON = {"open": ":rotating_light:", "update": ":warning:", "resolved": ":white_check_mark:"}
#: Latest epoch millisecond a change's times may hold (9999-12-31T23:59:59.999Z).
MAX_MS = 253_402_300_799_999
#: Fields every change needs, and their types (``bool`` is no ``int`` here).
REQUIRED: dict[str, type] = {
    "incident_id": str, "device_id": str, "status": str, "seq": int, "severity": str,
    "alert_count": int, "opened_at": int,
}  # fmt: skip
#: Longest text field a change may carry (characters).
MAX_TEXT = 1024
#: Most channels or top features a change may list.
MAX_ITEMS = 256


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _list_problem(change: Change, field: str) -> str | None:
    """What is wrong with ``channels`` (strings) or ``top_features`` (objects with a name)."""
    items = change.get(field)
    if items is None:
        return None
    if not isinstance(items, list) or len(items) > MAX_ITEMS:
        return f"{field} is not a list of at most {MAX_ITEMS}"
    for item in items:
        if field == "top_features":
            item = item.get("name") if isinstance(item, dict) else None
        if not isinstance(item, str) or len(item) > MAX_TEXT:
            what = "strings" if field == "channels" else "objects with a name"
            return f"{field} holds something else than {what}"
    return None


def change_problem(change: object) -> str | None:
    """Why ``change`` (a decoded incident change) cannot be delivered, or ``None``.

    Checks every field the sinks read: the :data:`REQUIRED` ones and their
    types, a known ``status``, times within year 9999, a finite
    ``max_zscore``, and lists of strings (``channels``) or of named objects
    (``top_features``).

    >>> ok = {"incident_id": "i", "device_id": "d", "status": "open", "seq": 0,
    ...       "severity": "info", "alert_count": 3, "opened_at": 0}
    >>> change_problem(ok) is None
    True
    >>> change_problem({k: v for k, v in ok.items() if k != "status"})
    'missing field status'
    >>> change_problem({**ok, "seq": "0"}), change_problem({**ok, "status": "opened"})
    ('field seq is not int', "unknown status 'opened'")
    >>> change_problem({**ok, "opened_at": 10**20}), change_problem([1])
    ('opened_at is no epoch time in ms', 'not a JSON object')
    >>> change_problem({**ok, "max_zscore": "high"}), change_problem({**ok, "channels": [1]})
    ('max_zscore is not a number', 'channels holds something else than strings')
    """
    if not isinstance(change, dict):
        return "not a JSON object"
    for field, kind in REQUIRED.items():
        if field not in change:
            return f"missing field {field}"
        value = change[field]
        if not isinstance(value, kind) or (kind is int and not _is_int(value)):
            return f"field {field} is not {kind.__name__}"
        if isinstance(value, str) and len(value) > MAX_TEXT:
            return f"field {field} is longer than {MAX_TEXT} characters"
    if change["status"] not in _VERB:
        return f"unknown status {change['status'][:40]!r}"
    for field in ("opened_at", "resolved_at"):
        ms = change.get(field)
        if ms is not None and not (_is_int(ms) and 0 <= ms <= MAX_MS):
            return f"{field} is no epoch time in ms"
    z = change.get("max_zscore")
    if z is not None and (not isinstance(z, int | float) or isinstance(z, bool)
                          or not math.isfinite(z)):  # fmt: skip
        return "max_zscore is not a number"
    return _list_problem(change, "channels") or _list_problem(change, "top_features")


_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
_CONTROLS |= {0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t", 0x2028: "\\u2028", 0x2029: "\\u2029"}


def escape_controls(text: str) -> str:
    """``text`` with its control characters (and line separators) written out.

    >>> print(escape_controls("pump-7\\n2026-01-01 ERROR forged\\x1b[31m"))
    pump-7\\n2026-01-01 ERROR forged\\x1b[31m
    """
    return text.translate(_CONTROLS)


def slack_escape(text: str) -> str:
    """``text`` safe in a Slack message: ``&``, ``<``, ``>`` escaped, control characters shown.

    >>> slack_escape("<!here> a&b\\n")
    '&lt;!here&gt; a&amp;b\\\\n'
    """
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return escape_controls(text)


def should_deliver(change: Change, updates: str) -> bool:
    """Whether a change goes to the sinks: openings and resolutions always,
    updates by policy (``all``, ``severity``: when the severity changed, ``none``),
    nothing of a silenced incident.

    >>> should_deliver({"status": "update", "severity_changed": True}, "severity")
    True
    >>> should_deliver({"status": "update", "severity_changed": False}, "severity")
    False
    >>> should_deliver({"status": "open", "silenced": True}, "all")
    False
    """
    if change.get("silenced"):
        return False
    if change["status"] != "update":
        return True
    return updates == "all" or (updates == "severity" and bool(change.get("severity_changed")))


def idempotency_key(change: Change) -> str:
    """Same for every delivery of one change, different for each change."""
    return f"{change['incident_id']}:{change['seq']}"


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """``sha256=`` and the hex HMAC-SHA256 of ``timestamp + "." + body``."""
    digest = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _summary(change: Change) -> str:
    z = change.get("max_zscore")
    top = ", ".join(f["name"] for f in change.get("top_features") or [])
    detail = f"{change['alert_count']} alerts" + (f", max z {z:g}" if z is not None else "")
    return f"{change['device_id']}: incident {_VERB[change['status']]} ({detail}; {top})"


def slack_message(change: Change) -> dict[str, Any]:
    """An incoming-webhook message for Slack (or Mattermost, Rocket.Chat...), escaped."""
    icon = _ICON[change["status"]]
    text = f"[{change['severity'].upper()}] {_summary(change)} {change['incident_id']}"
    return {"text": f"{icon} {slack_escape(text)}"}


def alertmanager_alerts(change: Change) -> list[dict[str, Any]]:
    """The body of ``POST /api/v2/alerts``: one alert; ``endsAt`` once resolved."""
    alert: dict[str, Any] = {
        "labels": {"alertname": ALERTNAME, "device_id": change["device_id"],
                   "incident_id": change["incident_id"], "severity": change["severity"],
                   "service": "seismo"},
        "annotations": {"summary": _summary(change),
                        "channels": ", ".join(change.get("channels") or []),
                        "model_version": str(change.get("model_version"))},
        "startsAt": _iso(change["opened_at"]),
    }  # fmt: skip
    if change["status"] == "resolved" and change.get("resolved_at"):
        alert["endsAt"] = _iso(change["resolved_at"])
    return [alert]
