"""The incident state machine (seismo.stream.incidents.state): properties against a naive model."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from seismo.stream.incidents.state import Rules, new_state, on_alert, on_tick

RULES = Rules(open_after=3, window_s=10, quiet_s=30)


def alert(offset: int, at_ms: int, z: float = 5.0, partition: int = 0) -> dict:
    return {"alert_id": f"ev:{partition}:{offset}", "device_id": "d", "ts": at_ms,
            "detected_at": at_ms, "zscore": z, "model_version": "v",
            "top_features": [{"index": 0, "name": "a", "error": 1.0}]}  # fmt: skip


def run(alerts: list[dict]) -> list[dict]:
    state, out = new_state(), []
    for a in alerts:
        state, changes = on_alert(state, a, RULES)
        state = orjson.loads(orjson.dumps(state))  # what the Faust table stores and restores
        out += changes
    return out


gaps = st.lists(st.integers(min_value=0, max_value=15_000), min_size=1, max_size=40)


@settings(max_examples=200)
@given(gaps=gaps, replays=st.lists(st.integers(min_value=0, max_value=39), max_size=20))
def test_replayed_alerts_change_nothing(gaps, replays):
    times = [sum(gaps[: i + 1]) for i in range(len(gaps))]
    alerts = [alert(i, t) for i, t in enumerate(times)]
    replayed = list(alerts)
    for r in sorted(replays, reverse=True):  # re-deliver an earlier alert later on
        if r < len(alerts):
            replayed.insert(min(len(replayed), r + 3), alerts[r])
    assert run(replayed) == run(alerts)


@settings(max_examples=200)
@given(gaps=gaps)
def test_opens_exactly_when_open_after_alerts_fall_within_the_window(gaps):
    times = [sum(gaps[: i + 1]) for i in range(len(gaps))]
    changes = run([alert(i, t) for i, t in enumerate(times)])
    # naive: the first i where the alerts i-2..i span less than the window
    first = next((i for i in range(2, len(times)) if times[i] - times[i - 2] < 10_000), None)
    if first is None:
        assert changes == []
        return
    assert changes[0]["status"] == "open" and changes[0]["updated_at"] == times[first]
    assert all(c["status"] == "update" for c in changes[1:])  # never resolved without a tick
    assert [c["alert_count"] for c in changes] == list(range(3, 3 + len(changes)))
    assert len(changes) == len(times) - first


def test_resolves_after_the_quiet_period_and_reopens_as_a_new_incident():
    state, opened = new_state(), []
    for i in range(3):
        state, out = on_alert(state, alert(i, 1000 * i), RULES)
        opened += out
    assert on_tick(state, 2000 + 29_999, RULES)[1] == []
    state, out = on_tick(state, 2000 + 30_000, RULES)
    assert out[0]["status"] == "resolved" and out[0]["resolved_at"] == 32_000
    later = []
    for i in range(3, 6):
        state, changes = on_alert(state, alert(i, 100_000 + i), RULES)
        later += changes
    assert later[0]["status"] == "open" and later[0]["alert_count"] == 3
    assert later[0]["incident_id"] != opened[0]["incident_id"]


def test_severity_rises_with_the_z_score_and_the_rate_and_is_flagged_when_it_changes():
    rules = Rules(open_after=3, window_s=60, quiet_s=30)  # 3 to 6 alerts a minute: no rate
    state = new_state()
    changes = []
    for i, z in enumerate([4.0, 4.0, 4.0, 7.0, 13.0, 5.0]):
        state, out = on_alert(state, alert(i, 100 * i, z=z), rules)
        changes += out
    assert [c["severity"] for c in changes] == ["info", "warning", "critical", "critical"]
    assert [c["severity_changed"] for c in changes] == [False, True, True, False]
    assert changes[-1]["max_zscore"] == 13.0
    for i in range(6, 60):  # 60 alerts within the minute: critical by rate alone
        state, out = on_alert(state, alert(i, 100 * i, z=1.0), Rules(critical_z=99))
    assert out[0]["severity"] == "critical"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=3),
    max_leaves=8,
)  # fmt: skip
def field(*good: object) -> st.SearchStrategy:
    """A field's value: mostly a good one, often anything JSON holds."""
    return st.sampled_from(good) | st.sampled_from(good) | json_values


feature = st.fixed_dictionaries(
    {"name": field("rpm", "temp"), "error": field(0.5, 3, 1e308)},
    optional={"index": field(0, 2)},
)  # fmt: skip
alert_fields = st.fixed_dictionaries(
    {"alert_id": field("t:0:1", "t:0:2", "t:1:1", "custom"), "device_id": field("d", "e"),
     "detected_at": field(1_000, 90_000, 0)},
    optional={"ts": field(500, 1_000), "zscore": field(4.5, 40, -1), "model_version":
              field("v1"), "top_features": st.lists(feature, max_size=3) | json_values},
)  # fmt: skip


