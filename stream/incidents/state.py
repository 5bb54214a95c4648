"""From alerts to incidents: the per-device state machine, pure and JSON-serialisable.

A device's state is a plain dict (it lives in a Faust table and its changelog):
the arrival and event times of its latest alerts, the highest offset and the
newest event time seen per source partition (so a replayed alert, same
``alert_id`` and ``ts``, is recognised and ignored; see :func:`is_replay`), and
its open incident, if any.

- An incident **opens** when ``open_after`` alerts arrive within ``window_s``.
- Every further alert **updates** it (count, max z-score, channels, last seen).
- It **resolves** once no alert came for ``quiet_s``.

Every change is returned as an incident record (the ``incidents`` topic's
JSON); the caller publishes them. Times are the scorer's ``detected_at``
(epoch ms); ``first_seen``/``last_seen`` are the events' own ``ts``. The
caller checks each alert first (:func:`alert_problem`): the state machine
takes only alerts that passed.

Examples
--------
>>> rules = Rules(open_after=3, window_s=60, quiet_s=30)
>>> state, changes = new_state(), []
>>> for offset in range(3):
...     state, out = on_alert(state, _alert(offset, at=offset * 1000), rules)
...     changes += out
>>> [(c["status"], c["alert_count"]) for c in changes]
[('open', 3)]
>>> replayed = {**_alert(1, at=1000), "detected_at": 5000}  # offset 1 scored again
>>> on_alert(state, replayed, rules)[1]
[]
>>> state, out = on_alert(state, _alert(3, at=6000), rules)
>>> out[0]["status"], out[0]["alert_count"], out[0]["seq"]
('update', 4, 1)
>>> state, out = on_tick(state, now_ms=6000 + 30_000, rules=rules)
>>> out[0]["status"], out[0]["resolved_at"], state["incident"]
('resolved', 36000, None)
"""

from __future__ import annotations

import hashlib
import math
import sys
from dataclasses import dataclass
from typing import Any

#: Alert ids that are not ``topic:partition:offset`` are remembered this many per device.
RECENT_IDS = 256
#: Source partitions (``topic:partition``) whose highest offset a device remembers: the
#: least recently alerted are forgotten beyond this, so made-up ids cannot grow a
#: device's state (kept whole in one changelog record) past what the broker takes.
MAX_SOURCES = 64
#: Channels (feature names) kept per incident.
MAX_CHANNELS = 32
#: Longest alert id, device id, model version or feature name accepted (characters).
MAX_TEXT = 256
#: Most top features an alert may list.
MAX_FEATURES = 1024
#: Latest epoch millisecond an alert's times may hold (9999-12-31T23:59:59.999Z).
MAX_MS = 253_402_300_799_999
_FLOAT_MAX = sys.float_info.max

State = dict[str, Any]
Change = dict[str, Any]


