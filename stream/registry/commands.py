"""``seismo models list|publish|promote|rollback``: the model registry from the shell.

The registry itself is :mod:`seismo.stream.registry.model_registry`; this module opens it from
the command's options and prints one line per result on stdout.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from seismo.models.artifact import load_artifact
from seismo.stream.errors import ArtifactError, RegistryError, ServiceError
from seismo.stream.io.redis_stats import connect, redact_url
from seismo.stream.registry.model_registry import ModelRegistry, VersionInfo
from seismo.stream.registry.model_watch import input_change
from seismo.stream.retrain.requests import request_retrain

Echo = Callable[[str], None]


@contextmanager
def open_registry(store: str, redis_url: str, redis_prefix: str) -> Iterator[ModelRegistry]:
    """A registry on ``store`` and the Redis at ``redis_url``; Redis errors become one line."""
    client = connect(redis_url)
    try:
        yield ModelRegistry(store, client, redis_prefix)
    except redis.RedisError as exc:
        raise ServiceError(f"Redis failed during the registry update: {exc}") from exc
    finally:
        client.close()


def format_versions(versions: list[VersionInfo]) -> list[str]:
    """One line per version, newest first, ``*`` before the current one.

    >>> format_versions([VersionInfo("v2", "2026-11-23T10:00:00+00:00", True),
    ...                  VersionInfo("v1", "", False)])
    ['* v2  2026-11-23T10:00:00+00:00', '  v1  -']
    """
    return [f"{'*' if v.current else ' '} {v.version}  {v.created_at or '-'}" for v in versions]


def run_list(
    store: str, name: str, redis_url: str, redis_prefix: str, echo: Echo,
    warn: Echo | None = None,
) -> None:  # fmt: skip
    """Print the stored versions of ``name``; say (to ``warn``, default ``echo``) when none
    is current, which is what a Redis other than the scorers' (the default URL, another
    prefix) shows."""
    with open_registry(store, redis_url, redis_prefix) as registry:
        versions = registry.list_versions(name)
        for line in format_versions(versions):
            echo(line)
        if not versions:  # a typo in --store or --name printed nothing at all
            (warn or echo)(f"no version of {name} in {registry.location}")
    if versions and not any(v.current for v in versions):
        (warn or echo)(f"no version of {name} is current in Redis at {redact_url(redis_url)} "
                       f"with prefix {redis_prefix!r}: is that the Redis and prefix your "
                       "scorers use?")  # fmt: skip


def swap_note(registry: ModelRegistry, name: str, before: str | None, after: str) -> str | None:
    """What running scorers that serve ``before`` do with ``after`` now current, when they
    will not swap to it (:func:`~seismo.stream.registry.model_watch.input_change`);
    ``None`` when they will, or when ``before`` can no longer be read."""
    if before is None or before == after:
        return None
    try:
        old, new = registry.verify(name, before), registry.verify(name, after)
    except (RegistryError, ArtifactError):
        return None  # pruned or unreadable: nothing to compare with
    change = input_change(old.feature_names, new.feature_names)
    if change is None:
        return None
    return (f"scorers serving {name} version {before} will not swap to {after}: {change}; "
            "restart them to serve it (their start-up checks read the input topic)")  # fmt: skip


def run_publish(
    store: str, model: Path, keep: int, redis_url: str, redis_prefix: str, echo: Echo,
    warn: Echo | None = None,
) -> None:  # fmt: skip
    """Copy the artifact at ``model`` into the store and point its name at it; say (to
    ``warn``, default ``echo``) when running scorers will refuse it (:func:`swap_note`)."""
    artifact = load_artifact(model, device="cpu")
    with open_registry(store, redis_url, redis_prefix) as registry:
        before = registry.current(artifact.name)
        version = registry.publish(artifact, keep=keep)
        note = swap_note(registry, artifact.name, before, version)
    echo(f"{artifact.name} -> {version}")
    if note is not None:
        (warn or echo)(note)


def run_promote(
    store: str, name: str, version: str, redis_url: str, redis_prefix: str, echo: Echo,
    warn: Echo | None = None,
) -> None:  # fmt: skip
    """Point ``name`` at a stored, verified ``version`` (a note as :func:`run_publish`'s)."""
    with open_registry(store, redis_url, redis_prefix) as registry:
        before = registry.current(name)
        registry.promote(name, version)
        note = swap_note(registry, name, before, version)
    echo(f"{name} -> {version}")
    if note is not None:
        (warn or echo)(note)


def run_rollback(
    store: str, name: str, redis_url: str, redis_prefix: str, echo: Echo,
    warn: Echo | None = None,
) -> None:  # fmt: skip
    """Point ``name`` back at its previous version (a note as :func:`run_publish`'s)."""
    with open_registry(store, redis_url, redis_prefix) as registry:
        before = registry.current(name)
        version = registry.rollback(name)
        note = swap_note(registry, name, before, version)
    echo(f"{name} -> {version}")
    if note is not None:
        (warn or echo)(note)


def run_request_retrain(
    name: str, reason: str, redis_url: str, redis_prefix: str, echo: Echo
) -> None:
    """Leave a retrain request for the retrainer of ``name``."""
    client = connect(redis_url)
    try:
        request_retrain(client, redis_prefix, name, reason=reason, by="seismo models")
    except redis.RedisError as exc:
        raise ServiceError(f"Redis failed while requesting a retrain: {exc}") from exc
    finally:
        client.close()
    echo(f"retrain of {name} requested")
