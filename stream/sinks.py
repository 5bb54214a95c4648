"""What ``seismo notify`` sends to each sink: pure functions from an incident change.

- **webhook**: the change itself as JSON, with ``Idempotency-Key``
  (``{incident_id}:{seq}``), ``X-Seismo-Timestamp`` and, with a secret,
  ``X-Seismo-Signature: sha256=<hex>``, the HMAC-SHA256 of
  ``"{timestamp}." + body`` (verify it before trusting the body).
- **slack**: a Slack-compatible incoming-webhook message (``{"text": ...}``).
- **alertmanager**: Alertmanager's v2 API (``POST /api/v2/alerts``), one alert
  per incident labelled ``alertname="SeismoIncident"``, ``device_id``,
  ``incident_id``, ``severity``; a resolved incident carries ``endsAt``.

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
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

Change = dict[str, Any]

#: Label ``alertname`` of every alert seismo sends to Alertmanager.
ALERTNAME = "SeismoIncident"
_VERB = {"open": "opened", "update": "updated", "resolved": "resolved"}
_ICON = {"open": ":rotating_light:", "update": ":warning:", "resolved": ":white_check_mark:"}


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
    """An incoming-webhook message for Slack (or Mattermost, Rocket.Chat...)."""
    icon = _ICON[change["status"]]
    return {"text": f"{icon} [{change['severity'].upper()}] {_summary(change)} "
                    f"{change['incident_id']}"}  # fmt: skip


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