@dataclass(frozen=True)
class Rules:
    """When incidents open and resolve, and how severe they are.

    ``critical_z``/``warning_z``: max z-score for that severity;
    ``critical_rate``/``warning_rate``: alerts per minute over the incident.
    """

    open_after: int = 3
    window_s: float = 60.0
    quiet_s: float = 120.0
    warning_z: float = 6.0
    critical_z: float = 12.0
    warning_rate: float = 10.0
    critical_rate: float = 60.0

    def __post_init__(self) -> None:
        if self.open_after < 1 or self.window_s <= 0 or self.quiet_s <= 0:
            raise ValueError("open_after >= 1, window_s > 0 and quiet_s > 0 are required")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_ms(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_MS


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _text_problem(alert: dict[str, Any], field: str, required: bool) -> str | None:
    value = alert.get(field)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        return f"{field} is {'missing' if value is None else 'not a non-empty string'}"
    return f"{field} is longer than {MAX_TEXT} characters" if len(value) > MAX_TEXT else None


def _feature_problem(feature: object) -> str | None:
    if not isinstance(feature, dict):
        return "top_features holds something else than objects"
    name = feature.get("name", feature.get("index"))
    if not (_is_int(name) or (isinstance(name, str) and len(name) <= MAX_TEXT)):
        return "a top feature has no name or index"
    if "error" in feature and not _is_number(feature["error"]):
        return "a top feature's error is not a finite number"
    return None


def alert_problem(alert: object) -> str | None:
    """Why ``alert`` (a decoded message value) cannot count towards an incident, or ``None``.

    An alert needs an ``alert_id`` and a ``device_id`` (non-empty strings), an
    epoch-ms ``detected_at`` or ``ts``; what else it carries must be of the
    type the state machine reads: ``ts`` an integer, ``zscore`` a finite
    number, ``model_version`` a string, ``top_features`` a list of objects
    with a ``name`` (or ``index``) and a finite ``error``.

    >>> alert_problem(_alert(0, at=5)) is None
    True
    >>> alert_problem({"alert_id": "t:0:1", "device_id": "d"})
    'no epoch-ms detected_at or ts'
    >>> alert_problem({**_alert(0, at=5), "device_id": 7}), alert_problem([1])
    ('device_id is not a non-empty string', 'not a JSON object')
    >>> alert_problem({**_alert(0, at=5), "top_features": [{"name": "rpm", "error": "x"}]})
    "a top feature's error is not a finite number"
    """
    if not isinstance(alert, dict):
        return "not a JSON object"
    for field in ("alert_id", "device_id"):
        problem = _text_problem(alert, field, required=True)
        if problem:
            return problem
    if not _is_ms(alert.get("detected_at") or alert.get("ts")):
        return "no epoch-ms detected_at or ts"
    if alert.get("ts") is not None and not _is_ms(alert["ts"]):
        return "ts is no epoch time in ms"
    if alert.get("zscore") is not None and not _is_number(alert["zscore"]):
        return "zscore is not a finite number"
    problem = _text_problem(alert, "model_version", required=False)
    if problem:
        return problem
    features = alert.get("top_features")
    if features is None:
        return None
    if not isinstance(features, list) or len(features) > MAX_FEATURES:
        return f"top_features is not a list of at most {MAX_FEATURES}"
    return next((p for p in map(_feature_problem, features) if p), None)


def new_state() -> State:
    """The state of a device seen for the first time."""
    return {"recent": [], "recent_ts": [], "high": {}, "high_ts": {}, "ids": [], "incident": None}


def incident_id(device_id: str, opening_alert_id: str, opening_ts: int) -> str:
    """Deterministic id: the same device and opening alert always give the same incident.

    The alert's event time is part of it: an ``alert_id`` (``topic:partition:offset``)
    comes again when the input topic starts again at offset 0 (deleted and created
    again, a broker that lost its data), and a receiver that deduplicates on the
    notifier's ``Idempotency-Key`` would drop a new incident's page as a repeat. A
    replayed alert keeps its time (the event's, or its message's Kafka timestamp).

    >>> incident_id("pump-7", "sensor-events:2:41", 1732350000000)
    'inc-9ea77a9bf8a9ab8c'
    >>> incident_id("pump-7", "sensor-events:2:41", 1732350000000) != incident_id(
    ...     "pump-7", "sensor-events:2:41", 1732360000000)
    True
    """
    key = f"{device_id}\x00{opening_alert_id}\x00{opening_ts}"
    return f"inc-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def severity(max_z: float, alert_count: int, span_s: float, rules: Rules) -> str:
    """``critical``, ``warning`` or ``info``, from the worst z-score and the alert rate.

    The rate is alerts per minute over the incident's span (at least one window).

    >>> r = Rules()
    >>> severity(4.0, 3, 10, r), severity(7.0, 3, 10, r), severity(4.0, 80, 60, r)
    ('info', 'warning', 'critical')
    """
    rate = alert_count / max(span_s, rules.window_s) * 60.0
    if max_z >= rules.critical_z or rate >= rules.critical_rate:
        return "critical"
    if max_z >= rules.warning_z or rate >= rules.warning_rate:
        return "warning"
    return "info"


def is_replay(state: State, alert_id: str, ts: int | None) -> bool:
    """Whether the alert ``alert_id`` with event time ``ts`` was seen before (and record
    it if not).

    Ids of the form ``topic:partition:offset`` (the scorer's) are replays when
    the offset is not above the highest seen for that partition and ``ts`` is not
    newer than the newest seen there: a scorer publishes a partition's alerts in
    offset order, and a replay repeats old offsets with their times. An old
    offset with a newer time is a topic that started again at offset 0 (created
    again, or a broker that lost its data): its alerts count, from there on. An
    alert without ``ts`` cannot say so (a replay would not repeat a stand-in
    time): an offset seen before is a replay.
    Other ids are looked up among the last :data:`RECENT_IDS`. Up to
    :data:`MAX_SOURCES` partitions are remembered, the least recently alerted
    forgotten first.

    >>> s = new_state()
    >>> is_replay(s, "t:0:5", 50), is_replay(s, "t:0:5", 50), is_replay(s, "t:0:4", 40)
    (False, True, True)
    >>> is_replay(s, "t:1:4", 40), is_replay(s, "t:0:0", 90), is_replay(s, "t:0:0", 90)
    (False, False, True)
    >>> is_replay(s, "custom", 1), is_replay(s, "custom", 1)
    (False, True)
    """
    source, _, offset = alert_id.rpartition(":")
    if source and offset.isdigit():
        newest = state.setdefault("high_ts", {}).get(source)
        seen = int(offset) <= state["high"].get(source, -1)
        if seen and (ts is None or newest is None or ts <= newest):
            return True
        high, high_ts = state["high"], state["high_ts"]
        high.pop(source, None)  # re-inserted last: the dicts run from least recent
        high_ts.pop(source, None)
        high[source] = int(offset)
        if ts is not None or newest is not None:  # a ts-less alert keeps the newest time
            high_ts[source] = max(t for t in (newest, ts) if t is not None)
        for stale in list(high)[: max(0, len(high) - MAX_SOURCES)]:
            del high[stale]
            high_ts.pop(stale, None)
        return False
    if alert_id in state["ids"]:
        return True
    state["ids"] = [*state["ids"][-(RECENT_IDS - 1) :], alert_id]
    return False


def on_alert(state: State, alert: dict[str, Any], rules: Rules) -> tuple[State, list[Change]]:
    """Apply one alert; return the new state and the incident changes it causes."""
    state = _copy(state)
    at = int(alert.get("detected_at") or alert["ts"])
    ts = None if alert.get("ts_source") == "clock" else alert.get("ts")  # a stand-in: no time
    if is_replay(state, str(alert["alert_id"]), None if ts is None else int(ts)):
        return state, []
    state["last_at"] = max(at, state.get("last_at") or 0)
    horizon = at - int(rules.window_s * 1000)
    when = _ts(alert, at)
    recent = [(t, e) for t, e in _recent(state) if t > horizon][-(rules.open_after - 1) :]
    recent = [*recent, (at, when)] if rules.open_after > 1 else [(at, when)]
    state["recent"], state["recent_ts"] = [t for t, _ in recent], [e for _, e in recent]
    incident = state["incident"]
    if incident is None:
        if len(recent) < rules.open_after:
            return state, []
        incident = state["incident"] = _opened(alert, at, when, len(recent),
                                               min(state["recent_ts"]))  # fmt: skip
        status = "open"
    else:
        incident["alert_count"] += 1
        incident["seq"] += 1
        status = "update"
    _absorb(incident, alert, at)
    span_s = (at - incident["opened_at"]) / 1000.0
    max_z = incident["max_zscore"] or 0.0
    before = incident.get("severity")
    incident["severity"] = severity(max_z, incident["alert_count"], span_s, rules)
    change = _change(incident, status, at)
    change["severity_changed"] = status == "update" and incident["severity"] != before
    return state, [change]


def on_tick(state: State, now_ms: int, rules: Rules) -> tuple[State, list[Change]]:
    """Resolve the open incident once ``quiet_s`` passed since its last alert."""
    incident = state.get("incident")
    if incident is None or now_ms - incident["last_alert_at"] < rules.quiet_s * 1000:
        return state, []
    state = _copy(state)
    incident = state["incident"]
    incident["seq"] += 1
    state["incident"], state["recent"], state["recent_ts"] = None, [], []
    change = _change(incident, "resolved", now_ms)
    change["severity_changed"] = False
    change["resolved_at"] = incident["last_alert_at"] + int(rules.quiet_s * 1000)
    return state, [change]


def last_alert_at(state: State) -> int:
    """When the device's newest alert was detected (0 when unknown: a state stored before
    this was kept, with no recent alert).

    >>> last_alert_at({"last_at": 5, "recent": [3]}), last_alert_at({"recent": [3, 4]})
    (5, 4)
    """
    return int(state.get("last_at") or max(state.get("recent") or [0]))


def mute(state: State, reason: str | None) -> None:
    """Mark the open incident silenced (``reason``) or not (``None``), in place."""
    if state.get("incident") is not None:
        state["incident"]["silenced"] = reason


def _ts(alert: dict[str, Any], at: int) -> int:
    """The alert's event time, or ``at`` when it has none (absent or null)."""
    ts = alert.get("ts")
    return at if ts is None else int(ts)


def _recent(state: State) -> list[tuple[int, int]]:
    """The recent alerts' ``(detected_at, ts)``; a state stored before event times were
    kept gives its ``detected_at`` for both."""
    seen, times = state["recent"], state.get("recent_ts") or []
    return list(zip(seen, times if len(times) == len(seen) else seen, strict=True))


def _opened(
    alert: dict[str, Any], at: int, when: int, count: int, first_seen: int
) -> dict[str, Any]:
    """The incident the alert detected at ``at`` (its event time ``when``) opens;
    ``first_seen``: the earliest event time of the alerts counted towards it."""
    device = str(alert["device_id"])
    return {
        "incident_id": incident_id(device, str(alert["alert_id"]), when),
        "device_id": device,
        "opened_at": at, "first_seen": first_seen, "alert_count": count,
        "max_zscore": None, "channels": [], "feature_errors": {}, "seq": 0,
        "silenced": None,
    }  # fmt: skip


def _absorb(incident: dict[str, Any], alert: dict[str, Any], at: int) -> None:
    """Fold one alert's z-score, channels and feature errors into the incident."""
    incident["last_alert_at"] = at
    incident["last_seen"] = _ts(alert, at)
    incident["model_version"] = alert.get("model_version")
    z = alert.get("zscore")
    worst = incident["max_zscore"]
    if isinstance(z, int | float) and (worst is None or z > worst):
        incident["max_zscore"] = float(z)
    errors = incident["feature_errors"]
    for feature in alert.get("top_features") or []:
        name = str(feature.get("name", feature.get("index")))
        if name not in incident["channels"] and len(incident["channels"]) < MAX_CHANNELS:
            incident["channels"].append(name)
        if name in incident["channels"]:
            total = errors.get(name, 0.0) + float(feature.get("error", 0.0))
            errors[name] = min(max(total, -_FLOAT_MAX), _FLOAT_MAX)  # finite: JSON holds it


def _change(incident: dict[str, Any], status: str, at: int) -> Change:
    """The public record of one state change (the ``incidents`` topic's JSON)."""
    errors = incident["feature_errors"]
    top = sorted(errors, key=lambda name: -errors[name])[:3]
    max_z = incident["max_zscore"]
    return {
        "incident_id": incident["incident_id"], "device_id": incident["device_id"],
        "status": status, "severity": incident.get("severity", "info"),
        "opened_at": incident["opened_at"], "resolved_at": None, "updated_at": at,
        "alert_count": incident["alert_count"],
        "max_zscore": None if max_z is None else round(max_z, 3),
        "channels": list(incident["channels"]),
        "top_features": [{"name": n, "error": round(errors[n], 6)} for n in top],
        "first_seen": incident["first_seen"], "last_seen": incident["last_seen"],
        "model_version": incident.get("model_version"), "seq": incident["seq"],
        "silenced": incident.get("silenced") is not None,
        "silence_reason": incident.get("silenced"),
    }  # fmt: skip


def _copy(state: State) -> State:
    incident = state.get("incident")
    return {
        "recent": list(state.get("recent", [])), "recent_ts": list(state.get("recent_ts", [])),
        "high": dict(state.get("high", {})), "high_ts": dict(state.get("high_ts", {})),
        **({"partition": state["partition"]} if "partition" in state else {}),
        "ids": list(state.get("ids", [])),
        "incident": None if incident is None else {
            **incident, "channels": list(incident["channels"]),
            "feature_errors": dict(incident["feature_errors"])},
    }  # fmt: skip


def _alert(offset: int, at: int, z: float = 5.0) -> dict[str, Any]:
    """A scorer-like alert of device ``d`` (for the examples)."""
    return {"alert_id": f"t:0:{offset}", "device_id": "d", "ts": at, "detected_at": at,
            "zscore": z, "model_version": "v1",
            "top_features": [{"index": 0, "name": "rpm", "error": 2.0}]}  # fmt: skip
