"""`seismo dev up / status / down` in this process, with the real Tansu and redis-server.

The commands run through the typer app (``CliRunner``); only the signal
handlers of ``dev up`` are replaced by a plain event, so that the test
process keeps its own Ctrl-C. A real Ctrl-C, and ``dev down`` stopping a
foreground ``dev up``, are in ``test_dev_cli_process.py`` (slow tier).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from pathlib import Path

import pytest
import redis
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from typer.testing import CliRunner

from seismo.stream.cli.app import app
from seismo.stream.errors import ServiceError
from seismo.stream.local.dev_stack import DevOptions, dev_up
from seismo.stream.local.dev_state import DevState

pytestmark = [pytest.mark.kafka, pytest.mark.redis]


@pytest.fixture(autouse=True)
def no_signal_handlers(monkeypatch: pytest.MonkeyPatch) -> None:
    """`dev up` waits on an event nobody sets instead of taking over SIGINT/SIGTERM."""
    monkeypatch.setattr("seismo.stream.cli.common.install_stop_handlers", threading.Event)


def invoke(*args: str) -> tuple[int, str, BaseException | None]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.exception


def status(state_file: Path) -> tuple[int, str, str]:
    """``seismo dev status``: exit code, stdout (the export lines) and stderr."""
    result = CliRunner().invoke(app, ["dev", "status", "--state-file", str(state_file)])
    return result.exit_code, result.stdout, result.stderr


def gone(pid: int) -> bool:
    """The process no longer exists (reaped: the test process may be its parent)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def exports(stdout: str) -> dict[str, str]:
    lines = stdout.splitlines()
    assert lines and all(line.startswith("export ") for line in lines), stdout
    return dict(line.removeprefix("export ").split("=", 1) for line in lines)


def partition_counts(bootstrap: str) -> dict[str, int]:
    topics = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics
    return {name: len(t.partitions) for name, t in topics.items() if not name.startswith("__")}


def round_trip(bootstrap: str, topic: str) -> bytes | None:
    """Produce one record and read it back by assignment."""
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(topic, value=b"hello", partition=0)
    assert producer.flush(10) == 0
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused",
                         "enable.auto.commit": False})  # fmt: skip
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    try:
        msg = consumer.poll(10)
        return None if msg is None else msg.value()
    finally:
        consumer.close()


def test_dev_up_detach_creates_the_topics_and_dev_down_stops_both(tmp_path: Path) -> None:
    state_file = tmp_path / "dev.json"
    code, out, exc = invoke("dev", "up", "--detach", "--state-file", str(state_file),
                            "--input-topic", "rooms", "--partitions", "3")  # fmt: skip
    assert code == 0, exc
    env = exports(out)
    state = DevState.read(state_file)
    pids = [s.pid for s in state.servers]
    try:
        assert env["SEISMO_BOOTSTRAP_SERVERS"] == state.bootstrap_servers
        assert env["SEISMO_REDIS_URL"] == state.redis_url
        assert env["SEISMO_INPUT_TOPIC"] == "rooms"  # not the scorer's default: exported
        assert "SEISMO_ALERTS_TOPIC" not in env  # the default: nothing to say
        assert partition_counts(env["SEISMO_BOOTSTRAP_SERVERS"]) == {
            "rooms": 3, "anomalies": 3, "sensor-events.dlq": 1, "sensor-scores": 3,
            "incidents": 1, "incidents.retry": 1, "incidents.notify-dlq": 1,
        }  # fmt: skip
        assert round_trip(env["SEISMO_BOOTSTRAP_SERVERS"], "rooms") == b"hello"
        client = redis.Redis.from_url(env["SEISMO_REDIS_URL"])
        assert client.set("k", "v") and client.get("k") == b"v"
        client.close()
        code, out, err = status(state_file)
        assert code == 0 and "Kafka: running" in err and "Redis: running" in err
        assert exports(out) == env  # eval "$(seismo dev status)" in another shell
    finally:
        code, _, exc = invoke("dev", "down", "--state-file", str(state_file))
    assert code == 0, exc
    assert all(gone(pid) for pid in pids)
    assert not state_file.exists()
    code, _, exc = invoke("dev", "down", "--state-file", str(state_file))
    assert code == 1 and isinstance(exc, ServiceError)
    assert str(exc) == f"no dev stack: {state_file} does not exist (start one with `seismo dev up`)"


def test_dev_down_copes_with_a_server_that_already_died(tmp_path: Path) -> None:
    state_file = tmp_path / "dev.json"
    code, _, exc = invoke("dev", "up", "--detach", "--state-file", str(state_file))
    assert code == 0, exc
    kafka, server = DevState.read(state_file).servers
    os.kill(server.pid, signal.SIGKILL)
    assert _wait(lambda: gone(server.pid))
    code, out, err = status(state_file)
    assert code == 1 and "Redis: NOT running" in err
    assert out == "" and "no export lines" in err  # eval must not point at a dead stack
    code, _, exc = invoke("dev", "down", "--state-file", str(state_file))
    assert code == 0, exc
    assert gone(kafka.pid) and not state_file.exists()


def test_dev_up_refuses_a_busy_port_in_one_line_and_a_second_stack(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _, exc = invoke("dev", "up", "--detach", "--state-file", str(tmp_path / "a.json"),
                              "--kafka-port", str(port))  # fmt: skip
    assert code == 1 and isinstance(exc, ServiceError)
    assert str(exc).startswith(f"--kafka-port {port}: 127.0.0.1:{port} is not free")
    state_file = tmp_path / "b.json"
    code, _, exc = invoke("dev", "up", "--detach", "--state-file", str(state_file))
    assert code == 0, exc
    try:
        code, _, exc = invoke("dev", "up", "--detach", "--state-file", str(state_file))
        assert code == 1 and "a dev stack already runs" in str(exc)
    finally:
        assert invoke("dev", "down", "--state-file", str(state_file))[0] == 0


def test_dev_up_in_the_foreground_stops_both_servers_when_told(tmp_path: Path) -> None:
    state_file = tmp_path / "dev.json"
    stop, printed = threading.Event(), []
    options = DevOptions(state_file, {"events": 2, "alerts": 1}, {})
    thread = threading.Thread(target=dev_up, args=(options, stop, printed.append, lambda _: None))
    thread.start()
    try:
        assert _wait(state_file.exists, timeout=20)
        state = DevState.read(state_file)
        assert state.owner is not None and state.owner.pid == os.getpid()
        assert partition_counts(state.bootstrap_servers) == {"events": 2, "alerts": 1}
        assert printed == state.exports()
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()
    assert all(gone(s.pid) for s in state.servers)
    assert not state_file.exists()


def test_the_state_file_names_every_process_and_address(tmp_path: Path) -> None:
    state_file = tmp_path / "dev.json"
    code, _, exc = invoke("dev", "up", "--detach", "--state-file", str(state_file),
                          "--scores-topic", "", "--no-incident-topics")  # fmt: skip
    assert code == 0, exc
    try:
        data = json.loads(state_file.read_text())
        assert [s["name"] for s in data["servers"]] == ["Kafka", "Redis"]
        assert data["owner"] is None and data["format"] == 1
        assert sorted(data["topics"]) == ["anomalies", "sensor-events", "sensor-events.dlq"]
        assert data["bootstrap_servers"] == f"127.0.0.1:{data['servers'][0]['port']}"
    finally:
        assert invoke("dev", "down", "--state-file", str(state_file))[0] == 0


def _wait(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
