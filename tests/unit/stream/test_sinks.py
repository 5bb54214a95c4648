"""What seismo notify sends (seismo.stream.incidents.sinks): a change either passes the check and
renders for every sink, or is refused with a reason; Slack text and log lines
carry no markup or control character of the input."""

from __future__ import annotations

import unicodedata

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from seismo.stream.config.incident_settings import NotifySettings
from seismo.stream.config.loader import load
from seismo.stream.incidents.notify import build_request
from seismo.stream.incidents.sinks import (
    alertmanager_alerts,
    change_problem,
    escape_controls,
    slack_escape,
    slack_message,
)

GOOD = {"incident_id": "inc-1", "device_id": "pump-7", "status": "open", "seq": 0,
        "severity": "warning", "alert_count": 3, "opened_at": 1_764_547_200_000}  # fmt: skip
SETTINGS = load(NotifySettings, {"webhook_url": "http://h/x", "slack_url": "https://s/y",
                                 "alertmanager_url": "http://am:9093"}, env={})  # fmt: skip

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=3),
    max_leaves=8,
)  # fmt: skip
FIELDS = ["incident_id", "device_id", "status", "seq", "severity", "alert_count", "opened_at",
          "resolved_at", "max_zscore", "channels", "top_features", "silenced"]  # fmt: skip


@settings(max_examples=500)
@given(
    dropped=st.sets(st.sampled_from(FIELDS), max_size=2),
    replaced=st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=2),
    status=st.sampled_from(["open", "update", "resolved"]),
)
def test_a_change_is_either_refused_with_a_reason_or_renders_for_every_sink(
    dropped, replaced, status
):
    change = {k: v for k, v in {**GOOD, "status": status}.items() if k not in dropped}
    change.update(replaced)
    change = orjson.loads(orjson.dumps(change))  # what arrives from the topic
    problem = change_problem(change)
    if problem is not None:
        assert isinstance(problem, str) and "\n" not in problem
        return
    slack_message(change)
    alertmanager_alerts(change)
    for sink in SETTINGS.sinks:
        build_request(sink, change, SETTINGS)


def test_each_missing_required_field_is_named():
    for field in ("incident_id", "device_id", "status", "seq", "severity", "alert_count",
                  "opened_at"):  # fmt: skip
        broken = {k: v for k, v in GOOD.items() if k != field}
        assert change_problem(broken) == f"missing field {field}"
    assert change_problem({**GOOD, "alert_count": True}) == "field alert_count is not int"


@given(st.text())
def test_escaped_text_has_no_control_character_and_slack_text_no_markup(text):
    for escaped in (escape_controls(text), slack_escape(text)):
        assert not any(unicodedata.category(c) == "Cc" or c in "\u2028\u2029" for c in escaped)
    slack = slack_escape(text)
    assert "<" not in slack and ">" not in slack
    assert slack.replace("&amp;", "").replace("&lt;", "").replace("&gt;", "").count("&") == 0


def test_a_device_id_cannot_mention_everyone_or_link_in_slack():
    text = slack_message({**GOOD, "device_id": "<!everyone> <http://x|y> a&b\r\nfake"})["text"]
    assert "&lt;!everyone&gt; &lt;http://x|y&gt; a&amp;b\\r\\nfake: incident opened" in text
