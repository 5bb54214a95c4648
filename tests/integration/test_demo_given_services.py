"""``seismo demo`` against a given Kafka whose given Redis does not answer."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient
from rich.console import Console

from seismo.stream.demo.command import Demo, DemoOptions
from seismo.stream.errors import ServiceError
from seismo.stream.local.embedded import free_port


def test_a_demo_refused_for_its_redis_leaves_no_topics_on_the_given_kafka(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The Redis is checked before the topics are created (and before the model is
    trained): before, the five ``-demo-RUNID`` topics stayed on the user's broker."""
    dead = f"redis://:s3cret@127.0.0.1:{free_port()}/0"
    options = DemoOptions(bootstrap_servers=kafka_bootstrap, redis_url=dead,
                          out_dir=tmp_path, tty=False)  # fmt: skip
    demo = Demo(options, threading.Event(), Console(file=open(tmp_path / "out.txt", "w")))
    with pytest.raises(ServiceError) as refused:
        demo.run()
    assert "is unreachable" in str(refused.value) and "s3cret" not in str(refused.value)
    topics = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=10).topics
    assert not [t for t in topics if f"-demo-{demo.run_id}" in t], sorted(topics)
