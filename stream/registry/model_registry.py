"""The model registry: an artifact store plus a Redis pointer per model name.

Store layout (a local directory shared by the services, or any fsspec URL such
as ``s3://bucket/models``; see :mod:`seismo.stream.registry.artifact_store`)::

    {root}/{name}/{version}/    an artifact directory as written by save_artifact
    {root}/{name}/.{version}.*  staging and trash; never a version

Redis (``prefix`` as in :mod:`seismo.stream.io.redis_stats`)::

    {prefix}:model:{name}:current   string: the version that serves
    {prefix}:model:{name}:history   list: versions that were current, most recent first
    {prefix}:model:{name}:digests   hash: version -> sha256 of its manifest.json
    {prefix}:model:{name}:events    pub/sub channel: each new current version

Publishing is atomic in this order:

1. the artifact is written locally (``save_artifact``, with its
   ``manifest.json``) and verified with ``load_artifact``;
2. the sha256 of its manifest is recorded in the ``digests`` hash;
3. it is copied into a hidden staging name in the store and the staged copy is
   verified again (for a URL store, as downloaded back), against that digest;
4. it is renamed into ``{root}/{name}/{version}``;
5. one Lua script sets the pointer, pushes the history and publishes the event;
6. versions beyond ``keep`` are pruned (with their digests), never the current one nor
   one the publisher protects (the retrainer's reference version).

A crash or a failed verification before step 5 leaves the pointer, and so the
serving version, as it was.

Every load from the registry (:meth:`ModelRegistry.verify`: scorer start, hot
swap, rollback, promote) trusts Redis over the store, which may be a bucket
that others can write: the manifest must have the recorded digest, each file
the manifest's sha256 and size, and a version id of the form
``{arch}-{yyyymmddTHHMMSS}-{8 hex}`` must end with the weights' sha256[:8]
(ids of other forms are not bound to their weights), all before the config
is parsed into a module. A version stored before digests were recorded (or
by an older seismo, without a manifest) still loads, with a WARNING;
publishing it again rewrites it with a manifest and records its digest.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import redis

from seismo.models.artifact import Artifact, load_artifact, manifest_sha256, save_artifact
from seismo.models.errors import ArtifactError
from seismo.stream.errors import RegistryError
from seismo.stream.registry.artifact_store import ArtifactStore, open_store
from seismo.stream.registry.model_versions import (
    check_component,
    check_keep,
    choose_prune,
    current_key,
    decode,
    digests_key,
    events_channel,
    history_key,
    newest_first,
    parse_history,
    rollback_target,
)

log = logging.getLogger(__name__)

DEFAULT_KEEP = 5
"""Versions kept per model name unless told otherwise (the current one always)."""
HISTORY_CAP = 100
"""Longest history list kept in Redis."""

#: KEYS = current, history; ARGV = version, events channel, history cap.
MOVE_LUA = """
redis.call('SET', KEYS[1], ARGV[1])
redis.call('LREM', KEYS[2], 0, ARGV[1])
redis.call('LPUSH', KEYS[2], ARGV[1])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[3]) - 1)
redis.call('PUBLISH', ARGV[2], ARGV[1])
return 1
"""

#: KEYS = current, history; ARGV = expected current, target, events channel.
#: Moves back only if nobody moved the pointer since it was read; returns 1 or 0.
ROLLBACK_LUA = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local h = redis.call('LRANGE', KEYS[2], 0, -1)
for i = 1, #h - 1 do
  if h[i] == ARGV[1] then
    if h[i + 1] ~= ARGV[2] then return 0 end
    redis.call('LTRIM', KEYS[2], i, -1)
    redis.call('SET', KEYS[1], ARGV[2])
    redis.call('PUBLISH', ARGV[3], ARGV[2])
    return 1
  end
end
return 0
"""

Hook = Callable[[Path], None]


@dataclass(frozen=True)
class VersionInfo:
    """A version in the store, as listed."""

    version: str
    created_at: str
    current: bool


