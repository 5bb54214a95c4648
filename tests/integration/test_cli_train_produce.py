"""`seismo train` and `seismo produce` run as subprocesses, checked through what they write.

Training is checked through the artifact's ``config.json``: feature names, row
counts, and scaler means that show which rows and columns were used. Producing
is checked by reading the topic back from a real broker.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from seismo.stream.local.embedded import free_port
from tests.kafka_tools import Record, create_topics, read_topic
from tests.pipes import run_seismo, seismo_command, start_seismo

#: Hard bound on each subprocess: a hang fails the test instead of blocking it.
RUN_TIMEOUT_S = 120.0
#: Column means far apart, so the scaler shows which column went where.
MEANS = np.array([10.0, -50.0, 300.0, 0.0], dtype=np.float32)
N_ROWS = 600


def normal_rows(n: int, seed: int) -> np.ndarray:
    """``(n, 4)`` float32 rows around :data:`MEANS` with unit spread."""
    rng = np.random.default_rng(seed)
    return (MEANS + rng.normal(size=(n, MEANS.size))).astype(np.float32)


def train(data: Path, out: Path, *extra: str) -> dict:
    """Run `seismo train` (3 epochs) and return the artifact's config.json."""
    done = run_seismo(
        "train", "--data", str(data), "--out", str(out), "--epochs", "3", "--seed", "0", *extra,
        timeout=RUN_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    return json.loads((out / "config.json").read_text())


def assert_one_line_error(done, expected: str) -> None:
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("seismo: error:"), done.stderr[-3000:]
    assert expected in lines[0], lines[0]


def assert_self_describing(config: dict, names: list[str]) -> None:
    assert config["feature_names"] == names
    assert config["model"]["n_features"] == len(names)
    assert len(config["scaler"]["mean"]) == len(config["scaler"]["scale"]) == len(names)
    # the default architecture: a VAE scored by its reconstruction (docs/protocol.md)
    assert config["version"].startswith("vae-") and config["created_at"]
    assert config["model"]["score"] == "mse"
    assert {"mean", "std"} <= set(config["calibration"])
    assert config["training"]["summary"]["epochs_run"] >= 1


def trained_rows(config: dict) -> int:
    summary = config["training"]["summary"]
    assert summary["n_train"] + summary["n_val"] == config["training"]["window"]["rows"]
    return config["training"]["window"]["rows"]


@pytest.fixture
def labelled_npz(tmp_path: Path) -> tuple[Path, int]:
    """600 rows, 60 of them labelled 1 and shifted by +1000 in every column."""
    x = normal_rows(N_ROWS, seed=1)
    y = np.zeros(N_ROWS, dtype=np.int64)
    y[::10] = 1
    x[y == 1] += 1000.0
    path = tmp_path / "labelled.npz"
    np.savez(path, X=x, y=y)
    return path, int(y.sum())


def test_train_npz_exclude_labelled_drops_the_labelled_rows(labelled_npz, tmp_path):
    data, n_labelled = labelled_npz
    config = train(data, tmp_path / "model", "--exclude-labelled")

    assert_self_describing(config, ["f0", "f1", "f2", "f3"])
    assert trained_rows(config) == N_ROWS - n_labelled
    assert config["training"]["window"]["rows_excluded"] == n_labelled
    np.testing.assert_allclose(config["scaler"]["mean"], MEANS, atol=0.3)


def test_train_npz_ignores_y_without_exclude_labelled(labelled_npz, tmp_path):
    data, n_labelled = labelled_npz
    config = train(data, tmp_path / "model")

    assert trained_rows(config) == N_ROWS
    assert config["training"]["window"]["rows_excluded"] == 0
    shifted = MEANS + 1000.0 * n_labelled / N_ROWS
    np.testing.assert_allclose(config["scaler"]["mean"], shifted, atol=40)
    assert min(np.subtract(config["scaler"]["mean"], MEANS)) > 50


def test_train_csv_records_header_names_and_leaves_out_the_label_column(tmp_path):
    x = normal_rows(N_ROWS, seed=2)[:, :3]
    label = (np.arange(N_ROWS) % 7 == 0).astype(int)
    path = tmp_path / "sensors.csv"
    lines = ["temp,label,vib,pressure"]
    lines += [f"{a:.6f},{lab},{b:.6f},{c:.6f}" for (a, b, c), lab in zip(x, label, strict=True)]
    path.write_text("\n".join(lines) + "\n")

    config = train(path, tmp_path / "model", "--label-column", "label")

    assert_self_describing(config, ["temp", "vib", "pressure"])
    assert trained_rows(config) == N_ROWS
    np.testing.assert_allclose(config["scaler"]["mean"], MEANS[:3], atol=0.3)


def test_train_parquet_records_column_names(tmp_path):
    pa = pytest.importorskip("pyarrow", reason="the parquet extra is not installed")
    pq = pytest.importorskip("pyarrow.parquet")
    x = normal_rows(N_ROWS, seed=3)
    y = np.zeros(N_ROWS, dtype=np.int64)
    y[:30] = 1
    columns = {"a": x[:, 0], "b": x[:, 1], "is_anomaly": y, "c": x[:, 2], "d": x[:, 3]}
    path = tmp_path / "sensors.parquet"
    pq.write_table(pa.table(columns), path)

    config = train(
        path, tmp_path / "model", "--label-column", "is_anomaly", "--exclude-labelled"
    )

    assert_self_describing(config, ["a", "b", "c", "d"])
    assert trained_rows(config) == N_ROWS - 30
    assert config["training"]["window"]["rows_excluded"] == 30
    np.testing.assert_allclose(config["scaler"]["mean"], MEANS, atol=0.3)


def test_train_refuses_to_overwrite_an_artifact(labelled_npz, tmp_path):
    data, _ = labelled_npz
    out = tmp_path / "model"
    train(data, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    done = run_seismo("train", "--data", str(data), "--out", str(out), timeout=RUN_TIMEOUT_S)

    assert_one_line_error(done, f"--out {out} already exists")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def _write_missing(path: Path) -> Path:
    return path / "absent.npz"


def _write_txt(path: Path) -> Path:
    (path / "rows.txt").write_text("1,2\n")
    return path / "rows.txt"


def _write_npz_without_x(path: Path) -> Path:
    np.savez(path / "wrong.npz", data=np.zeros((10, 2)))
    return path / "wrong.npz"


def _write_csv_with_text(path: Path) -> Path:
    (path / "text.csv").write_text("a,b\n1,2\n3,oops\n")
    return path / "text.csv"


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (_write_missing, "data file not found"),
        (_write_txt, "unsupported data file"),
        (_write_npz_without_x, "has no array 'X'"),
        (_write_csv_with_text, "line 3, column 2: 'oops' is not a number"),
    ],
    ids=["missing", "extension", "npz-without-X", "csv-non-numeric"],
)
def test_train_bad_data_is_one_line_error(make, expected, tmp_path):
    data = make(tmp_path)
    out = tmp_path / "model"

    done = run_seismo("train", "--data", str(data), "--out", str(out), timeout=RUN_TIMEOUT_S)

    assert_one_line_error(done, expected)
    assert not out.exists()


