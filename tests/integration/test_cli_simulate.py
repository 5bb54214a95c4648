"""``seismo simulate`` against a real broker: events follow the contract, labels match them."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import numpy as np
import orjson
import pytest

from seismo.models.data import load_table
from seismo.stream.sim.plant import CHANNELS
from seismo.stream.sim.simulation import event_tick
from tests.kafka_tools import create_topics, read_topic
from tests.pipes import run_seismo

pytestmark = [pytest.mark.kafka, pytest.mark.pipe]


def test_simulate_publishes_events_and_the_labels_of_every_episode(
    kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The broker from the environment, as `eval "$(seismo dev up --detach)"` leaves it
    # (every other command reads it; simulate did not).
    monkeypatch.setenv("SEISMO_BOOTSTRAP_SERVERS", kafka_bootstrap)
    tag = uuid.uuid4().hex[:8]
    events_topic, labels_topic = f"sim-{tag}", f"sim-labels-{tag}"
    create_topics(kafka_bootstrap, {events_topic: 2, labels_topic: 1})
    labels_file = tmp_path / "labels.jsonl"
    done = run_seismo(
        "simulate", "--topic", events_topic,
        "--labels-topic", labels_topic, "--labels-file", str(labels_file), "--devices", "5",
        "--rate", "2500", "--duration", "4", "--anomaly-rate", "0.1", "--seed", "3",
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    totals = r"published (\d+) events \((\d+) inside (\d+) anomaly episodes\)"
    match = re.search(totals, done.stdout)
    assert match, done.stdout
    n_events, n_anomalous, n_episodes = map(int, match.groups())
    assert n_events > 1000 and n_episodes > 0

    events = read_topic(kafka_bootstrap, events_topic, until=lambda r: len(r) >= n_events,
                        timeout_s=60, idle_s=1.0)  # fmt: skip
    assert len(events) == n_events
    seen: set[tuple[str, int]] = set()
    for record in events:
        event = orjson.loads(record.value)
        assert record.key.decode() == event["device_id"]
        assert len(event["values"]) == len(CHANNELS) and isinstance(event["ts"], int)
        seen.add((event["device_id"], event_tick(event["id"])))
    assert len(seen) == n_events  # one event per device and tick

    labels = read_topic(kafka_bootstrap, labels_topic, until=lambda r: len(r) >= n_episodes,
                        timeout_s=30, idle_s=1.0)  # fmt: skip
    from_topic = [orjson.loads(r.value) for r in labels]
    from_file = [orjson.loads(line) for line in labels_file.read_bytes().splitlines()]
    assert from_topic == from_file and len(from_file) == n_episodes
    labelled = {(r["device_id"], t) for r in from_file
                for t in range(r["first_tick"], r["last_tick"] + 1)}  # fmt: skip
    assert labelled <= seen and len(labelled) == n_anomalous


def test_write_normal_gives_a_training_csv_with_channel_names(tmp_path: Path) -> None:
    out = tmp_path / "normal.csv"
    done = run_seismo("simulate", "--write-normal", str(out), "--devices", "4", "--days", "0.5",
                      "--day-ticks", "200", timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    table = load_table(out)
    assert table.feature_names == list(CHANNELS)
    assert table.x.shape == (400, len(CHANNELS)) and np.isfinite(table.x).all()


def test_bad_simulate_flags_are_one_line_errors() -> None:
    done = run_seismo("simulate", "--kinds", "spike,meteor", "--duration", "1", timeout=60)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "meteor" in lines[0] and "known:" in lines[0], lines