@settings(max_examples=500)
@given(alerts=st.lists(alert_fields, min_size=1, max_size=5))
def test_an_alert_that_passes_the_check_never_makes_the_state_machine_raise(alerts):
    """What one message can hold: either refused with a reason, or applied without error."""
    from seismo.stream.incidents.state import alert_problem

    state = new_state()
    for a in alerts:
        problem = alert_problem(a)
        if problem is not None:
            assert isinstance(problem, str) and problem
            continue
        state, _changes = on_alert(state, a, Rules(open_after=1))
        state = orjson.loads(orjson.dumps(state))
        state, _changes = on_tick(state, 2**42, Rules(open_after=1))


def test_feature_errors_stay_finite_and_a_null_ts_means_the_detection_time():
    """Found by the property above: an overflowing sum (JSON writes inf as null) and ts null."""
    huge = {"alert_id": "t:0:1", "device_id": "d", "detected_at": 1000, "ts": None,
            "top_features": [{"name": "rpm", "error": 1e308}, {"name": "rpm", "error": 1e308}]}
    state, changes = on_alert(new_state(), huge, Rules(open_after=1))
    state = orjson.loads(orjson.dumps(state))
    assert changes[0]["first_seen"] == 1000 and changes[0]["top_features"][0]["error"] < 2e308
    state, changes = on_tick(state, 10**9, Rules(open_after=1))
    assert changes[0]["status"] == "resolved"


def test_a_topic_that_starts_again_at_offset_0_opens_an_incident_of_another_id():
    """The same alert ids, later (the input topic created again, or a broker that lost its
    data): an incident id made of the device and the opening alert's id only came again,
    and so did the notifier's Idempotency-Key, {incident_id}:{seq} (an operator helper's
    finding): a receiver that drops repeated keys would have dropped the new page."""
    first, again = run([alert(i, 1000 * i) for i in range(3)]), run(
        [alert(i, 9_000_000 + 1000 * i) for i in range(3)]
    )
    assert first[0]["status"] == again[0]["status"] == "open"
    assert first[0]["incident_id"] != again[0]["incident_id"]
    assert run([alert(i, 1000 * i) for i in range(3)]) == first, "a replay: the same id"


def test_first_seen_is_the_event_time_of_the_first_alert_counted():
    """An incident opens at its third alert; its first_seen was that alert's event time,
    not the first of the three (an operator helper's finding)."""
    alerts = [dict(alert(i, 10_000 + 1000 * i), ts=500 + 1000 * i) for i in range(4)]
    changes = run(alerts)
    assert changes[0]["status"] == "open" and changes[0]["first_seen"] == 500
    assert changes[-1]["first_seen"] == 500 and changes[-1]["last_seen"] == 3500
    stored_before = {"recent": [10_000, 11_000], "high": {"ev:0": 1}, "ids": [],
                     "incident": None}  # fmt: skip
    state, opened = on_alert(stored_before, alert(2, 12_000), RULES)
    assert opened[0]["first_seen"] == 10_000, "a state without event times: detected_at"


def test_a_backlog_is_one_incident_timed_on_its_partitions_stream_clock():
    """The app's steps (seismo.stream.incidents.app: take_alert for each alert read, the
    timer's quiet_ones between them) over a backlog: alerts 4 s apart, detected an hour
    ago, read 5 ms apart. Timed on the wall clock, every tick resolved the incident (an
    operator helper's finding); on the stream clock the backlog is one incident, which
    resolves once the partition stays quiet for the quiet period."""
    from seismo.stream.incidents.app import quiet_ones, take_alert
    from seismo.stream.incidents.stream_clock import StreamClock

    wall = [3_600_000 + 50_000]
    on_the_wall, state = [], new_state()
    for i in range(12):
        state, changes = on_alert(state, alert(i, 4_000 * i), RULES)
        state, resolved = on_tick(state, wall[0], RULES)
        on_the_wall += [c["status"] for c in changes + resolved]
    assert on_the_wall.count("open") == 4 and on_the_wall.count("resolved") == 4

    clock, states, timed = StreamClock(lambda: wall[0]), {b"d": None}, []
    for i in range(12):
        wall[0] += 5
        states[b"d"], changes = take_alert(states[b"d"], alert(i, 4_000 * i), 0, clock, RULES)
        timed += changes
        for key, new, resolved in quiet_ones(list(states.items()), clock, RULES):
            states[key] = new
            timed += resolved
    wall[0] += 31_000  # the backlog is read; the partition stays quiet
    timed += [c for _, _, changes in quiet_ones(list(states.items()), clock, RULES)
              for c in changes]  # fmt: skip
    assert [c["status"] for c in timed] == ["open"] + ["update"] * 9 + ["resolved"]
    assert timed[-1]["alert_count"] == 12 and timed[-1]["resolved_at"] == 44_000 + 30_000


