"""Scoring alerts against injected episodes, against a brute-force reference."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from seismo.stream.demo.detection_score import score_detections
from seismo.stream.demo.report import render_report, series_svg, split_scores, thin
from seismo.stream.demo.state import DemoState

GRACE = 3


def brute_force(labels, alerts, events):
    """Tick by tick: which (device, tick) is inside / near an episode."""
    inside, near = {}, {}
    for i, r in enumerate(labels):
        for t in range(r["first_tick"], r["last_tick"] + 1):
            inside[(r["device_id"], t)] = i
        for t in range(r["first_tick"], r["last_tick"] + 1 + GRACE):
            near[(r["device_id"], t)] = i
    detected = {inside[(d, t)] for d, t, _ in alerts if (d, t) in inside}
    true = sum((d, t) in near for d, t, _ in alerts)
    alerted = sum((d, t) in inside for d, t, _ in alerts)
    return len(detected), true, alerted, len(inside)


@st.composite
def scenario(draw):
    devices = ["a", "b"]
    labels = []
    for device in devices:
        tick = draw(st.integers(0, 5))
        for _ in range(draw(st.integers(0, 3))):
            length = draw(st.integers(1, 6))
            labels.append({"device_id": device, "kind": draw(st.sampled_from(["x", "y"])),
                           "first_tick": tick, "last_tick": tick + length - 1,
                           "start_ts": tick * 10})  # fmt: skip
            tick += length + GRACE + draw(st.integers(1, 5))  # episodes never overlap
    alerts = draw(st.lists(st.tuples(st.sampled_from(devices + ["c"]), st.integers(0, 60),
                                     st.integers(0, 1000)), max_size=30))  # fmt: skip
    return labels, alerts


@settings(max_examples=300, deadline=None)
@given(scenario())
def test_matches_the_brute_force_reference(case) -> None:
    labels, alerts = case
    score = score_detections(labels, alerts, events=100, grace=GRACE)
    detected, true, alerted, anomalous = brute_force(labels, alerts, 100)
    assert (score.detected, score.true_alerts) == (detected, true)
    assert (score.alerted_anomalous_events, score.anomalous_events) == (alerted, anomalous)
    assert score.episodes == len(labels) and score.alerts == len(alerts)
    assert sum(n for _, n in score.by_kind.values()) == len(labels)
    assert 0 <= score.precision <= 1 and 0 <= score.recall <= 1


def test_time_to_detect_uses_the_first_alert_inside_the_episode() -> None:
    labels = [{"device_id": "p", "kind": "drift", "first_tick": 100, "last_tick": 200,
               "start_ts": 10_000}]  # fmt: skip
    alerts = [("p", 150, 16_000), ("p", 120, 13_000), ("p", 90, 9_000)]
    score = score_detections(labels, alerts, events=1000)
    assert score.mean_ticks_to_detect == 20
    assert score.mean_time_to_detect_s == 3.0
    assert score.true_alerts == 2 and score.precision == 2 / 3


def test_no_alerts_and_no_episodes_are_well_defined() -> None:
    score = score_detections([], [], events=0)
    assert (score.recall, score.precision, score.f1, score.false_alert_rate) == (0, 1, 0, 0)
    assert score.to_json_dict()["by_kind"] == {}


def test_report_marks_alerts_and_episodes_and_thins_long_series() -> None:
    state = DemoState(series_points=10_000)
    rng = np.random.default_rng(0)
    for t in range(6000):
        score = 5.0 if 3000 <= t < 3010 else float(rng.uniform(0.01, 0.02))
        state.add_score({"event_id": f"p:{t}", "device_id": "p", "score": score,
                         "threshold": 0.1, "model_version": "v"})  # fmt: skip
    labels = [{"device_id": "p", "kind": "spike", "first_tick": 3000, "last_tick": 3009}]
    normal, anomalous = split_scores(state, {"p": [(3000, 3009, "spike")]})
    assert anomalous.size == 10 and normal.size == 5990 and anomalous.min() == 5.0
    s = state.series["p"]
    svg = series_svg(s.ticks, s.scores, s.thresholds, [(3000, 3009, "spike")], title="p <1>")
    assert svg.count("<circle") == 10  # every alert is drawn, however thin the line
    assert "p &lt;1&gt;" in svg
    assert len(thin(6000, s.scores > s.thresholds)) < 2000
    page = render_report(title="t", summary={"recall": 1.0}, details={}, state=state,
                         labels=labels)  # fmt: skip
    assert page.count("<svg") == 2 and "spike ticks 3000-3009" in page
