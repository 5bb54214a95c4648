"""Where the registry keeps artifact directories: a local directory or any fsspec URL.

Both stores hold ``{root}/{name}/{version}/`` (the files ``save_artifact``
writes) and hide staging under names starting with ``.``, which are never
versions. :func:`open_store` picks the store from the location:

>>> type(open_store("/srv/seismo/models")).__name__
'LocalStore'
>>> type(open_store("memory://seismo-doctest/models")).__name__
'FsspecStore'
>>> open_store("nosuch://bucket/models")
Traceback (most recent call last):
...
seismo.stream.errors.ConfigError: model_store 'nosuch://bucket/models': fsspec knows no protocol 'nosuch'

A version is put in three steps, so a crash at any point leaves no half-written
directory under a version's name: copy to a staging name, verify the staged
copy (for a URL, as downloaded back from the store), rename to the version's
name. On object stores (s3, gcs, ...) the last step is a copy and a delete,
not atomic; the registry moves the serving pointer only after it, and every
reader verifies the checksum on load, so a version caught half-moved is refused,
never served.

Readers of a URL store load from a local cache (``cache_dir``): each version is
downloaded once, verified on every load, and downloaded again if the cached copy
fails verification. A download fetches the artifact's own files only
(`seismo.models.artifact.ARTIFACT_FILES`), each to a path that must resolve inside
the cache; any other object under the version (``../../x``, ``sub/config.json``)
refuses the whole version, since the store was written by something else.

>>> safe_destination(Path("/cache/v1"), "config.json", "s3://b/m/p/v1/config.json")
PosixPath('/cache/v1/config.json')
>>> safe_destination(Path("/cache/v1"), "../../evil", "s3://b/m/p/v1/../../evil")
Traceback (most recent call last):
...
seismo.stream.errors.RegistryError: refusing object 's3://b/m/p/v1/../../evil': a version holds only model.safetensors, config.json and manifest.json
"""  # noqa: E501

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import fsspec

from seismo.models.artifact import ARTIFACT_FILES, CONFIG_FILE
from seismo.models.artifact_io import MAX_CONFIG_BYTES
from seismo.stream.config.base import mask_url_passwords
from seismo.stream.errors import ConfigError, RegistryError
from seismo.stream.registry.model_versions import StoredVersion, is_component

Check = Callable[[Path], object]
"""Verifies a local copy of a version; raises on a bad one."""


class ArtifactStore(Protocol):
    """What the registry needs from a store of version directories."""

    location: str
    caches: bool
    """Whether ``fetch`` gives a downloaded copy (that ``refresh`` replaces)."""

    def exists(self, name: str, version: str) -> bool:
        """Whether ``name``/``version`` is stored."""
        ...

    def put(
        self, local: Path, name: str, version: str, check: Check, *, replace: bool = False
    ) -> None:
        """Store the directory ``local`` as ``name``/``version`` after ``check`` passes.

        ``replace``: the version may already be stored; its files are replaced.
        """
        ...

    def fetch(self, name: str, version: str, *, refresh: bool = False) -> Path:
        """A local directory holding ``name``/``version`` (``refresh``: not a cached copy)."""
        ...

    def scan(self, name: str) -> list[StoredVersion]:
        """The stored versions of ``name``, in no particular order."""
        ...

    def read_config(self, name: str, version: str) -> dict[str, Any] | None:
        """``config.json`` of ``name``/``version``, unverified (for notes, never to
        serve), without fetching the rest; ``None`` if it cannot be read."""
        ...

    def remove(self, name: str, version: str) -> None:
        """Delete ``name``/``version``; it never lists again, even if the delete stops halfway."""
        ...


def is_url(location: str | os.PathLike[str]) -> bool:
    """Whether ``location`` is a URL (``scheme://...``) rather than a path.

    >>> is_url("s3://bucket/models"), is_url("/models"), is_url(Path("models"))
    (True, False, False)
    """
    return isinstance(location, str) and "://" in location


def open_store(
    location: str | os.PathLike[str], *, cache_dir: str | os.PathLike[str] | None = None
) -> ArtifactStore:
    """The store at ``location``: a directory path, or a URL any fsspec filesystem opens."""
    if is_url(location):
        return FsspecStore(str(location), cache_dir=cache_dir)
    return LocalStore(Path(location))


def default_cache_dir(url: str) -> Path:
    """A folder per store URL under ``$XDG_CACHE_HOME/seismo`` (else ``~/.cache/seismo``).

    >>> default_cache_dir("s3://b/m") == default_cache_dir("s3://b/m") != default_cache_dir("s3://c")
    True
    """
    cache_home = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    base = os.path.join(cache_home, "seismo")
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    return Path(base) / "artifacts" / digest


