"""Pure rules of the model registry: names, Redis keys, history, order and pruning.

No Redis and no file system here; :mod:`seismo.stream.registry.model_registry` applies these rules.

Examples
--------
>>> current_key("seismo", "pumps"), history_key("seismo", "pumps")
('seismo:model:pumps:current', 'seismo:model:pumps:history')
>>> events_channel("seismo", "pumps"), digests_key("seismo", "pumps")
('seismo:model:pumps:events', 'seismo:model:pumps:digests')
>>> rollback_target(parse_history([b"v3", b"v2", b"v1"]), "v3")
'v2'
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from seismo.stream.errors import ConfigError, RegistryError

_COMPONENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


def check_component(value: str, what: str) -> str:
    """Return ``value`` if it is safe as a directory name and a Redis key part.

    Letters, digits, ``.``, ``_`` and ``-``, starting with a letter or digit
    (so never ``.``, ``..`` or a hidden staging name), at most 200 characters.

    >>> check_component("vae-20261123T000000-abcd1234", "version")
    'vae-20261123T000000-abcd1234'
    >>> check_component("../etc", "model name")
    Traceback (most recent call last):
    ...
    seismo.stream.errors.RegistryError: model name '../etc' is not allowed: use letters, digits, '.', '_' and '-', starting with a letter or digit
    """  # noqa: E501
    if not isinstance(value, str) or not _COMPONENT.fullmatch(value):
        raise RegistryError(
            f"{what} {value!r} is not allowed: use letters, digits, '.', '_' and '-', "
            "starting with a letter or digit"
        )
    return value


def is_component(value: str) -> bool:
    """Whether ``value`` passes :func:`check_component` (hidden names never do).

    >>> is_component("v1"), is_component(".v1.abc.staging")
    (True, False)
    """
    return bool(_COMPONENT.fullmatch(value))


def current_key(prefix: str, name: str) -> str:
    """The string key naming the version that serves ``name``."""
    return f"{prefix}:model:{name}:current"


def history_key(prefix: str, name: str) -> str:
    """The list key of versions that were current, most recent first."""
    return f"{prefix}:model:{name}:history"


def digests_key(prefix: str, name: str) -> str:
    """The hash key ``version -> sha256 of its manifest.json``, recorded when it is stored.

    Readers trust this record over the store: a version whose manifest no
    longer has this digest was modified in the store and is refused.
    """
    return f"{prefix}:model:{name}:digests"


def events_channel(prefix: str, name: str) -> str:
    """The pub/sub channel that receives each new current version of ``name``."""
    return f"{prefix}:model:{name}:events"


def decode(value: bytes | str | None) -> str | None:
    """A Redis reply as text (clients may or may not decode responses).

    >>> decode(b"v1"), decode("v1"), decode(None)
    ('v1', 'v1', None)
    """
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return value


def parse_history(raw: Iterable[bytes | str]) -> list[str]:
    """The history list as text, most recent first, empty entries and repeats dropped.

    >>> parse_history([b"v3", b"", b"v2", "v3", b"v1"])
    ['v3', 'v2', 'v1']
    """
    seen: set[str] = set()
    out: list[str] = []
    for item in raw:
        version = decode(item)
        if version and version not in seen:
            seen.add(version)
            out.append(version)
    return out


def rollback_target(history: Sequence[str], current: str | None) -> str:
    """The version that was current just before ``current``.

    >>> rollback_target(["v2", "v1"], "v2")
    'v1'
    >>> rollback_target(["v1"], "v1")
    Traceback (most recent call last):
    ...
    seismo.stream.errors.RegistryError: nothing to roll back to: v1 is the oldest version in the ...
    >>> rollback_target([], None)
    Traceback (most recent call last):
    ...
    seismo.stream.errors.RegistryError: nothing to roll back: no current version
    """
    if current is None:
        raise RegistryError("nothing to roll back: no current version")
    if current not in history:
        raise RegistryError(f"cannot roll back: current version {current} is not in the history")
    index = list(history).index(current)
    if index + 1 >= len(history):
        raise RegistryError(
            f"nothing to roll back to: {current} is the oldest version in the history"
        )
    return history[index + 1]


@dataclass(frozen=True)
class StoredVersion:
    """One version directory of the store.

    Attributes
    ----------
    version : str
    created_at : str
        The artifact's ISO-8601 creation time (``""`` when unreadable).
    stored_ns : int
        When it entered the store (mtime of its ``config.json``, nanoseconds).
    """

    version: str
    created_at: str
    stored_ns: int


def newest_first(versions: Iterable[StoredVersion]) -> list[StoredVersion]:
    """Order by arrival in the store, then creation time, then version; newest first.

    >>> vs = [StoredVersion("a", "2026-01-01", 5), StoredVersion("b", "2026-01-02", 5),
    ...       StoredVersion("c", "2025-12-31", 9)]
    >>> [v.version for v in newest_first(vs)]
    ['c', 'b', 'a']
    """
    return sorted(versions, key=lambda v: (v.stored_ns, v.created_at, v.version), reverse=True)


def check_keep(keep: int) -> int:
    """``keep`` must be a positive integer.

    >>> check_keep(0)
    Traceback (most recent call last):
    ...
    seismo.stream.errors.ConfigError: --keep must be at least 1, got 0
    """
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise ConfigError(f"--keep must be at least 1, got {keep!r}")
    return keep


def choose_prune(newest: Sequence[str], keep: int, protected: Iterable[str | None]) -> list[str]:
    """Versions to delete: all but the ``keep`` newest, never a protected one.

    Parameters
    ----------
    newest : sequence of str
        Versions in the store, newest first.
    keep : int
        How many of the newest versions survive (at least 1).
    protected : iterable of str or None
        Versions that survive whatever their age (the current one); ``None`` is ignored.

    Returns
    -------
    list of str
        Oldest last, in the order of ``newest``.

    >>> choose_prune(["v5", "v4", "v3", "v2", "v1"], 2, ["v1"])
    ['v3', 'v2']
    >>> choose_prune(["v2", "v1"], 3, [None])
    []
    """
    keep = check_keep(keep)
    spared = {p for p in protected if p is not None}
    return [v for v in list(newest)[keep:] if v not in spared]
