"""``seismo models list|publish|promote|rollback``: the model registry from the shell.

The registry itself is :mod:`seismo.stream.registry.model_registry`; this module opens it from
the command's options and prints one line per result on stdout.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from seismo.models.artifact import load_artifact
from seismo.stream.errors import ServiceError
from seismo.stream.io.redis_stats import connect, redact_url
from seismo.stream.registry.model_registry import ModelRegistry, VersionInfo
from seismo.stream.registry.model_watch import input_change, window_change
from seismo.stream.retrain.requests import request_retrain

Echo = Callable[[str], None]

log = logging.getLogger(__name__)


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


def swap_note(
    name: str, before: str | None, old: list[str] | None, after: str, new: list[str] | None
) -> str | None:
    """What to tell an operator who made ``after`` (features ``new``) current where
    ``before`` (features ``old``) was: that scorers serving ``before`` will not swap to
    it (:func:`~seismo.stream.registry.model_watch.input_change`), or ``None``.

    >>> swap_note("pumps", "v1", ["a", "b"], "v2", ["b", "a"])  # doctest: +ELLIPSIS
    'scorers serving pumps version v1 will not swap to v2: it names its channels b, a ...'
    >>> swap_note("pumps", "v1", ["a", "b"], "v2", ["a", "b"]) is None
    True
    """
    if before is None or before == after or old is None or new is None:
        return None
    reshaped = window_change(old, new)
    if reshaped is not None:
        return f"scorers serving {name} version {before} will not swap to {after}: {reshaped}"
    change = input_change(old, new)
    if change is None:
        return None
    return (f"scorers serving {name} version {before} will not swap to {after}: {change}; "
            "to serve it, restart them on it once the producers send values in its order "
            "(or by name)")  # fmt: skip


def _channels(registry: ModelRegistry, name: str, version: str | None) -> list[str] | None:
    """``version``'s feature names for a note, or ``None`` (a note never fails a command)."""
    if version is None:
        return None
    try:
        return registry.channels(name, version)
    except Exception as exc:  # noqa: BLE001 - advisory: the pointer has moved or will
        log.warning("cannot read the channels of %s version %s to compare them: %s",
                    name, version, exc)  # fmt: skip
        return None


def _say(echo: Echo, warn: Echo | None, line: str, note: str | None) -> None:
    echo(line)
    if note is not None:
        (warn or echo)(note)


def run_publish(
    store: str, model: Path, keep: int, redis_url: str, redis_prefix: str, echo: Echo,
    warn: Echo | None = None,
) -> None:  # fmt: skip
    """Copy the artifact at ``model`` into the store and point its name at it; say (to
    ``warn``, default ``echo``) when scorers serving the version it replaces will not
    swap to it (:func:`swap_note`; that version's channels are read before ``keep`` may
    prune it)."""
    artifact = load_artifact(model, device="cpu")
    with open_registry(store, redis_url, redis_prefix) as registry:
        before = registry.current(artifact.name)
        old = _channels(registry, artifact.name, before)
        version = registry.publish(artifact, keep=keep)
    note = swap_note(artifact.name, before, old, version, list(artifact.feature_names))
    _say(echo, warn, f"{artifact.name} -> {version}", note)


def run_promote(
    store: str, name: str, version: str, redis_url: str, redis_prefix: str, echo: Echo,
    warn: Echo | None = None,
) -> None:  # fmt: skip
    """Point ``name`` at a stored, verified ``version`` (a note as :func:`run_publish`'s)."""
    with open_registry(store, redis_url, redis_prefix) as registry:
        before = registry.current(name)
        old = _channels(registry, name, before)
        registry.promote(name, version)
        new = _channels(registry, name, version)
    _say(echo, warn, f"{name} -> {version}", swap_note(name, before, old, version, new))


def run_rollback(
    store: str, name: str, redis_url: str, redis_prefix: str, echo: Echo,
    warn: Echo | None = None,
) -> None:  # fmt: skip
    """Point ``name`` back at its previous version (a note as :func:`run_publish`'s)."""
    with open_registry(store, redis_url, redis_prefix) as registry:
        before = registry.current(name)
        old = _channels(registry, name, before)
        version = registry.rollback(name)
        new = _channels(registry, name, version)
    _say(echo, warn, f"{name} -> {version}", swap_note(name, before, old, version, new))


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
