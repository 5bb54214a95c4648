"""A store that others can write is checked against Redis
(:mod:`seismo.stream.registry.model_registry`).

The attacker of these tests can write the artifact store (a shared volume, an
S3 bucket) but not Redis. Every load from the registry goes through
:meth:`ModelRegistry.verify` (scorer start, hot swap, promote, rollback), so a
version it refuses is never served. Each registry test runs on a plain
directory and on the same directory reached as a ``file://`` URL (the code
path of ``s3://``, with its download cache); the URL-only tests use fsspec's
``memory://`` filesystem, where any object key can be planted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis
from safetensors.torch import save as safetensors_save

from seismo.models.artifact import (
    CONFIG_FILE,
    MANIFEST_FILE,
    WEIGHTS_FILE,
    Artifact,
    build_artifact,
    load_artifact,
)
from seismo.models.artifact_io import manifest_json
from seismo.models.config import TrainConfig
from seismo.models.training import train_autoencoder
from seismo.stream.errors import RegistryError
from seismo.stream.registry.artifact_store import FsspecStore, LocalStore
from seismo.stream.registry.model_registry import ModelRegistry
from seismo.stream.registry.model_versions import digests_key

pytestmark = pytest.mark.redis

NAME = "pumps"
STORE_KINDS = ["directory", "fsspec-url"]


def _artifact(seed: int) -> Artifact:
    x = np.random.default_rng(seed).normal(size=(60, 4)).astype(np.float32)
    result = train_autoencoder(x, train=TrainConfig(epochs=1, seed=seed), device="cpu")
    return build_artifact(result, name=NAME)


@pytest.fixture(scope="module")
def artifacts() -> list[Artifact]:
    """Three versions of one model name, distinct weights (so distinct versions)."""
    made = [_artifact(seed) for seed in range(3)]
    assert len({a.version for a in made}) == 3
    return made


@pytest.fixture(params=STORE_KINDS)
def registry(
    request: pytest.FixtureRequest, tmp_path: Path, redis_client: redis.Redis, redis_key_prefix: str
) -> ModelRegistry:
    root = tmp_path / "store"
    location = str(root) if request.param == "directory" else root.as_uri()
    return ModelRegistry(location, redis_client, redis_key_prefix, cache_dir=tmp_path / "cache")


def version_dir(registry: ModelRegistry, version: str) -> Path:
    store = registry.store
    assert isinstance(store, LocalStore | FsspecStore)
    return Path(store.root) / NAME / version


def sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def edit_config(path: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    document = json.loads((path / CONFIG_FILE).read_text())
    edit(document)
    (path / CONFIG_FILE).write_text(json.dumps(document, indent=2))


def restamp_manifest(path: Path) -> None:
    """What an attacker with write access to the store does to make the files agree again."""
    document = json.loads((path / CONFIG_FILE).read_text())
    files = {f: (path / f).read_bytes() for f in (CONFIG_FILE, WEIGHTS_FILE)}
    manifest = manifest_json(document["name"], document["version"], files)
    (path / MANIFEST_FILE).write_bytes(manifest)


def scale_up(document: dict[str, Any]) -> None:
    document["scaler"]["scale"] = [s * 1e6 for s in document["scaler"]["scale"]]


def one_line(exc: BaseException) -> str:
    assert str(exc) and "\n" not in str(exc), str(exc)
    return str(exc)


def test_publish_records_the_manifest_digest_before_the_pointer_moves(
    registry: ModelRegistry, artifacts: list[Artifact], redis_client: redis.Redis
) -> None:
    version = artifacts[0].version
    seen: list[tuple[str | None, str | None]] = []

    def look(staged: Path) -> None:
        seen.append((registry.recorded_digest(NAME, version), registry.current(NAME)))
        assert (staged / MANIFEST_FILE).is_file()

    registry.publish(artifacts[0], before_verify=look)
    stored = sha256((version_dir(registry, version) / MANIFEST_FILE).read_bytes())
    assert seen == [(stored, None)]  # recorded first, pointer moved after
    assert registry.recorded_digest(NAME, version) == stored
    raw = redis_client.hgetall(digests_key(registry.prefix, NAME))
    assert raw == {version.encode(): stored.encode()}


@pytest.mark.parametrize(
    "edit",
    [scale_up, lambda d: d["calibration"].update(std=d["calibration"]["std"] * 1e-6)],
    ids=["scaler-scale-x1e6", "calibration-std"],
)
def test_a_config_tampered_in_the_store_is_never_served(
    registry: ModelRegistry, artifacts: list[Artifact], edit: Callable[[dict[str, Any]], None]
) -> None:
    v1, v2 = (registry.publish(a) for a in artifacts[:2])
    edit_config(version_dir(registry, v2), edit)
    with pytest.raises(RegistryError, match=f"refusing {NAME} version {v2}: .*config.json") as info:
        registry.verify(NAME, v2)  # the scorer's start and its hot-swap watcher load this way
    assert "checksum mismatch" in one_line(info.value)
    edit_config(version_dir(registry, v1), edit)
    with pytest.raises(RegistryError, match="checksum mismatch"):
        registry.rollback(NAME)
    with pytest.raises(RegistryError, match="checksum mismatch"):
        registry.promote(NAME, v1)
    with pytest.raises(RegistryError, match="checksum mismatch"):
        registry.publish(artifacts[0])  # a republish does not bless the tampered copy
    assert registry.current(NAME) == v2
    assert registry.history(NAME) == [v2, v1]


def test_a_tampered_config_with_a_recomputed_manifest_is_refused_by_the_digest_in_redis(
    registry: ModelRegistry, artifacts: list[Artifact]
) -> None:
    version = registry.publish(artifacts[0])
    stored = version_dir(registry, version)
    edit_config(stored, scale_up)
    restamp_manifest(stored)
    assert load_artifact(stored, device="cpu").version == version  # consistent on its own
    with pytest.raises(RegistryError, match="the registry recorded") as info:
        registry.verify(NAME, version)
    assert "modified after it was published" in one_line(info.value)
    (stored / MANIFEST_FILE).unlink()  # nor does removing the manifest make it "legacy"
    with pytest.raises(RegistryError, match="has no manifest.json"):
        registry.verify(NAME, version)


def test_replaced_weights_with_a_consistent_config_are_refused_by_the_version_digest(
    registry: ModelRegistry, artifacts: list[Artifact], redis_client: redis.Redis
) -> None:
    version = registry.publish(artifacts[0])
    stored = version_dir(registry, version)
    other = {k: v + 0.25 for k, v in artifacts[0].detector.module.state_dict().items()}
    weights = safetensors_save({k: v.contiguous() for k, v in other.items()})
    (stored / WEIGHTS_FILE).write_bytes(weights)
    edit_config(stored, lambda d: d["weights"].update(sha256=sha256(weights)))
    restamp_manifest(stored)
    with pytest.raises(RegistryError, match="the registry recorded"):
        registry.verify(NAME, version)
    # Even where Redis holds no digest (a version published before digests),
    # the version id still names its weights.
    redis_client.hdel(digests_key(registry.prefix, NAME), version)
    with pytest.raises(RegistryError, match="the weights were replaced") as info:
        registry.verify(NAME, version)
    assert f"names weights {version[-8:]}" in one_line(info.value)


def test_huge_hidden_sizes_in_the_store_are_refused_quickly(
    registry: ModelRegistry, artifacts: list[Artifact], redis_client: redis.Redis
) -> None:
    """Without Redis's digest (a legacy version), the meta build still stands in the way."""
    version = registry.publish(artifacts[0])
    stored = version_dir(registry, version)
    edit_config(stored, lambda d: d["model"].update(hidden=[10**6, 10**6]))
    restamp_manifest(stored)
    redis_client.hdel(digests_key(registry.prefix, NAME), version)
    started = time.perf_counter()
    with pytest.raises(RegistryError, match="the model config needs") as info:
        registry.verify(NAME, version)
    assert time.perf_counter() - started < 2.0
    one_line(info.value)


