"""The model registry (:mod:`seismo.stream.registry.model_registry`) against a real Redis and tmp
stores.

Each test writes under its own ``redis_key_prefix`` and its own store
directory; the artifacts are tiny models trained once per module. Every
registry test runs twice: on a plain directory (:class:`LocalStore`) and on the
same kind of directory reached through fsspec as a ``file://`` URL
(:class:`FsspecStore`, with its download cache), the code path of ``s3://`` and
the other object stores.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import redis

from seismo.models.artifact import WEIGHTS_FILE, Artifact, build_artifact, save_artifact
from seismo.models.config import TrainConfig
from seismo.models.training import train_autoencoder
from seismo.stream.errors import ConfigError, RegistryError
from seismo.stream.registry.artifact_store import FsspecStore, LocalStore
from seismo.stream.registry.model_registry import ModelRegistry, publish
from seismo.stream.registry.model_versions import events_channel, history_key
from tests.pipes import run_seismo

pytestmark = pytest.mark.redis

NAME = "pumps"


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


STORE_KINDS = ["directory", "fsspec-url"]


def store_location(kind: str, root: Path) -> str:
    return str(root) if kind == "directory" else root.as_uri()


@pytest.fixture(params=STORE_KINDS)
def registry(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    redis_client: redis.Redis,
    redis_key_prefix: str,
) -> ModelRegistry:
    location = store_location(request.param, tmp_path / "store")
    made = ModelRegistry(location, redis_client, redis_key_prefix, cache_dir=tmp_path / "cache")
    expected = LocalStore if request.param == "directory" else FsspecStore
    assert type(made.store) is expected
    return made


def stored(registry: ModelRegistry) -> Path:
    """The directory that holds the registry's versions, whichever store reaches it."""
    store = registry.store
    assert isinstance(store, LocalStore | FsspecStore)
    return Path(store.root)


def flip_byte(path: Path, offset: int = -1) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def assert_one_line(exc: BaseException) -> None:
    assert str(exc) and "\n" not in str(exc), str(exc)


def test_publish_two_versions_moves_pointer_and_history(
    registry: ModelRegistry, artifacts: list[Artifact]
) -> None:
    v1, v2 = artifacts[0].version, artifacts[1].version
    assert registry.current(NAME) is None
    assert registry.publish(artifacts[0]) == v1
    assert registry.publish(artifacts[1]) == v2

    assert registry.current(NAME) == v2
    assert registry.history(NAME) == [v2, v1]
    listed = registry.list_versions(NAME)
    assert [(v.version, v.current) for v in listed] == [(v2, True), (v1, False)]
    assert registry.verify(NAME, v2).version == v2
    names = sorted(p.name for p in (stored(registry) / NAME).iterdir())
    assert names == sorted([v1, v2])  # no staging left behind


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_module_level_publish_and_republish_is_idempotent(
    kind: str,
    tmp_path: Path,
    redis_client: redis.Redis,
    redis_key_prefix: str,
    artifacts: list[Artifact],
) -> None:
    location = store_location(kind, tmp_path)
    version = publish(artifacts[0], location, redis_client, redis_key_prefix)
    assert publish(artifacts[0], location, redis_client, redis_key_prefix) == version
    registry = ModelRegistry(location, redis_client, redis_key_prefix)
    assert registry.history(NAME) == [version]


def test_another_model_under_a_stored_version_id_is_refused_not_silently_replaced(
    registry: ModelRegistry, artifacts: list[Artifact]
) -> None:
    """An artifact edited after it was written (its calibration, here) keeps its version id.
    Published again, the stored copy was verified and served, and the edited one
    dropped without a word (a stranger helper); now it is refused in one line."""
    import dataclasses

    version = registry.publish(artifacts[0])
    calibration = artifacts[0].calibration
    edited = dataclasses.replace(
        artifacts[0], calibration=dataclasses.replace(calibration, mean=calibration.mean * 10)
    )
    with pytest.raises(RegistryError, match=f"refusing to publish {NAME} version {version}: "
                                            "the store holds that version with other contents"):
        registry.publish(edited)
    assert registry.verify(NAME, version).calibration == calibration
    assert registry.publish(artifacts[0]) == version  # the same model again: reused