class ModelRegistry:
    """Versions of models in an artifact store and their current pointers in Redis.

    Parameters
    ----------
    store : path, URL or ArtifactStore
        The artifact store: a directory (created on first publish), an fsspec
        URL (``s3://bucket/models``; its package, e.g. s3fs, installed), or a
        store object (:mod:`seismo.stream.registry.artifact_store`).
    client : redis.Redis
        A connected client (see :func:`seismo.stream.io.redis_stats.connect`).
    prefix : str
        Prefix of the Redis keys, e.g. ``"seismo"``.
    cache_dir : path, optional
        Where a URL store's versions are downloaded to for loading.
    """

    def __init__(
        self,
        store: str | os.PathLike[str] | ArtifactStore,
        client: redis.Redis,
        prefix: str,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if isinstance(store, str | os.PathLike):
            store = open_store(store, cache_dir=cache_dir)
        self.store: ArtifactStore = store
        self.client = client
        self.prefix = prefix
        self._move = client.register_script(MOVE_LUA)
        self._rollback = client.register_script(ROLLBACK_LUA)

    @property
    def location(self) -> str:
        """The store's directory or URL, for messages."""
        return self.store.location

    def current(self, name: str) -> str | None:
        """The version that serves ``name``, or ``None`` before the first publish."""
        return decode(
            self.client.get(current_key(self.prefix, check_component(name, "model name")))
        )

    def history(self, name: str) -> list[str]:
        """Versions that were current, most recent first."""
        raw = self.client.lrange(
            history_key(self.prefix, check_component(name, "model name")), 0, -1
        )
        return parse_history(raw)

    def channels(self, name: str, version: str) -> list[str] | None:
        """The feature names ``config.json`` of a stored version gives, unverified (for
        notes to an operator, never to serve); ``None`` when they cannot be read."""
        document = self.store.read_config(check_component(name, "model name"),
                                          check_component(version, "version"))  # fmt: skip
        names = None if document is None else document.get("feature_names")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            return None
        return names

    def list_versions(self, name: str) -> list[VersionInfo]:
        """Versions of ``name`` in the store, newest first, the current one marked."""
        current = self.current(name)
        return [
            VersionInfo(v.version, v.created_at, v.version == current)
            for v in newest_first(self.store.scan(check_component(name, "model name")))
        ]

    def publish(
        self,
        artifact: Artifact,
        *,
        keep: int | None = DEFAULT_KEEP,
        before_verify: Hook | None = None,
        protect: Sequence[str] = (),
    ) -> str:
        """Store ``artifact``, verify it, point its name at it; return the version.

        ``before_verify`` is called with the staged copy in the store before
        its verification (a fault-injection point for tests). A version
        already in the store with a recorded digest is verified again and
        reused when ``artifact`` is the same model (both saved by this seismo
        give the same manifest: a stored copy written by another release
        differs in ``seismo_version`` only), and refused when it is not; one
        without (stored before digests were recorded) is
        rewritten from ``artifact``, manifest and digest included.
        ``keep=None`` prunes nothing; the versions in ``protect`` are never pruned.
        """
        if keep is not None:
            check_keep(keep)
        name = check_component(artifact.name, "model name")
        version = check_component(artifact.version, "version")
        stored = self.store.exists(name, version)
        if stored and self.recorded_digest(name, version) is not None:
            held = self.verify(name, version)
            if _digest_of(held) != _digest_of(artifact):  # both saved by this seismo
                raise RegistryError(
                    f"refusing to publish {name} version {version}: the store holds that "
                    "version with other contents (a model edited after it was written keeps "
                    "its version id); train it again to get a version of its own"
                )
        else:
            if stored:
                log.info("rewriting %s version %s: it has no recorded digest", name, version)
            self._store(artifact, before_verify, replace=stored)
        self._point(name, version)
        log.info("published %s version %s to %s", name, version, self.location)
        if keep is not None:
            self.prune(name, keep, protect)
        return version

    def promote(self, name: str, version: str, *, keep: int | None = None) -> str:
        """Point ``name`` at a stored ``version`` after verifying it."""
        self.verify(name, version)
        self._point(name, version)
        if keep is not None:
            self.prune(name, keep)
        return version

    def rollback(self, name: str) -> str:
        """Point ``name`` back at the version that was current before; return it."""
        current = self.current(name)
        if current is None:
            raise RegistryError(f"{name} has no current version to roll back from")
        target = rollback_target(self.history(name), current)
        self.verify(name, target)
        keys = [current_key(self.prefix, name), history_key(self.prefix, name)]
        moved = self._rollback(keys=keys, args=[current, target, events_channel(self.prefix, name)])
        if not moved:
            raise RegistryError(f"{name}: the pointer moved during the rollback; try again")
        return target

    def recorded_digest(self, name: str, version: str) -> str | None:
        """The sha256 of ``version``'s manifest recorded in Redis, or ``None``."""
        key = digests_key(self.prefix, check_component(name, "model name"))
        return decode(self.client.hget(key, check_component(version, "version")))

    def verify(self, name: str, version: str, *, device: str = "cpu") -> Artifact:
        """Load a stored version onto ``device`` after verifying it whole.

        Its manifest must have the digest recorded in Redis, every file must
        match the manifest, the weights the version id, and the artifact must
        hold this name and version (see :func:`seismo.models.artifact.load_artifact`).
        A version without a recorded digest loads with a WARNING. From a URL
        store it loads the cached copy, and downloads it again once if that
        copy fails verification.
        """
        name = check_component(name, "model name")
        version = check_component(version, "version")
        expected = self.recorded_digest(name, version)
        try:
            if not self.store.exists(name, version):
                raise RegistryError(f"{name} has no version {version} in {self.location}")
            if expected is None:
                log.warning(
                    "%s version %s has no digest recorded in Redis (stored by an older "
                    "seismo, or Redis lost its keys): it is not fully verified, anyone who can "
                    "write %s can change it unnoticed; republish it (seismo models publish "
                    "--model DIR) to record one",
                    name, version, self.location,
                )
            path = self.store.fetch(name, version)
            try:
                return _verify(path, name, version, expected, device)
            except RegistryError as exc:
                if not self.store.caches:
                    raise
                log.warning("%s; downloading it again from %s", exc, self.location)
            fresh = self.store.fetch(name, version, refresh=True)
            return _verify(fresh, name, version, expected, device)
        except OSError as exc:
            raise RegistryError(f"cannot fetch {name} version {version}: {exc}") from exc

    def prune(self, name: str, keep: int, protect: Sequence[str] = ()) -> list[str]:
        """Delete all but the ``keep`` newest versions, never the current one nor one in
        ``protect``."""
        newest = [v.version for v in newest_first(self.store.scan(name))]
        doomed = choose_prune(newest, keep, [self.current(name), *protect])
        if not doomed:
            return []
        with self.client.pipeline(transaction=True) as pipe:
            for version in doomed:
                pipe.lrem(history_key(self.prefix, name), 0, version)
                pipe.hdel(digests_key(self.prefix, name), version)
            pipe.execute()
        for version in doomed:
            self.store.remove(name, version)
        log.info("pruned %s versions %s", name, ", ".join(doomed))
        return doomed

    def _point(self, name: str, version: str) -> None:
        keys = [current_key(self.prefix, name), history_key(self.prefix, name)]
        self._move(keys=keys, args=[version, events_channel(self.prefix, name), HISTORY_CAP])

    def _store(self, artifact: Artifact, before_verify: Hook | None, *, replace: bool) -> None:
        """Save, record the manifest's digest, then put into the store (steps 1-4).

        A new version's digest is recorded before its copy can be seen, so no
        stored version lacks one. A version stored before digests (``replace``)
        gets its digest only once its copy is replaced: a failure in between
        leaves it loadable as it was, never refused for a manifest it lacks.
        """
        name, version = artifact.name, artifact.version
        digest: str | None = None

        def check(staged: Path) -> None:
            if before_verify is not None:
                before_verify(staged)
            _verify(staged, name, version, digest)

        try:
            with tempfile.TemporaryDirectory(prefix="seismo-publish-") as tmp:
                local = save_artifact(artifact, Path(tmp) / version)
                digest = manifest_sha256(local)
                if digest is None:
                    raise RegistryError(f"refusing {local}: save_artifact wrote no manifest")
                _verify(local, name, version, digest)
                if not replace:
                    self.client.hset(digests_key(self.prefix, name), version, digest)
                self.store.put(local, name, version, check, replace=replace)
                if replace:
                    self.client.hset(digests_key(self.prefix, name), version, digest)
        except OSError as exc:
            raise RegistryError(f"cannot store {name} version {version}: {exc}") from exc


def publish(
    artifact: Artifact,
    root: str | os.PathLike[str],
    client: redis.Redis,
    prefix: str,
    *,
    keep: int | None = DEFAULT_KEEP,
) -> str:
    """Store, verify and point at ``artifact`` (see :meth:`ModelRegistry.publish`)."""
    return ModelRegistry(root, client, prefix).publish(artifact, keep=keep)


def _digest_of(artifact: Artifact) -> str | None:
    """The digest of the manifest ``artifact`` gets when this seismo saves it: the same
    for the same model (saving is deterministic within a release; the config records
    which release wrote it)."""
    with tempfile.TemporaryDirectory(prefix="seismo-digest-") as tmp:
        return manifest_sha256(save_artifact(artifact, Path(tmp) / artifact.version))


def _verify(
    path: Path, name: str, version: str, digest: str | None, device: str = "cpu"
) -> Artifact:
    """Load ``path`` (manifest checked against ``digest`` when given) as ``name``/``version``."""
    if not path.is_dir():
        raise RegistryError(f"{name} has no version {version} in the store ({path})")
    try:
        artifact = load_artifact(path, device=device, manifest_digest=digest)
    except ArtifactError as exc:
        raise RegistryError(f"refusing {name} version {version}: {exc}") from exc
    if (artifact.name, artifact.version) != (name, version):
        raise RegistryError(f"refusing {path}: it holds {artifact.name} version {artifact.version}")
    return artifact
