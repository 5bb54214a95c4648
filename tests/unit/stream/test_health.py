"""/health of the scorer with its model watcher, and a metrics port that is taken."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import replace

import pytest
from prometheus_client import CollectorRegistry

from seismo.stream.errors import ServiceError
from seismo.stream.io.health import Health, WatcherStatus, serve
from seismo.stream.io.metrics import IncidentMetrics, NotifyMetrics, ScorerMetrics, serve_metrics

WELL = WatcherStatus(alive=True, stopping=False, errors=0, last_error=None, failing_since=None,
                     last_ok_at=0.0, poll_s=30.0)  # fmt: skip


def scorer_health(now: list[float], status: WatcherStatus | None) -> Health:
    health = Health(clock=lambda: now[0])
    health.kafka((1, 1))
    health.loop_alive(partitions=1)
    health.watch(None if status is None else (lambda: status))
    return health


def test_without_a_watcher_the_entry_is_null_and_nothing_changes():
    code, body = scorer_health([1.0], None).report()
    assert (code, body["status"], body["model_watcher"]) == (200, "ok", None)


@pytest.mark.parametrize(
    ("status", "at", "expected"),
    [
        (WELL, 5.0, (200, "ok", "ok")),
        (replace(WELL, errors=3, failing_since=1.0, last_error="E: x"), 50.0,
         (200, "ok", "retrying")),
        (replace(WELL, errors=9, failing_since=1.0, last_error="E: x"), 92.0,
         (200, "degraded", "failing")),  # more than 3 poll periods (90 s)
        (replace(WELL, alive=False), 5.0, (503, "down", "dead")),
        (replace(WELL, alive=False, stopping=True), 5.0, (200, "ok", "stopped")),
    ],
    ids=["ok", "retrying", "failing-long", "dead", "stopped"],
)
def test_the_watcher_state_decides_the_status(status, at, expected):
    code, body = scorer_health([at], status).report()
    assert (code, body["status"], body["model_watcher"]["state"]) == expected
    assert body["model_watcher"]["errors"] == status.errors


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another socket listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


def test_every_metrics_endpoint_on_a_taken_port_raises_one_line(taken_port: int):
    starts = {
        "health": lambda: serve(CollectorRegistry(), Health(), taken_port, "127.0.0.1"),
        "metrics": lambda: serve_metrics(CollectorRegistry(), taken_port, "127.0.0.1"),
        "scorer": lambda: ScorerMetrics().serve(taken_port, "127.0.0.1"),
        "incidents": lambda: IncidentMetrics().serve(taken_port, "127.0.0.1"),
        "notify": lambda: NotifyMetrics().serve(taken_port, "127.0.0.1"),
    }
    for name, start in starts.items():
        with pytest.raises(ServiceError) as caught:
            start()
        message = str(caught.value)
        assert f"127.0.0.1:{taken_port}" in message and "in use" in message, (name, message)
        assert "\n" not in message


def test_an_unknown_metrics_host_raises_one_line():
    with pytest.raises(ServiceError, match=r"cannot serve metrics on no-such-host\.invalid:0"):
        serve_metrics(CollectorRegistry(), 0, "no-such-host.invalid")