class LocalStore:
    """Versions in a directory on this machine (or a volume shared by the services)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.location = str(root)
        self.caches = False

    def exists(self, name: str, version: str) -> bool:
        """Whether the version's directory exists."""
        return (self.root / name / version).is_dir()

    def put(
        self, local: Path, name: str, version: str, check: Check, *, replace: bool = False
    ) -> None:
        """Copy into a staging directory beside the target, check it, rename it.

        With ``replace``, an existing target is first renamed into the staging
        directory (removed with it), and put back if the final rename fails.
        """
        target = self.root / name / version
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(
            tempfile.mkdtemp(prefix=f".{version}.", suffix=".staging", dir=target.parent)
        )
        try:
            staged = staging / version
            shutil.copytree(local, staged)
            _fsync_tree(staged)
            check(staged)
            retired = staging / ".replaced"
            if replace and target.exists():
                os.rename(target, retired)
            try:
                os.rename(staged, target)
            except OSError:
                if retired.exists():
                    os.rename(retired, target)
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def fetch(self, name: str, version: str, *, refresh: bool = False) -> Path:
        """The version's own directory (no copy)."""
        return self.root / name / version

    def scan(self, name: str) -> list[StoredVersion]:
        """Every directory under ``name`` whose name is a valid version."""
        folder = self.root / name
        if not folder.is_dir():
            return []
        return [_describe_local(p) for p in folder.iterdir() if p.is_dir() and is_component(p.name)]

    def read_config(self, name: str, version: str) -> dict[str, Any] | None:
        """See :meth:`ArtifactStore.read_config`."""
        try:
            config = self.root / name / version / CONFIG_FILE
            if config.stat().st_size > MAX_CONFIG_BYTES:
                return None
            document = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            return None
        return document if isinstance(document, dict) else None

    def remove(self, name: str, version: str) -> None:
        """Rename out of sight first, so a half-deleted directory never lists as a version."""
        path = self.root / name / version
        trash = Path(tempfile.mkdtemp(prefix=f".{version}.", suffix=".trash", dir=path.parent))
        os.rename(path, trash / version)
        shutil.rmtree(trash, ignore_errors=True)


class FsspecStore:
    """Versions under an fsspec URL (``s3://``, ``gs://``, ``az://``, ``file://``, ...).

    The protocol's package (s3fs, gcsfs, adlfs, ...) must be installed; its
    credentials come from its usual environment variables or config files.
    """

    def __init__(self, url: str, *, cache_dir: str | os.PathLike[str] | None = None) -> None:
        self.location = mask_url_passwords(url)  # for messages: a password is never shown
        self.caches = True
        try:
            fs, root = fsspec.core.url_to_fs(url)
        except ValueError as exc:
            protocol = url.split("://", 1)[0]
            raise ConfigError(
                f"model_store {self.location!r}: fsspec knows no protocol {protocol!r}"
            ) from exc
        except ImportError as exc:
            raise ConfigError(
                f"model_store {self.location!r} needs a package that is not installed: {exc}"
            ) from exc
        self.fs: Any = fs
        self.root = root.rstrip("/")
        self.cache = Path(cache_dir) if cache_dir is not None else default_cache_dir(url)

    def _path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def exists(self, name: str, version: str) -> bool:
        """Whether the version's config file is in the store."""
        return bool(self.fs.exists(self._path(name, version, CONFIG_FILE)))

    def put(
        self, local: Path, name: str, version: str, check: Check, *, replace: bool = False
    ) -> None:
        """Upload to a staging prefix, check the copy downloaded back, then move it.

        Onto an existing prefix (``replace``, or the leftovers of a removal
        that stopped halfway) the files move one by one, ``manifest.json``
        last; a reader caught in between fails verification and retries.
        """
        staging = self._path(name, f".{version}.{os.urandom(6).hex()}.staging")
        target = self._path(name, version)
        try:
            for file in _files(local):
                if file not in ARTIFACT_FILES:
                    raise RegistryError(f"refusing to store {local / file}: not an artifact file")
                remote = f"{staging}/{file}"
                self.fs.makedirs(remote.rsplit("/", 1)[0], exist_ok=True)
                self.fs.put_file(str(local / file), remote)
            with tempfile.TemporaryDirectory(prefix="seismo-verify-") as tmp:
                check(self._download(staging, Path(tmp) / version))
            if replace or self.fs.exists(target):
                for file in ARTIFACT_FILES:
                    if self.fs.exists(f"{staging}/{file}"):
                        self.fs.mv(f"{staging}/{file}", f"{target}/{file}")
            else:
                self.fs.mv(staging, target, recursive=True)
        finally:
            if self.fs.exists(staging):
                self.fs.rm(staging, recursive=True)

    def fetch(self, name: str, version: str, *, refresh: bool = False) -> Path:
        """The cached copy of the version, downloaded first when missing or ``refresh``."""
        cached = self.cache / name / version
        if cached.is_dir() and not refresh:
            return cached
        if not self.exists(name, version):
            return cached  # the caller reports the missing version
        cached.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f".{version}.", dir=cached.parent) as tmp:
            fresh = self._download(self._path(name, version), Path(tmp) / version)
            if cached.is_dir():
                shutil.rmtree(cached)
            try:
                os.rename(fresh, cached)
            except OSError:
                if not cached.is_dir():
                    raise  # else another process sharing the cache was first
        return cached

    def scan(self, name: str) -> list[StoredVersion]:
        """Every directory under ``name`` whose name is a valid version."""
        folder = self._path(name)
        try:
            entries = self.fs.ls(folder, detail=True)
        except FileNotFoundError:
            return []
        versions = []
        for entry in entries:
            version = entry["name"].rstrip("/").rsplit("/", 1)[-1]
            if entry.get("type") == "directory" and is_component(version):
                versions.append(self._describe(name, version))
        return versions

    def remove(self, name: str, version: str) -> None:
        """Delete the config file first (a version without one never lists), then the rest."""
        path = self._path(name, version)
        if self.fs.exists(f"{path}/{CONFIG_FILE}"):
            self.fs.rm_file(f"{path}/{CONFIG_FILE}")
        if self.fs.exists(path):
            self.fs.rm(path, recursive=True)

    def _download(self, remote: str, local: Path) -> Path:
        """Fetch the artifact files under ``remote`` into the new directory ``local``.

        Every object is checked before anything is written: an object that is
        not an artifact file refuses the whole version (`RegistryError`).
        """
        prefix = remote.rstrip("/") + "/"
        local.mkdir(parents=True)
        base = local.resolve()
        wanted = []
        for path in self.fs.find(remote):
            key = path[len(prefix) :] if path.startswith(prefix) else path
            # named from the store's masked URL: the fsspec path may hold its credentials
            inside = path[len(self.root) :] if path.startswith(self.root) else "/" + key
            wanted.append((path, safe_destination(base, key, f"{self.location}{inside}")))
        for path, dest in wanted:
            self.fs.get_file(path, str(dest))
        return local

    def read_config(self, name: str, version: str) -> dict[str, Any] | None:
        """See :meth:`ArtifactStore.read_config`."""
        config = self._path(name, version, CONFIG_FILE)
        try:
            if int(self.fs.info(config).get("size") or 0) > MAX_CONFIG_BYTES:
                return None
            document = json.loads(self.fs.cat_file(config))
        except (OSError, ValueError, TypeError, AttributeError, RecursionError):
            return None
        return document if isinstance(document, dict) else None

    def _describe(self, name: str, version: str) -> StoredVersion:
        config = self._path(name, version, CONFIG_FILE)
        try:
            info = self.fs.info(config)
            if int(info.get("size") or 0) > MAX_CONFIG_BYTES:
                return StoredVersion(version, "", _mtime_ns(info))
            created = json.loads(self.fs.cat_file(config)).get("created_at", "")
            stored_ns = _mtime_ns(info)
        except (OSError, ValueError, TypeError, AttributeError, RecursionError):
            return StoredVersion(version, "", 0)
        return StoredVersion(version, created if isinstance(created, str) else "", stored_ns)