def test_an_oversized_config_in_the_store_is_refused_unread(
    tmp_path: Path, redis_client: redis.Redis, redis_key_prefix: str, artifacts: list[Artifact]
) -> None:
    registry = ModelRegistry(tmp_path / "store", redis_client, redis_key_prefix)
    version = registry.publish(artifacts[0])
    with (tmp_path / "store" / NAME / version / CONFIG_FILE).open("r+b") as handle:
        handle.truncate(64 * 1024**3)  # sparse: reading it whole would take minutes
    started = time.perf_counter()
    with pytest.raises(RegistryError, match="config.json is 68719476736 bytes, more than"):
        registry.verify(NAME, version)
    assert time.perf_counter() - started < 2.0
    assert [v.version for v in registry.list_versions(NAME)] == [version]  # listing survives


def test_a_version_of_an_older_seismo_loads_with_warnings_and_republishing_upgrades_it(
    registry: ModelRegistry,
    artifacts: list[Artifact],
    redis_client: redis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    version = registry.publish(artifacts[0])
    stored = version_dir(registry, version)
    (stored / MANIFEST_FILE).unlink()  # as an older seismo wrote it...
    redis_client.delete(digests_key(registry.prefix, NAME))  # ...and published it
    with caplog.at_level(logging.WARNING):
        assert registry.verify(NAME, version).version == version
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("no digest recorded in Redis" in w and "republish it" in w for w in warnings)
    assert any("has no manifest.json" in w and "not fully verified" in w for w in warnings)
    assert registry.promote(NAME, version) == version  # still usable

    def crash(_staged: Path) -> None:
        raise KeyboardInterrupt  # killed while rewriting it

    before = {p.name: p.read_bytes() for p in stored.iterdir()}
    with pytest.raises(KeyboardInterrupt):
        registry.publish(artifacts[0], before_verify=crash)
    assert registry.recorded_digest(NAME, version) is None  # so the old copy still loads
    assert {p.name: p.read_bytes() for p in stored.iterdir()} == before
    assert registry.verify(NAME, version).version == version

    assert registry.publish(artifacts[0]) == version  # republishing rewrites it whole
    manifest = (stored / MANIFEST_FILE).read_bytes()
    assert registry.recorded_digest(NAME, version) == sha256(manifest)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert registry.verify(NAME, version).version == version
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert not [w for w in warnings if "not fully verified" in w or "no digest" in w], warnings
    assert registry.history(NAME) == [version]


def test_prune_forgets_the_digests_of_pruned_versions(
    registry: ModelRegistry, artifacts: list[Artifact], redis_client: redis.Redis
) -> None:
    versions = [registry.publish(a, keep=None) for a in artifacts]
    assert registry.prune(NAME, keep=1) == versions[1::-1]
    raw = redis_client.hkeys(digests_key(registry.prefix, NAME))
    assert raw == [versions[-1].encode()]


def memory_registry(
    redis_client: redis.Redis, redis_key_prefix: str, cache: Path
) -> tuple[ModelRegistry, FsspecStore]:
    url = f"memory://seismo-integrity/{redis_key_prefix.replace(':', '-')}"
    registry = ModelRegistry(url, redis_client, redis_key_prefix, cache_dir=cache)
    assert isinstance(registry.store, FsspecStore)
    return registry, registry.store


@pytest.mark.parametrize("key", ["../../evil", "../../../../evil", "sub/config.json", "notes.txt"])
def test_an_object_beside_the_artifact_files_refuses_the_version_and_is_never_written(
    key: str,
    tmp_path: Path,
    redis_client: redis.Redis,
    redis_key_prefix: str,
    artifacts: list[Artifact],
) -> None:
    cache = tmp_path / "deep" / "er" / "cache"
    registry, store = memory_registry(redis_client, redis_key_prefix, cache)
    version = registry.publish(artifacts[0])
    planted = f"{store.root}/{NAME}/{version}/{key}"
    store.fs.pipe_file(planted, b"owned")
    try:
        with pytest.raises(RegistryError, match="refusing object") as info:
            registry.verify(NAME, version)
        assert planted in one_line(info.value)
        assert "a version holds only" in str(info.value)
        assert not [p for p in tmp_path.rglob("*") if p.name in ("evil", "notes.txt")]
        assert not (cache / NAME / version).exists()  # nothing half-downloaded is kept
    finally:
        store.fs.rm(f"{store.root}", recursive=True)
