"""Shared pieces of the end-to-end pipes: generated sensor data and seismo subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
from prometheus_client.parser import text_string_to_metric_families


def seismo_command() -> list[str]:
    """The installed ``seismo`` script next to this interpreter, else ``python -m seismo``."""
    script = Path(sys.executable).with_name("seismo")
    return [str(script)] if script.exists() else [sys.executable, "-m", "seismo"]


def children_of(pid: int) -> set[int]:
    """PIDs whose parent is ``pid`` (from /proc)."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # it ended meanwhile
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.add(int(entry))
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its parent does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def run_seismo(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*seismo_command(), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def start_seismo(*args: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    fh = log.open("a")
    return subprocess.Popen(
        [*seismo_command(), *args], stdout=fh, stderr=subprocess.STDOUT, env=env
    )


def running(proc: subprocess.Popen, log: Path):
    """A check for read loops: raise at once if the seismo process has exited."""

    def check(_records=None) -> bool:
        if proc.poll() is not None:
            raise AssertionError(
                f"seismo exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
            )
        return False

    return check


def stop(proc: subprocess.Popen, timeout: float = 30) -> int:
    if proc.poll() is None:
        proc.terminate()
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
    return proc.returncode


@dataclass(frozen=True)
class SensorData:
    """Correlated multichannel readings: a 3-factor latent state plus sensor noise."""

    n_features: int = 8
    seed: int = 7

    def _basis(self) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        mix = rng.normal(size=(3, self.n_features))
        offsets = rng.uniform(-5, 50, size=self.n_features)
        return mix, offsets

    def normal(self, n: int, seed: int) -> np.ndarray:
        mix, offsets = self._basis()
        rng = np.random.default_rng(seed)
        z = rng.normal(size=(n, 3))
        noise = 0.05 * rng.normal(size=(n, self.n_features))
        return (z @ mix + offsets + noise).astype(np.float32)

    def with_anomalies(self, n: int, rate: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Normal rows with about ``rate`` of them broken; returns (x, is_anomaly)."""
        x = self.normal(n, seed)
        rng = np.random.default_rng(seed + 1)
        idx = rng.choice(n, size=round(n * rate), replace=False)
        std = x.std(axis=0)
        for i in idx:
            channel = rng.integers(self.n_features)
            x[i, channel] += rng.choice([-1.0, 1.0]) * rng.uniform(4.0, 8.0) * std[channel]
        labels = np.zeros(n, dtype=bool)
        labels[idx] = True
        return x, labels


def metric(port: int, name: str) -> float | None:
    """One sample of a seismo process's ``/metrics`` on 127.0.0.1 (``None`` if absent)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as page:
        text = page.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return sample.value
    return None


def get_health(port: int) -> tuple[int, dict]:
    """HTTP status and JSON body of a seismo process's ``/health`` on 127.0.0.1."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as page:
            return page.status, orjson.loads(page.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read())


def wait_for(predicate, timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