def test_incidents_restored_after_a_restart_get_a_quiet_period_from_their_last_alert():
    """After a restart the table's states come back with their open incidents, and no
    alert of their partition was read yet: on the wall clock the first tick resolved
    them all, before the backlog behind them was read (a reviewer's finding). The
    partition's clock resumes at the newest last alert among them."""
    from seismo.stream.incidents.app import quiet_ones, take_alert
    from seismo.stream.incidents.stream_clock import StreamClock

    wall = [10_000]
    before = StreamClock(lambda: wall[0])
    state = None
    for i in range(3):
        state, _ = take_alert(state, alert(i, 1000 * i), 2, before, RULES)
    restored = orjson.loads(orjson.dumps(state))  # from the changelog, in a restarted app
    wall[0] = 7_200_000  # two hours later
    clock = StreamClock(lambda: wall[0])
    assert quiet_ones([(b"d", restored)], clock, RULES) == []
    wall[0] += 29_000
    assert quiet_ones([(b"d", restored)], clock, RULES) == []
    wall[0] += 1_000  # the quiet period since the restart, with no alert read
    (_, _, changes), = quiet_ones([(b"d", restored)], clock, RULES)
    assert changes[0]["status"] == "resolved" and changes[0]["resolved_at"] == 2000 + 30_000



def test_alerts_of_a_topic_that_started_again_count_in_a_state_that_survived():
    """The app's state survives the input topic starting again at offset 0: the new
    alerts' offsets are ones seen before, with newer times. They were dropped as replays
    (an operator helper's finding and a reviewer's): they count, and a true replay (an
    offset seen with its time) still does not."""
    state, before = new_state(), []
    for i in range(10):
        state, changes = on_alert(state, alert(i, 1000 * i), RULES)
        before += changes
    state, resolved = on_tick(state, 9000 + 30_000, RULES)
    assert resolved[0]["status"] == "resolved"
    day = 86_400_000
    again = []
    for i in range(5):
        state, changes = on_alert(state, alert(i, day + 1000 * i), RULES)
        again += changes
    assert [c["status"] for c in again] == ["open", "update", "update"]
    assert again[0]["incident_id"] != before[0]["incident_id"]
    assert on_alert(state, alert(3, day + 3000), RULES)[1] == [], "a replay of the new life"


def test_an_alert_without_ts_seen_before_is_a_replay_whatever_its_detection_time():
    """Without ``ts`` a replayed alert carries only a new detected_at: it must not pass
    for a topic that started again (a reviewer's finding)."""
    state = new_state()
    for i in range(3):
        untimed = {k: v for k, v in alert(i, 1000 * (i + 1)).items() if k != "ts"}
        state, _ = on_alert(state, untimed, RULES)
    replayed = {k: v for k, v in alert(1, 90_000).items() if k != "ts"}
    assert on_alert(state, replayed, RULES)[1] == []


def test_made_up_alert_ids_cannot_grow_a_devices_state_past_what_the_broker_takes():
    """Every prefix of an ``alert_id`` before its last ``:`` was a source whose highest
    offset the state kept, without bound: 2 000 alerts for one device, each with another
    247-character prefix, made its state a record over 1 MB, which the changelog's
    producer refused, crashing the app at every restart (a red-team finding). The least
    recently alerted sources are forgotten beyond MAX_SOURCES; the newest still tell
    replays."""
    from seismo.stream.incidents.state import MAX_SOURCES

    state = new_state()
    for i in range(2000):
        crafted = {**alert(1, 1000 + i), "alert_id": f"s{i:06d}{'q' * 240}:0:1"}
        state, _ = on_alert(state, crafted, RULES)
        state = orjson.loads(orjson.dumps(state))
    assert len(state["high"]) == len(state["high_ts"]) == MAX_SOURCES
    assert len(orjson.dumps(state)) < 100_000
    newest = {**alert(1, 1000 + 1999), "alert_id": f"s{1999:06d}{'q' * 240}:0:1"}
    assert on_alert(state, newest, RULES)[1] == [], "the newest source still tells a replay"
    for i in range(3):  # a source alerted again is the most recent: it is kept
        state, _ = on_alert(state, alert(i, 10_000 + i), RULES)
    for i in range(MAX_SOURCES - 1):
        crafted = {**alert(1, 20_000 + i), "alert_id": f"x{i}:0:1"}
        state, _ = on_alert(state, crafted, RULES)
    assert on_alert(state, alert(2, 10_002), RULES)[1] == []


