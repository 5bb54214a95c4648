"""Where the test suite gets its Kafka broker and Redis server.

For each service, in this order:

1. ``SEISMO_TEST_KAFKA`` (``host:port``) / ``SEISMO_TEST_REDIS`` (``redis://...``):
   an existing server, which must answer;
2. ``SEISMO_TEST_DOCKER=1``: containers started by testcontainers (opt-in, so
   that the broker under test never changes just because Docker is running);
3. otherwise :class:`~seismo.stream.local.embedded.EmbeddedKafka` and
   :class:`~seismo.stream.local.embedded.EmbeddedRedis`, local subprocesses on 127.0.0.1.

Each function raises :class:`~seismo.stream.errors.ServiceError` when its service
cannot be had; ``conftest.py`` turns that into a test failure, never a skip.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from seismo.stream.errors import ServiceError
from seismo.stream.local.embedded import (
    EmbeddedKafka,
    EmbeddedRedis,
    wait_for_kafka,
    wait_for_redis,
)

KAFKA_ENV = "SEISMO_TEST_KAFKA"
REDIS_ENV = "SEISMO_TEST_REDIS"
DOCKER_ENV = "SEISMO_TEST_DOCKER"

#: Consumer settings for tests. Tansu's first group join takes
#: ``session.timeout.ms / 2``, so keep it short (docs/kafka-compat.md).
CONSUMER_DEFAULTS: dict[str, Any] = {
    "session.timeout.ms": 6000,
    "auto.offset.reset": "earliest",
    "enable.auto.commit": False,
}


def embedded_kafka() -> bool:
    """Whether the tests' broker is the embedded Tansu (no ``SEISMO_TEST_KAFKA``, no Docker)."""
    return not os.environ.get(KAFKA_ENV) and not _docker_requested()


def restart_session_timeout_ms() -> int:
    """``session.timeout.ms`` for tests that restart scorers many times.

    Tansu accepts 2000 ms, and a restarted member is then back in its group
    within about 2 s instead of 6; Apache Kafka refuses anything below its
    ``group.min.session.timeout.ms`` (6000 by default), so that is what the
    tests use against any other broker.
    """
    return 2000 if embedded_kafka() else 6000


def consumer_config(bootstrap: str, group_id: str, **overrides: Any) -> dict[str, Any]:
    """Consumer settings for a test: :data:`CONSUMER_DEFAULTS` plus ``overrides``.

    librdkafka keys contain dots, so pass overrides as ``**{"fetch.wait.max.ms": 10}``.
    """
    return {**CONSUMER_DEFAULTS, "bootstrap.servers": bootstrap, "group.id": group_id, **overrides}


@contextmanager
def kafka_service() -> Iterator[str]:
    """Yield the ``bootstrap.servers`` of a Kafka broker that answers."""
    external = os.environ.get(KAFKA_ENV)
    if external:
        wait_for_kafka(external, timeout=15)
        yield external
    elif _docker_requested():
        with _container("Kafka") as container:
            yield _wait_kafka_container(container)
    else:
        with EmbeddedKafka() as kafka:
            yield kafka.bootstrap_servers


@contextmanager
def redis_service() -> Iterator[str]:
    """Yield the URL of a Redis server that answers PING."""
    external = os.environ.get(REDIS_ENV)
    if external:
        wait_for_redis(external, timeout=15)
        yield external
    elif _docker_requested():
        with _container("Redis") as container:
            host, port = container.get_container_host_ip(), container.get_exposed_port(6379)
            url = f"redis://{host}:{port}/0"
            wait_for_redis(url, timeout=30)
            yield url
    else:
        with EmbeddedRedis() as redis_server:
            yield redis_server.url


def _docker_requested() -> bool:
    """Tell whether the tests should use Docker; fail if asked for it and it is absent."""
    if os.environ.get(DOCKER_ENV) != "1":
        return False
    try:
        subprocess.run(["docker", "info"], capture_output=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        raise ServiceError(f"{DOCKER_ENV}=1 but no Docker engine answers `docker info`") from exc
    return True


@contextmanager
def _container(name: str) -> Iterator[Any]:
    """Start the testcontainers container for ``name`` and remove it afterwards."""
    if name == "Kafka":
        from testcontainers.community.kafka import KafkaContainer as Container
    else:
        from testcontainers.community.redis import RedisContainer as Container
    container = Container()
    try:
        container.start()
    except Exception as exc:
        raise ServiceError(f"cannot start the {name} container: {exc}") from exc
    try:
        yield container
    finally:
        container.stop()


def _wait_kafka_container(container: Any) -> str:
    bootstrap = str(container.get_bootstrap_server())
    wait_for_kafka(bootstrap, timeout=60)
    return bootstrap
