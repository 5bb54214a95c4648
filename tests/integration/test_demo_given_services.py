"""``seismo demo`` against a given Kafka: nothing left there when it stops before streaming."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient
from rich.console import Console

from seismo.stream.demo.command import Demo, DemoOptions
from seismo.stream.errors import ServiceError
from seismo.stream.local.embedded import free_port


def _demo_topics(bootstrap: str, demo: Demo) -> list[str]:
    topics = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics
    return sorted(t for t in topics if f"-demo-{demo.run_id}" in t)


def test_a_demo_refused_for_its_redis_leaves_no_topics_on_the_given_kafka(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The Redis is checked before the topics are created (and before the model is
    trained): before, the five ``-demo-RUNID`` topics stayed on the user's broker."""
    dead = f"redis://:s3cret@127.0.0.1:{free_port()}/0"
    options = DemoOptions(bootstrap_servers=kafka_bootstrap, redis_url=dead,
                          out_dir=tmp_path, tty=False)  # fmt: skip
    demo = Demo(options, threading.Event(), Console(file=io.StringIO()))
    with pytest.raises(ServiceError) as refused:
        demo.run()
    assert "is unreachable" in str(refused.value) and "s3cret" not in str(refused.value)
    assert _demo_topics(kafka_bootstrap, demo) == []


def test_a_demo_stopped_while_training_leaves_no_topics_on_the_given_kafka(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    """Ctrl-C during the first model's training: "nothing was streamed", and nothing is
    left on the broker (the topics come after the model; found by a reviewer helper)."""
    stop = threading.Event()
    stop.set()  # as if Ctrl-C came at once: training stops at its first check
    options = DemoOptions(bootstrap_servers=kafka_bootstrap, redis_url=redis_url,
                          out_dir=tmp_path, tty=False)  # fmt: skip
    out = io.StringIO()
    demo = Demo(options, stop, Console(file=out))
    assert demo.run() is None
    assert "stopped while training; nothing was streamed" in out.getvalue()
    assert _demo_topics(kafka_bootstrap, demo) == []
