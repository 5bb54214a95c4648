"""Fixtures shared by every test tier: a real Kafka broker and Redis server,
and unique names so that tests never see each other's data.

The service fixtures are session-scoped and fail, never skip, when their
service cannot start (``tests/services.py`` says where each one comes from).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack

import pytest
import redis

from stream.errors import ServiceError
from tests import services


def _serve(name: str, service: AbstractContextManager[str]) -> Iterator[str]:
    with ExitStack() as stack:
        try:
            address = stack.enter_context(service)
        except ServiceError as exc:
            reason = str(exc)
        else:
            yield address
            return
    pytest.fail(f"{name} for the tests could not start: {reason}", pytrace=False)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """``bootstrap.servers`` of the test Kafka broker, e.g. ``127.0.0.1:40123``."""
    yield from _serve("Kafka", services.kafka_service())


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of the test Redis server, e.g. ``redis://127.0.0.1:40124/0``."""
    yield from _serve("Redis", services.redis_service())


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def topic_name() -> str:
    """A topic name no other test uses: ``t-<8 hex digits>``. Not created."""
    return _unique("t")


@pytest.fixture
def group_id() -> str:
    """A consumer group id no other test uses: ``g-<8 hex digits>``."""
    return _unique("g")


@pytest.fixture
def redis_key_prefix() -> str:
    """A key prefix no other test uses, ``k-<8 hex digits>:``; keys under it are deleted after."""
    return _unique("k") + ":"


@pytest.fixture
def redis_client(redis_url: str, redis_key_prefix: str) -> Iterator[redis.Redis]:
    """A client on the test Redis server.

    The server is shared by the whole session (and may be someone else's), so
    nothing is flushed: write under ``redis_key_prefix``; those keys are
    deleted after the test.
    """
    client = redis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        keys = list(client.scan_iter(match=f"{redis_key_prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
