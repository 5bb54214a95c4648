"""Fixtures shared by every test tier: a real Kafka broker and Redis server,
and unique names so that tests never see each other's data.

Tiers are marked here, not by hand: a test that uses the broker is marked
``kafka``, one that uses Redis ``redis``; a test is ``slow`` when it runs seismo
commands as subprocesses (its module uses ``run_seismo`` or ``start_seismo``),
fuzzes, or is an experiment. Plain ``python -m pytest`` runs the fast tier
(``-m "not slow"``, from ``pyproject.toml``); ``python -m pytest -m slow`` the rest.

The service fixtures are session-scoped and fail, never skip, when their
service cannot start (``tests/services.py`` says where each one comes from).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path

import pytest
import redis

from seismo.stream.errors import ServiceError
from tests import services

#: Fixtures that mean a real service, and the marker each one implies.
SERVICE_FIXTURES = {"kafka_bootstrap": "kafka", "redis_url": "redis"}
#: Helpers that start seismo commands as subprocesses (seconds each: torch imports).
SUBPROCESS_HELPERS = ("run_seismo", "start_seismo", "SeismoChild")
#: Folders and files whose tests are slow whatever they use.
SLOW_PATHS = ("tests/experiments/", "tests/fuzz/", "test_fuzz_atheris.py", "_pipe.py")


def tier_markers(path: str, fixtures: set[str], module_names: set[str]) -> set[str]:
    """The markers a test earns from where it lives, its fixtures and its module's helpers.

    >>> sorted(tier_markers("tests/test_score_pipe.py", {"kafka_bootstrap"}, set()))
    ['kafka', 'slow']
    >>> sorted(tier_markers("tests/unit/x.py", {"redis_url"}, {"run_seismo"}))
    ['redis', 'slow']
    >>> tier_markers("tests/unit/x.py", set(), set())
    set()
    """
    marks = {mark for fixture, mark in SERVICE_FIXTURES.items() if fixture in fixtures}
    if any(part in path for part in SLOW_PATHS) or module_names & set(SUBPROCESS_HELPERS):
        marks.add("slow")
    return marks


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = str(config.rootpath)
    for item in items:
        module = getattr(item, "module", None)
        names = set(vars(module)) if module is not None else set()
        path = str(item.path).removeprefix(root).lstrip("/")
        marks = tier_markers(path, set(getattr(item, "fixturenames", ())), names)
        if item.get_closest_marker("pipe"):
            marks.add("slow")
        for mark in marks:
            item.add_marker(getattr(pytest.mark, mark))


@pytest.fixture(scope="session")
def sensor_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One dense model of the pipes' 8-channel sensor data, trained once per session.

    Trained in-process on clean rows (:class:`tests.pipes.SensorData`), so the
    dense autoencoder is the right default; tests that exercise ``seismo
    train`` itself train their own.
    """
    from seismo.models.artifact import build_artifact, save_artifact
    from seismo.models.config import TrainConfig
    from seismo.models.training import train_autoencoder
    from tests.pipes import SensorData

    result = train_autoencoder(
        SensorData().normal(4000, seed=1),
        train=TrainConfig(epochs=40, batch_size=64, lr=3e-3, seed=0, trim_share=0.0,
                          neighbours=0),  # clean rows
        device="cpu",
    )
    root = tmp_path_factory.mktemp("sensor-model")
    return save_artifact(build_artifact(result, name="sensors"), root / "model")


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