def safe_destination(base: Path, key: str, what: str) -> Path:
    """Where the object ``key`` (relative to its version) is downloaded under ``base``.

    Only the artifact's own files are accepted, and the path must resolve
    inside ``base`` (``base`` itself already resolved); anything else raises
    a `RegistryError` naming ``what`` (the object).
    """
    if key not in ARTIFACT_FILES:
        expected = ", ".join(ARTIFACT_FILES[:-1]) + f" and {ARTIFACT_FILES[-1]}"
        raise RegistryError(f"refusing object {what!r}: a version holds only {expected}")
    dest = (base / key).resolve()
    if not dest.is_relative_to(base):
        raise RegistryError(f"refusing object {what!r}: it would be written outside {base}")
    return dest


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _fsync_tree(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())


def _mtime_ns(info: dict[str, Any]) -> int:
    """Modification time from whatever key the filesystem reports, in ns (0 if none).

    >>> _mtime_ns({"mtime": 1.5}), _mtime_ns({"size": 3})
    (1500000000, 0)
    """
    for key in ("mtime", "LastModified", "last_modified", "updated", "created"):
        value = info.get(key)
        if isinstance(value, int | float):
            return int(value * 1e9)
        if value is not None and hasattr(value, "timestamp"):
            return int(value.timestamp() * 1e9)
        if isinstance(value, str):
            try:
                return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1e9)
            except ValueError:
                continue
    return 0


def _describe_local(path: Path) -> StoredVersion:
    config = path / CONFIG_FILE
    try:
        info = config.stat()
        stored_ns = info.st_mtime_ns
        created = ""
        if info.st_size <= MAX_CONFIG_BYTES and config.is_file():
            created = json.loads(config.read_text(encoding="utf-8")).get("created_at", "")
    except (OSError, ValueError, AttributeError, RecursionError):
        created, stored_ns = "", 0
    return StoredVersion(path.name, created if isinstance(created, str) else "", stored_ns)
