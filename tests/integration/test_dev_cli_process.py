"""`seismo dev up` as a real process: Ctrl-C stops both servers, and so does `seismo dev down`.

Slow tier (seismo subprocesses); the same commands in-process are in
``test_dev_stack.py``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from seismo.stream.local.detached import detached_alive
from seismo.stream.local.dev_state import DevState
from tests.pipes import run_seismo, seismo_command

pytestmark = [pytest.mark.kafka, pytest.mark.redis]


def start_dev_up(state_file: Path) -> tuple[subprocess.Popen[str], DevState, list[str]]:
    """``seismo dev up`` in the foreground; its state once ready, and its stdout lines."""
    proc = subprocess.Popen(
        [*seismo_command(), "dev", "up", "--state-file", str(state_file)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert proc.stdout is not None
    lines = [proc.stdout.readline().rstrip("\n") for _ in range(2)]
    assert all(line.startswith("export SEISMO_") for line in lines), lines
    return proc, DevState.read(state_file), lines


@pytest.mark.parametrize("how", ["ctrl-c", "dev down"])
def test_a_foreground_dev_up_stops_both_servers(tmp_path: Path, how: str) -> None:
    state_file = tmp_path / "dev.json"
    proc, state, lines = start_dev_up(state_file)
    try:
        assert lines == state.exports()
        assert all(detached_alive(s) for s in state.servers)
        if how == "ctrl-c":
            proc.send_signal(signal.SIGINT)
        else:
            done = run_seismo("dev", "down", "--state-file", str(state_file), timeout=60)
            assert done.returncode == 0, done.stderr
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    deadline = time.monotonic() + 5
    while any(detached_alive(s) for s in state.servers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(detached_alive(s) for s in state.servers)
    assert not state_file.exists()
    assert proc.stderr is not None and "Traceback" not in proc.stderr.read()
