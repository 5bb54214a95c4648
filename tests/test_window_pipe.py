"""End to end with windows: ``seismo train --window`` on a series CSV, ``seismo score --window``,
and a restarted scorer that rebuilds its windows from the partition's tail.

Three devices publish two channels that turn together (rpm and temperature on
a circle). One device's readings freeze for a while: every single reading is
still a normal one, only the shape over time is wrong, so only a window
model can see it. Against the real broker and Redis.
"""

from __future__ import annotations

import csv
import uuid
from datetime import datetime, timedelta

import numpy as np
import pytest

from seismo.stream.scoring.codec import encode_event
from tests.kafka_tools import create_topics, produce_values, read_topic
from tests.pipes import run_seismo, running, start_seismo, stop

pytestmark = [pytest.mark.kafka, pytest.mark.redis, pytest.mark.pipe]

WINDOW, PER_DEVICE = 8, 300
FROZEN = range(150, 190)  # pump-2's readings stick here


def reading(i: int, phase: float) -> list[float]:
    return [round(float(np.sin(i / 6 + phase)), 4), round(float(np.cos(i / 6 + phase)), 4)]


def test_a_frozen_sensor_is_caught_by_its_window_and_named_in_the_alert(
    kafka_bootstrap, redis_url, tmp_path
):
    start = datetime(2026, 1, 1)
    series = tmp_path / "normal.csv"
    with series.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["timestamp", "rpm", "temp"])
        for i in range(3000):
            out.writerow([(start + timedelta(seconds=i)).isoformat(), *reading(i, 0.0)])
    model = tmp_path / "model"
    trained = run_seismo("train", "--data", str(series), "--out", str(model), "--arch", "dense",
                         "--window", str(WINDOW), "--epochs", "60", "--train-share", "1",
                         "--seed", "0", timeout=300)  # fmt: skip
    assert trained.returncode == 0, trained.stderr

    tag = uuid.uuid4().hex[:8]
    topics = {k: f"{k}-{tag}" for k in ("events", "alerts", "dlq")}
    create_topics(kafka_bootstrap, {topics["events"]: 2, topics["alerts"]: 1, topics["dlq"]: 1})
    messages = []
    for i in range(PER_DEVICE):
        for d, phase in enumerate((0.0, 1.0, 2.0)):
            device = f"pump-{d}"
            values = reading(i, phase)
            if device == "pump-2" and i in FROZEN:
                values = reading(FROZEN.start, phase)
            ts = int((start + timedelta(seconds=i)).timestamp() * 1000)
            messages.append((device.encode(), encode_event(device, values, ts=ts,
                                                           event_id=f"{device}-{i}")))
    produce_values(kafka_bootstrap, topics["events"], messages)

    log = tmp_path / "scorer.log"
    score_args = [
        "score", "--model", str(model), "--bootstrap-servers", kafka_bootstrap,
        "--redis-url", redis_url, "--redis-prefix", f"w-{tag}", "--input-topic", topics["events"],
        "--alerts-topic", topics["alerts"], "--dlq-topic", topics["dlq"], "--group-id", f"g-{tag}",
        "--window", str(WINDOW), "--metrics-port", "0", "--min-samples", "100000",
        "--kafka-config", "session.timeout.ms=6000",
    ]  # fmt: skip
    proc = start_seismo(*score_args, log=log)
    try:
        alive = running(proc, log)
        alerts = read_topic(kafka_bootstrap, topics["alerts"], timeout_s=60, idle_s=3.0,
                            until=lambda r: alive() or len(r) >= 5)  # fmt: skip
    finally:
        code = stop(proc)
    assert code == 0, log.read_text()[-3000:]
    records = [a.json() for a in alerts]
    assert records, "the frozen readings raised no alert"
    assert {r["device_id"] for r in records} == {"pump-2"}, records[:3]
    steps = [int(r["event_id"].split("-")[-1]) for r in records]
    # a window holds the freeze from its second frozen reading on, until 8 readings after it
    assert all(FROZEN.start < s < FROZEN.stop + WINDOW for s in steps), steps
    first = records[0]
    assert first["window"]["size"] == WINDOW and first["window"]["stride"] == 1
    span = first["window"]["end_ts"] - first["window"]["start_ts"]
    assert span == (WINDOW - 1) * 1000, first["window"]
    assert {c["name"] for c in first["top_channels"]} == {"rpm", "temp"}
    print(f"\nfrozen pump-2: {len(records)} alerts, at readings {steps[0]}..{steps[-1]}"
          f" of the freeze {FROZEN.start}..{FROZEN.stop - 1}; no alert for the other pumps")

    # A new scorer of the group rebuilds the windows from what came before its
    # committed offsets: pump-1 freezes at the first new reading, and the alert
    # comes before 8 new readings could have filled an empty window.
    more = []
    for i in range(PER_DEVICE, PER_DEVICE + 40):
        for d, phase in enumerate((0.0, 1.0, 2.0)):
            device = f"pump-{d}"
            values = reading(PER_DEVICE if device == "pump-1" else i, phase)
            ts = int((start + timedelta(seconds=i)).timestamp() * 1000)
            more.append((device.encode(), encode_event(device, values, ts=ts,
                                                       event_id=f"{device}-{i}")))
    produce_values(kafka_bootstrap, topics["events"], more)
    proc = start_seismo(*score_args, log=log)
    try:
        alive = running(proc, log)
        alerts = read_topic(kafka_bootstrap, topics["alerts"], timeout_s=60, idle_s=3.0,
                            until=lambda r: alive() or len(r) >= len(records) + 3)  # fmt: skip
    finally:
        code = stop(proc)
    assert code == 0, log.read_text()[-3000:]
    later = [a.json() for a in alerts][len(records):]
    assert {r["device_id"] for r in later} == {"pump-1"}, later[:3]
    first_step = min(int(r["event_id"].split("-")[-1]) for r in later)
    assert first_step < PER_DEVICE + WINDOW - 1, first_step
    assert "device windows rebuilt from 900 earlier messages" in log.read_text()
    print(f"restarted scorer: windows rebuilt from 900 messages; pump-1 frozen from reading"
          f" {PER_DEVICE}, first alert at reading {first_step}")