def test_the_same_model_republished_by_another_seismo_release_is_reused(
    registry: ModelRegistry, artifacts: list[Artifact], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The config records the release that saved it, so the stored copy's manifest
    differs from a save by this release; the same model must still be reused, also when
    published from a directory as the CLI does (a reviewer helper)."""
    import seismo.models.artifact as artifact_module
    from seismo.models.artifact import load_artifact

    with monkeypatch.context() as patch:
        patch.setattr(artifact_module, "_seismo_version", lambda: "0.0.1-older")
        version = registry.publish(artifacts[1])
    directory = save_artifact(artifacts[1], tmp_path / "trained")
    assert registry.publish(load_artifact(directory, device="cpu")) == version


def test_rollback_returns_to_the_previous_version(
    registry: ModelRegistry, artifacts: list[Artifact]
) -> None:
    v1, v2 = (registry.publish(a) for a in artifacts[:2])
    assert registry.rollback(NAME) == v1
    assert registry.current(NAME) == v1
    assert registry.history(NAME) == [v1]
    with pytest.raises(RegistryError, match="nothing to roll back to") as info:
        registry.rollback(NAME)
    assert_one_line(info.value)
    assert registry.current(NAME) == v1
    assert (stored(registry) / NAME / v2).is_dir()  # still stored: promote can bring it back
    assert registry.promote(NAME, v2) == v2
    assert registry.history(NAME) == [v2, v1]


def test_promote_refuses_unknown_and_corrupt_versions(
    registry: ModelRegistry, artifacts: list[Artifact]
) -> None:
    v1, v2 = (registry.publish(a) for a in artifacts[:2])
    with pytest.raises(RegistryError, match="has no version") as info:
        registry.promote(NAME, "vae-20000101T000000-deadbeef")
    assert_one_line(info.value)

    flip_byte(stored(registry) / NAME / v1 / WEIGHTS_FILE)
    with pytest.raises(RegistryError, match="refusing") as info:
        registry.promote(NAME, v1)
    assert_one_line(info.value)
    assert registry.current(NAME) == v2
    assert registry.history(NAME) == [v2, v1]

    with pytest.raises(RegistryError, match="refusing"):
        registry.rollback(NAME)  # the rollback target is the corrupt one
    assert registry.current(NAME) == v2


def test_failed_verification_leaves_the_old_version_serving(
    registry: ModelRegistry, artifacts: list[Artifact]
) -> None:
    """A publish that dies before the pointer moves changes nothing that serves."""
    v1 = registry.publish(artifacts[0])
    old_dir = stored(registry) / NAME / v1
    old_files = {p.name: p.read_bytes() for p in old_dir.iterdir()}

    def corrupt(staged: Path) -> None:
        flip_byte(staged / WEIGHTS_FILE, offset=len((staged / WEIGHTS_FILE).read_bytes()) // 2)

    with pytest.raises(RegistryError, match="refusing") as info:
        registry.publish(artifacts[1], before_verify=corrupt)
    assert_one_line(info.value)

    def crash(_staged: Path) -> None:
        raise KeyboardInterrupt  # the process is killed between write and pointer move

    with pytest.raises(KeyboardInterrupt):
        registry.publish(artifacts[1], before_verify=crash)

    assert registry.current(NAME) == v1
    assert registry.history(NAME) == [v1]
    assert [p.name for p in (stored(registry) / NAME).iterdir()] == [v1]  # no staging left
    assert {p.name: p.read_bytes() for p in old_dir.iterdir()} == old_files
    assert registry.verify(NAME, v1).version == v1


def test_keep_prunes_old_versions_but_never_the_current(
    registry: ModelRegistry, artifacts: list[Artifact], redis_client: redis.Redis
) -> None:
    v0, v1, v2 = (a.version for a in artifacts)
    for artifact in artifacts:
        registry.publish(artifact, keep=None)
    assert sorted(p.name for p in (stored(registry) / NAME).iterdir()) == sorted([v0, v1, v2])
    registry.promote(NAME, v0)  # the oldest is now current

    assert registry.prune(NAME, keep=1) == [v1]  # v2 is the newest, v0 is current
    assert sorted(p.name for p in (stored(registry) / NAME).iterdir()) == sorted([v0, v2])
    assert registry.current(NAME) == v0
    assert registry.verify(NAME, v0).version == v0
    raw = redis_client.lrange(history_key(registry.prefix, NAME), 0, -1)
    assert v1.encode() not in raw  # history never points at a pruned version

    registry.promote(NAME, v2, keep=1)
    assert [p.name for p in (stored(registry) / NAME).iterdir()] == [v2]
    assert registry.list_versions(NAME)[0].current


def test_subscriber_receives_each_new_version(
    registry: ModelRegistry, artifacts: list[Artifact], redis_client: redis.Redis
) -> None:
    pubsub = redis_client.pubsub()
    pubsub.subscribe(events_channel(registry.prefix, NAME))
    try:
        confirmed = pubsub.get_message(timeout=5)
        assert confirmed is not None and confirmed["type"] == "subscribe"
        v1, v2 = (registry.publish(a) for a in artifacts[:2])
        registry.rollback(NAME)
        received: list[bytes] = []
        deadline = time.monotonic() + 10
        while len(received) < 3 and time.monotonic() < deadline:
            message = pubsub.get_message(timeout=1)
            if message is not None and message["type"] == "message":
                received.append(message["data"])
        assert received == [v1.encode(), v2.encode(), v1.encode()]
    finally:
        pubsub.close()


@pytest.mark.pipe
@pytest.mark.parametrize("kind", STORE_KINDS)
def test_cli_publish_list_rollback(
    kind: str,
    tmp_path: Path,
    redis_url: str,
    redis_client: redis.Redis,
    redis_key_prefix: str,
    artifacts: list[Artifact],
) -> None:
    store = store_location(kind, tmp_path / "store")
    dirs = [save_artifact(a, tmp_path / f"trained-{i}") for i, a in enumerate(artifacts[:2])]
    v1, v2 = artifacts[0].version, artifacts[1].version
    common = ["--store", str(store), "--redis-url", redis_url, "--redis-prefix", redis_key_prefix]

    def ok(*args: str) -> str:
        done = run_seismo("models", *args, *common, timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    assert ok("publish", "--model", str(dirs[0])).strip() == f"{NAME} -> {v1}"
    failed = run_seismo("models", "rollback", "--name", NAME, *common, timeout=120)
    assert failed.returncode == 1, failed.stderr[-3000:]
    lines = failed.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("seismo: error: nothing to roll back"), lines

    ok("publish", "--model", str(dirs[1]), "--keep", "2")
    assert ok("list", "--name", NAME).splitlines() == [
        f"* {v2}  {artifacts[1].created_at}",
        f"  {v1}  {artifacts[0].created_at}",
    ]
    # another Redis or prefix than the scorers' knows no current version: said, not hidden
    other = run_seismo("models", "list", "--name", NAME, "--store", str(store), "--redis-url",
                       redis_url, "--redis-prefix", redis_key_prefix + "other", timeout=120)
    assert other.returncode == 0, other.stderr[-3000:]
    assert other.stdout.splitlines() == [f"  {v2}  {artifacts[1].created_at}",
                                         f"  {v1}  {artifacts[0].created_at}"]  # fmt: skip
    assert other.stderr.startswith(f"no version of {NAME} is current in Redis at "), other.stderr
    typo = run_seismo("models", "list", "--name", NAME + "x", "--store", str(store),
                      "--redis-url", redis_url, "--redis-prefix", redis_key_prefix, timeout=120)
    assert typo.returncode == 0 and typo.stdout == "", typo.stderr[-3000:]
    assert typo.stderr.strip() == f"no version of {NAME}x in {store}"  # not silence
    assert ok("rollback", "--name", NAME).strip() == f"{NAME} -> {v1}"
    assert ModelRegistry(store, redis_client, redis_key_prefix).current(NAME) == v1
    assert ok("promote", "--name", NAME, "--version", v2).strip() == f"{NAME} -> {v2}"


def test_cli_says_when_running_scorers_will_refuse_the_new_current_version(
    tmp_path: Path, redis_url: str, redis_key_prefix: str, artifacts: list[Artifact]
) -> None:
    """A version naming the same channels in another order is published (the pointer
    moves) with a note on stderr: running scorers refuse to swap to it (positional values
    would be read as other channels), which the command used to leave to their logs."""
    first, third = (replace(artifacts[i], feature_names=["a", "b", "c", "d"]) for i in (0, 2))
    reordered = replace(artifacts[1], version=artifacts[1].version + "-reordered",
                        feature_names=["d", "c", "b", "a"])  # fmt: skip
    dirs = [save_artifact(a, tmp_path / f"trained-{i}")
            for i, a in enumerate([first, third, reordered])]  # fmt: skip
    common = ["--store", str(tmp_path / "store"), "--redis-url", redis_url,
              "--redis-prefix", redis_key_prefix]  # fmt: skip

    def run(*args: str) -> tuple[str, list[str]]:
        done = run_seismo("models", *args, *common, timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        notes = [line for line in done.stderr.splitlines() if "will not swap" in line]
        return done.stdout.strip(), notes

    v1, v3 = artifacts[0].version, artifacts[2].version
    assert run("publish", "--model", str(dirs[0])) == (f"{NAME} -> {v1}", [])
    assert run("publish", "--model", str(dirs[1])) == (f"{NAME} -> {v3}", [])  # same channels
    out, notes = run("publish", "--model", str(dirs[2]), "--keep", "1")  # v3 pruned: still said
    assert out == f"{NAME} -> {reordered.version}"
    assert notes == [
        f"scorers serving {NAME} version {v3} will not swap to {reordered.version}: it names "
        "its channels d, c, b, a where the version in use names a, b, c, d; to serve "
        "it, restart them on it once the producers send values in its order (or by name)"
    ]
    out, notes = run("publish", "--model", str(dirs[0]))  # pruned above, stored again
    assert out == f"{NAME} -> {v1}" and len(notes) == 1, "and back to the first order"
    out, notes = run("rollback", "--name", NAME)
    assert out == f"{NAME} -> {reordered.version}" and len(notes) == 1, "and again"
    assert run("promote", "--name", NAME, "--version", reordered.version) == (
        f"{NAME} -> {reordered.version}", []), "no note where the version does not change"


def test_url_store_downloads_a_corrupt_cached_copy_again(
    tmp_path: Path, redis_client: redis.Redis, redis_key_prefix: str, artifacts: list[Artifact]
) -> None:
    """A damaged local copy of a URL store's version is replaced, not served nor fatal."""
    registry = ModelRegistry(
        (tmp_path / "store").as_uri(), redis_client, redis_key_prefix, cache_dir=tmp_path / "cache"
    )
    v1 = registry.publish(artifacts[0])
    assert not (tmp_path / "cache" / NAME / v1).exists()  # publishing verifies in a temp dir
    assert registry.verify(NAME, v1).version == v1
    cached = tmp_path / "cache" / NAME / v1 / WEIGHTS_FILE
    assert cached.is_file()
    flip_byte(cached, offset=len(cached.read_bytes()) // 2)
    assert registry.verify(NAME, v1).version == v1
    assert cached.read_bytes() == (tmp_path / "store" / NAME / v1 / WEIGHTS_FILE).read_bytes()


def test_memory_url_store_publishes_lists_and_prunes(
    redis_client: redis.Redis, redis_key_prefix: str, artifacts: list[Artifact], tmp_path: Path
) -> None:
    """fsspec's in-memory filesystem: no local directory behind the store at all."""
    url = f"memory://seismo-test/{redis_key_prefix.replace(':', '-')}"
    registry = ModelRegistry(url, redis_client, redis_key_prefix, cache_dir=tmp_path / "cache")
    versions = [registry.publish(a, keep=2) for a in artifacts]
    assert [v.version for v in registry.list_versions(NAME)] == versions[:0:-1]
    assert registry.current(NAME) == versions[-1]
    assert registry.verify(NAME, versions[-1]).version == versions[-1]
    store = registry.store
    assert isinstance(store, FsspecStore)
    listed = store.fs.ls(f"{store.root}/{NAME}", detail=False)
    names = {p.rstrip("/").rsplit("/", 1)[-1] for p in listed}
    assert names == set(versions[1:])  # pruned, and no staging prefix left


def test_unknown_url_protocol_is_a_one_line_config_error(
    redis_client: redis.Redis, redis_key_prefix: str
) -> None:
    with pytest.raises(ConfigError, match="no protocol 'nosuch'") as info:
        ModelRegistry("nosuch://bucket/models", redis_client, redis_key_prefix)
    assert_one_line(info.value)