def produce(bootstrap: str, topic: str, data: Path, *extra: str) -> str:
    done = run_seismo(
        "produce", "--bootstrap-servers", bootstrap, "--topic", topic, "--data", str(data),
        *extra, timeout=RUN_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def read_events(bootstrap: str, topic: str, expected: int) -> list[Record]:
    """Everything on ``topic``: at least ``expected`` records, then 2 s without a new one."""
    return read_topic(bootstrap, topic, until=lambda r: len(r) >= expected, idle_s=2.0)


def by_id(records: list[Record]) -> dict[int, Record]:
    events = {int(r.json()["id"]): r for r in records}
    assert len(events) == len(records), "an id arrived twice"
    return events


@pytest.mark.kafka
def test_produce_npz_publishes_every_row_once(kafka_bootstrap, topic_name, tmp_path):
    create_topics(kafka_bootstrap, {topic_name: 3})
    x = normal_rows(200, seed=4)
    data = tmp_path / "rows.npz"
    np.savez(data, X=x)

    stdout = produce(kafka_bootstrap, topic_name, data, "--devices", "3")

    assert f"published 200 events to {topic_name}" in stdout
    events = by_id(read_events(kafka_bootstrap, topic_name, 200))
    assert sorted(events) == list(range(200))
    for i, record in events.items():
        body = record.json()
        assert record.key == body["device_id"].encode() == f"device-{i % 3}".encode()
        np.testing.assert_allclose(body["values"], x[i], rtol=1e-6)
    keys_per_partition = {}
    for record in events.values():
        keys_per_partition.setdefault(record.key, set()).add(record.partition)
    assert all(len(parts) == 1 for parts in keys_per_partition.values()), "key -> one partition"


@pytest.mark.kafka
def test_produce_f32_publishes_tagged_little_endian_float32(kafka_bootstrap, topic_name, tmp_path):
    create_topics(kafka_bootstrap, {topic_name: 2})
    x = normal_rows(50, seed=6)
    data = tmp_path / "rows.npz"
    np.savez(data, X=x)

    produce(kafka_bootstrap, topic_name, data, "--devices", "2", "--encoding", "f32")

    records = read_events(kafka_bootstrap, topic_name, 50)
    by_event = {int(r.headers["seismo-event-id"]): r for r in records}
    assert sorted(by_event) == list(range(50))
    for i, record in by_event.items():
        assert record.headers["content-type"] == b"application/x-seismo-f32"
        assert "seismo-channels" not in record.headers  # an .npz has no names to give
        assert record.key == f"device-{i % 2}".encode()
        np.testing.assert_array_equal(np.frombuffer(record.value, "<f4"), x[i].astype(np.float32))


def test_produce_unknown_encoding_is_a_one_line_error(tmp_path):
    data = tmp_path / "rows.npz"
    np.savez(data, X=normal_rows(5, seed=0))
    done = run_seismo(
        "produce", "--bootstrap-servers", "127.0.0.1:1", "--topic", "t", "--data", str(data),
        "--encoding", "avro",
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr == "seismo: error: --encoding must be one of json, f32, got 'avro'\n"


@pytest.mark.kafka
@pytest.mark.parametrize(
    ("device_at", "encoding"), [(1, "utf-8"), (0, "utf-8-sig")], ids=["middle", "first-bom"]
)
def test_produce_csv_device_column_keys_events_and_is_not_a_value(
    device_at, encoding, kafka_bootstrap, topic_name, tmp_path
):
    create_topics(kafka_bootstrap, {topic_name: 2})
    x = normal_rows(60, seed=5)[:, :2]
    devices = [f"pump-{i % 4}" for i in range(60)]
    lines = []
    for device, cells in [("device", ["temp", "vib"])] + [
        (dev, [f"{v:.5f}" for v in row]) for dev, row in zip(devices, x, strict=True)
    ]:
        cells.insert(device_at, device)
        lines.append(",".join(cells))
    data = tmp_path / "rows.csv"
    data.write_text("\n".join(lines) + "\n", encoding=encoding)

    produce(kafka_bootstrap, topic_name, data, "--device-column", "device")

    events = by_id(read_events(kafka_bootstrap, topic_name, 60))
    assert sorted(events) == list(range(60))
    for i, record in events.items():
        body = record.json()
        assert record.key == devices[i].encode() and body["device_id"] == devices[i]
        assert list(body["values"]) == ["temp", "vib"]  # named: the file has a header
        np.testing.assert_allclose(list(body["values"].values()), x[i], atol=1e-5)


@pytest.mark.kafka
def test_produce_sends_the_time_column_as_ts_and_named_or_positional_values(
    kafka_bootstrap, topic_name, tmp_path
):
    create_topics(kafka_bootstrap, {topic_name: 1})
    data = tmp_path / "rooms.csv"
    data.write_text("temp,timestamp,device_id,rh\n"
                    "4.5399,2024-11-23T08:20:00Z,room-1,1000000015476\n"
                    "2.5,1732350060,room-2,81\n")  # fmt: skip

    produce(kafka_bootstrap, topic_name, data)
    produce(kafka_bootstrap, topic_name, data, "--positional", "--drop-columns", "rh")

    records = read_events(kafka_bootstrap, topic_name, 4)
    bodies = [r.json() for r in records]
    # positional values name the channels they follow (the scorer checks the order)
    assert [r.headers.get("seismo-channels") for r in records] == [None, None, b"temp", b"temp"]
    assert [b["ts"] for b in bodies] == [1732350000000, 1732350060000] * 2
    assert [b["device_id"] for b in bodies] == ["room-1", "room-2"] * 2
    # the file's values as written, not rounded to float32 (4.539899826049805 and
    # 999999995904.0 before): the scorer rounds them itself
    assert [b["values"] for b in bodies] == [
        {"temp": 4.5399, "rh": 1000000015476.0}, {"temp": 2.5, "rh": 81.0}, [4.5399], [2.5]
    ]


@pytest.mark.kafka
def test_produce_takes_broker_and_topic_from_the_environment_dev_up_prints(
    kafka_bootstrap, topic_name, tmp_path
):
    """``eval "$(seismo dev up --detach)"`` exports SEISMO_INPUT_TOPIC for a topic of
    another name; produce required --topic all the same (a stranger helper)."""
    create_topics(kafka_bootstrap, {topic_name: 1})
    data = tmp_path / "rows.csv"
    data.write_text("temp\n1\n2\n")
    env = {**os.environ, "SEISMO_BOOTSTRAP_SERVERS": kafka_bootstrap,
           "SEISMO_INPUT_TOPIC": topic_name}  # fmt: skip
    command = [*seismo_command(), "produce", "--data", str(data)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, env=env)
    assert done.returncode == 0, done.stderr
    assert [r.json()["values"] for r in read_events(kafka_bootstrap, topic_name, 2)] == [
        {"temp": 1.0}, {"temp": 2.0}
    ]


def test_produce_reads_the_broker_from_seismo_bootstrap_servers(tmp_path):
    data = tmp_path / "rows.csv"
    data.write_text("temp\n1\n")
    env = {**os.environ, "SEISMO_BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    command = [*seismo_command(), "produce", "--topic", "t", "--data", str(data)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, env=env)
    assert done.returncode == 1 and "127.0.0.1:1" in done.stderr


@pytest.mark.kafka
def test_produce_limit_publishes_the_first_rows_only(kafka_bootstrap, topic_name, tmp_path):
    create_topics(kafka_bootstrap, {topic_name: 1})
    x = normal_rows(100, seed=6)
    data = tmp_path / "rows.npz"
    np.savez(data, X=x)

    stdout = produce(kafka_bootstrap, topic_name, data, "--limit", "25")

    assert f"published 25 events to {topic_name}" in stdout
    events = by_id(read_events(kafka_bootstrap, topic_name, 25))
    assert sorted(events) == list(range(25))
    np.testing.assert_allclose([events[i].json()["values"] for i in range(25)], x[:25], rtol=1e-6)


@pytest.mark.kafka
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("temp,vib\n1,2\n", "no column 'device'"),
        ("device,temp\nd1,1.5\nd2,nan\n", "rows.csv:3: NaN or Inf"),
        ("device,temp\nd1,1.5\nd2,1e39\n", "rows.csv:3: NaN or Inf"),
        ("device,temp\nd1,1.5\n,2.5\n", "rows.csv:3: no device id"),
        ("device,temp\nd1\n", "rows.csv:2: the row has 1 columns, the header 2"),
        ("device,temp,rh\nd1,1.5,2\nd2,1.5,\n",
         "rows.csv:3: column 'rh': '' is not a number (an empty cell in column 'rh'"),
        ("device,temp\n", "has a header but no data rows"),
    ],
    ids=["no-device-column", "nan", "float32-overflow", "no-device-id", "short-row", "empty-cell",
         "no-rows"],
)
def test_produce_bad_csv_is_one_line_error_before_publishing(
    text, expected, kafka_bootstrap, topic_name, tmp_path
):
    create_topics(kafka_bootstrap, {topic_name: 1})
    data = tmp_path / "rows.csv"
    data.write_text(text)

    done = run_seismo(
        "produce", "--bootstrap-servers", kafka_bootstrap, "--topic", topic_name,
        "--data", str(data), "--device-column", "device", timeout=RUN_TIMEOUT_S,
    )

    assert_one_line_error(done, expected)
    assert read_topic(kafka_bootstrap, topic_name, until=lambda r: False, timeout_s=2) == []


def test_produce_to_an_unreachable_broker_fails_fast(tmp_path):
    data = tmp_path / "rows.npz"
    np.savez(data, X=normal_rows(10, seed=7))
    bootstrap = f"127.0.0.1:{free_port()}"
    started = time.monotonic()

    done = run_seismo(
        "produce", "--bootstrap-servers", bootstrap, "--topic", "t", "--data", str(data),
        timeout=RUN_TIMEOUT_S,
    )

    elapsed = time.monotonic() - started
    print(f"\nproduce to an unreachable broker: exit {done.returncode} after {elapsed:.2f} s")
    assert done.returncode != 0 and "Traceback" not in done.stderr
    last = done.stderr.splitlines()[-1]
    assert last.startswith("seismo: error: Kafka broker unreachable") and bootstrap in last
    assert elapsed < 30  # a hang guard (imports included, on a machine running two tests)


@pytest.mark.kafka
def test_produce_interrupted_says_how_many_events_it_published(
    kafka_bootstrap, topic_name, tmp_path
):
    """Ctrl-C ended ``seismo produce`` with status 130 and no word of how far it got (a
    stranger counted the topic to learn it): it now says, and the count is the topic's."""
    import signal

    create_topics(kafka_bootstrap, {topic_name: 1})
    data = tmp_path / "rows.csv"
    data.write_text("temp,rpm\n" + "".join(f"{i % 7}.5,{i % 5}\n" for i in range(2000)))
    log = tmp_path / "produce.log"
    proc = start_seismo("produce", "--bootstrap-servers", kafka_bootstrap, "--topic", topic_name,
                        "--data", str(data), "--rate", "100", log=log)  # fmt: skip
    try:
        read_topic(kafka_bootstrap, topic_name, until=lambda r: len(r) >= 20, timeout_s=60)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130
    finally:
        proc.kill()
    line = log.read_text().strip().splitlines()[-1]
    assert line.startswith("interrupted: published "), log.read_text()[-2000:]
    published = int(line.split()[2])
    assert 20 <= published < 2000 and line.endswith(f"(the file's first {published} rows)")
    assert len(read_events(kafka_bootstrap, topic_name, published)) == published