def test_an_alert_detected_in_the_future_does_not_hold_its_incident_open():
    """``detected_at`` in year 9999 passed the check, became the incident's last alert,
    and the quiet period never came: the device was never paged again (a red-team
    finding). Detected after the wall clock's now, it counts as detected now."""
    from seismo.stream.incidents.app import quiet_ones, take_alert
    from seismo.stream.incidents.stream_clock import StreamClock

    wall = [1_000_000]
    clock = StreamClock(lambda: wall[0])
    state = None
    for i in range(3):
        state, _ = take_alert(state, {**alert(i, wall[0]), "detected_at": 253402300799000},
                              0, clock, RULES)  # fmt: skip
    assert state["incident"]["last_alert_at"] == 1_000_000
    wall[0] += 30_000
    (_, _, changes), = quiet_ones([(b"d", state)], clock, RULES)
    assert changes[0]["status"] == "resolved"


def test_an_old_alert_read_first_after_a_restart_does_not_hold_restored_incidents_back():
    """The first alert read on a partition after a restart set its stream clock, however
    old (``detected_at`` 1 from an alerts-topic producer): restored incidents then waited
    for the partition's next alert to resolve (a red-team suspicion, confirmed here)."""
    from seismo.stream.incidents.app import quiet_ones, take_alert
    from seismo.stream.incidents.stream_clock import StreamClock

    wall = [10_000]
    state = None
    for i in range(3):
        state, _ = take_alert(state, alert(i, 1000 * i), 2, StreamClock(lambda: wall[0]), RULES)
    restored = orjson.loads(orjson.dumps(state))
    wall[0] = 7_200_000
    clock = StreamClock(lambda: wall[0])
    assert quiet_ones([(b"d", restored)], clock, RULES) == []
    take_alert(None, {**alert(0, 1), "device_id": "other", "detected_at": 1}, 2, clock, RULES)
    wall[0] += 30_000
    (_, _, changes), = quiet_ones([(b"d", restored)], clock, RULES)
    assert changes[0]["status"] == "resolved"


def test_a_replayed_alert_whose_ts_was_the_scorers_clock_is_not_counted_again():
    """An event without a time of its own (no ts, a Kafka timestamp in microseconds) is
    stamped with the scorer's clock; its replay carries a newer stand-in, which read as a
    topic that started again: two alerts and their replay opened an incident (a red-team
    finding). Marked ``ts_source: clock``, such a time says nothing: a seen offset is a
    replay."""
    state, changes = new_state(), []
    for i in range(2):
        state, out = on_alert(state, {**alert(i, 1000 * i), "ts_source": "clock"}, RULES)
        changes += out
    for i in range(2):  # within the window: counted, they would open one (open_after 3)
        state, out = on_alert(state, {**alert(i, 3000 + i), "ts_source": "clock"}, RULES)
        changes += out
    assert changes == []


def test_idle_devices_are_forgotten_after_forget_after_or_beyond_max_devices():
    """Nothing ever deleted a device's state: every fresh device id that alerted once was
    kept for good (a red-team finding: about 1 KB each, and the timer scanned them all
    every second). Idle ones go after --forget-after on their partition's stream clock,
    and beyond --max-devices the longest idle go first; an open incident stays."""
    from seismo.stream.incidents.app import forgettable, take_alert
    from seismo.stream.incidents.stream_clock import StreamClock

    wall = [1_000_000]
    clock = StreamClock(lambda: wall[0])
    states = {}
    for i in range(3000):  # one alert each: no incident
        key = f"fresh-{i}".encode()
        states[key], _ = take_alert(None, {**alert(i, wall[0] + i), "device_id": key.decode()},
                                    i % 4, clock, RULES)  # fmt: skip
    held = None
    for i in range(3):
        held, _ = take_alert(held, alert(10_000 + i, wall[0] + 5000 + i), 0, clock, RULES)
    states[b"d"] = held
    assert held["incident"] is not None
    day = 86_400_000
    assert forgettable(list(states.items()), clock, day, max_devices=10_000) == []
    capped = forgettable(list(states.items()), clock, day, max_devices=1000)
    assert len(capped) == 2001 and capped[:2] == [b"fresh-0", b"fresh-1"]  # the longest idle
    assert b"d" not in capped
    wall[0] += day
    gone = forgettable(list(states.items()), clock, day, max_devices=10_000)
    assert len(gone) == 3000 and b"d" not in gone
    assert forgettable(list(states.items()), clock, 0, max_devices=10_000) == []  # never


def test_an_alert_without_ts_keeps_the_newest_time_of_its_partition():
    """A ts-less alert (or one stamped by the scorer's clock) erased its partition's
    newest event time, so the alerts of a topic that started again then passed for
    replays (a reviewer's finding)."""
    from seismo.stream.incidents.state import is_replay

    state = new_state()
    assert not is_replay(state, "t:0:10", 1000) and not is_replay(state, "t:0:11", None)
    assert state["high_ts"] == {"t:0": 1000}
    assert not is_replay(state, "t:0:0", 5000), "a topic that started again"
