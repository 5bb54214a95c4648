"""The README's "Your own data", run verbatim: a CSV with a time column, a device column
and five channels, through `seismo dev up`, `train`, `score`, `produce`, `tail`, `dev down`.

The commands come from README.md itself (its first ``bash`` block under "Your
own data"), so the README cannot drift from what works. Before `seismo dev
down` the test adds its own `seismo tail --json` of the alerts and the
dead-letter topic, and afterwards checks the model and `seismo evaluate` on
shuffled columns.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from seismo.models.artifact import load_artifact

pytestmark = pytest.mark.pipe

ROOT = Path(__file__).resolve().parents[1]
CHANNELS = ["temp", "humidity", "door", "compressor", "defrost"]
ROOMS = 5
T0 = 1_732_350_000  # epoch seconds
#: room-2's readings 25..29 of the live file are far off the rooms' normal.
ANOMALY_ROOM, ANOMALY_STEPS = "room-2", range(25, 30)


def readme_commands() -> list[str]:
    """The command lines of the README's "Your own data" bash block."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Your own data\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None, "README: no bash block under 'Your own data'"
    return [line for line in block.group(1).splitlines() if line.strip()]


def reading(rng: np.random.Generator) -> list[float]:
    """Five correlated channels of a cold room."""
    load, weather = rng.normal(size=2)
    return [3.5 + 0.4 * load, 80 + 3 * weather, 0.05 * abs(rng.normal()),
            4 + 1.5 * load + 0.1 * rng.normal(), 0.3 * weather + 0.05 * rng.normal()]  # fmt: skip


def write_rooms(path: Path, steps: int, seed: int, order: list[str], label: bool = False) -> dict:
    """Readings of every room at each step (time + 60 s); returns the anomalies' times."""
    rng = np.random.default_rng(seed)
    anomalies = {}
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(order + (["label"] if label else []))
        for step in range(steps):
            for room in range(ROOMS):
                device, ts = f"room-{room}", T0 + 60 * step
                values = reading(rng)
                bad = seed != 0 and device == ANOMALY_ROOM and step in ANOMALY_STEPS
                if bad:
                    values = [12.0, 40.0, 1.0, -2.0, 3.0]
                    anomalies[ts * 1000] = device
                row = {"timestamp": ts, "device_id": device}
                row.update((c, round(v, 4)) for c, v in zip(CHANNELS, values, strict=True))
                out.writerow([row[c] for c in order] + ([int(bad)] if label else []))
    return anomalies


def run_script(lines: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    script = "set -e\n" + "\n".join(lines) + "\n"
    return subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=420)  # fmt: skip


def test_readme_your_own_data_runs_verbatim_and_alerts_at_the_readings_time(tmp_path):
    """The README's commands, with a misnamed producer's events read back from the DLQ."""
    commands = readme_commands()
    assert commands[0].startswith('eval "$(seismo dev up --detach)"')
    assert commands[-1] == "seismo dev down"
    write_rooms(tmp_path / "rooms.csv", 300, seed=0, order=["timestamp", "device_id", *CHANNELS])
    live_order = ["device_id", "defrost", "temp", "timestamp", "door", "compressor", "humidity"]
    anomalies = write_rooms(tmp_path / "rooms-live.csv", 40, seed=1, order=live_order)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path / "run"), "SEISMO_METRICS_PORT": "0",
           "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}  # fmt: skip
    for name in ("SEISMO_BOOTSTRAP_SERVERS", "SEISMO_REDIS_URL", "SEISMO_INPUT_TOPIC"):
        env.pop(name, None)
    # a producer with a misnamed channel (tmp for temp): 10 dead letters, each saying so
    write_rooms(tmp_path / "typo.csv", 2, seed=2, order=["timestamp", "device_id", *CHANNELS])
    lines = (tmp_path / "typo.csv").read_text().splitlines(keepends=True)
    lines[0] = lines[0].replace(",temp,", ",tmp,")
    (tmp_path / "typo.csv").write_text("".join(lines))
    typo = ["seismo produce --topic sensor-events --data typo.csv",
            "seismo tail sensor-events.dlq --json --timeout 10 --max 10 > dlq.jsonl"]  # fmt: skip
    checks = ["seismo tail anomalies --json --timeout 5 > alerts.jsonl"]
    kill = commands.index("kill $!")
    script = [*commands[:kill], *typo, *commands[kill:-1], *checks, commands[-1]]
    done = run_script(script, tmp_path, env)
    if done.returncode != 0:  # leave nothing running
        subprocess.run(["bash", "-c", "seismo dev down"], cwd=tmp_path, env=env, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]

    artifact = load_artifact(tmp_path / "rooms-model", device="cpu")
    assert artifact.feature_names == CHANNELS  # exactly the five channels, not time or device

    alerts = [json.loads(line)["value"] for line in (tmp_path / "alerts.jsonl").read_text()
              .splitlines()]  # fmt: skip
    by_ts = {a["ts"]: a for a in alerts if a["device_id"] == ANOMALY_ROOM}
    assert set(anomalies) <= set(by_ts), (sorted(anomalies), sorted(by_ts))
    false_alerts = [a for a in alerts if a["ts"] not in anomalies]
    assert len(false_alerts) <= 2, false_alerts
    dead = [json.loads(line) for line in (tmp_path / "dlq.jsonl").read_text().splitlines()]
    assert len(dead) == 10  # only the misnamed events were dead-lettered, every one of them
    for record in dead:
        assert "unknown channel 'tmp'" in record["reason"], record
        assert "missing channel 'temp'" in record["reason"], record
    assert "published 200 events to sensor-events" in done.stdout


def test_shuffled_columns_evaluate_the_same(tmp_path):
    """`seismo train` then `seismo evaluate` on one labelled file in two column orders."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    write_rooms(tmp_path / "rooms.csv", 300, seed=0, order=["timestamp", "device_id", *CHANNELS])
    write_rooms(tmp_path / "a.csv", 40, seed=1, order=["timestamp", "device_id", *CHANNELS],
                label=True)  # fmt: skip
    shuffled = ["humidity", "device_id", "defrost", "timestamp", "compressor", "temp", "door"]
    write_rooms(tmp_path / "b.csv", 40, seed=1, order=shuffled, label=True)
    done = run_script([
        "seismo train --data rooms.csv --out model",
        "seismo evaluate --model model --data a.csv --label-column label --json > a.json",
        "seismo evaluate --model model --data b.csv --label-column label --json > b.json",
        "seismo evaluate --model model --data b.csv --label-column label --drop-columns door"
        " 2> missing.txt || true",
    ], tmp_path, env)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    a, b = (json.loads((tmp_path / f"{n}.json").read_text()) for n in "ab")
    assert a["roc_auc"] == b["roc_auc"] and a["roc_auc"] > 0.9
    assert (tmp_path / "missing.txt").read_text() == (
        "seismo: error: b.csv: no column for the model's channel 'door'\n"
    )
