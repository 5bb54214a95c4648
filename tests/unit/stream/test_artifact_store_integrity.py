"""Artifact stores fetch only artifact files, inside their cache
(:mod:`seismo.stream.registry.artifact_store`).

No Redis here: the stores alone, on fsspec's ``memory://`` filesystem (where
any object key can be planted) and on a local directory.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from seismo.models.artifact import ARTIFACT_FILES, CONFIG_FILE, MANIFEST_FILE, WEIGHTS_FILE
from seismo.stream.errors import RegistryError
from seismo.stream.registry.artifact_store import FsspecStore, LocalStore, safe_destination

NAME, VERSION = "pumps", "dense-20261123T101500-0badf00d"


@pytest.mark.parametrize("key", ARTIFACT_FILES)
def test_artifact_files_land_inside_the_cache(tmp_path: Path, key: str) -> None:
    base = tmp_path.resolve()
    assert safe_destination(base, key, f"s3://b/{key}") == base / key


@pytest.mark.parametrize(
    "key",
    ["../../evil", "../config.json", "/etc/passwd", "sub/config.json", "", ".", "config.json/"],
)
def test_any_other_key_is_refused_in_one_line_naming_the_object(tmp_path: Path, key: str) -> None:
    with pytest.raises(RegistryError, match="refusing object") as info:
        safe_destination(tmp_path.resolve(), key, f"s3://bucket/m/{key}")
    assert f"s3://bucket/m/{key}" in str(info.value) and "\n" not in str(info.value)


def test_a_file_name_that_resolves_elsewhere_is_refused(tmp_path: Path) -> None:
    """A cache directory whose config.json is a link out of it (planted by someone else)."""
    base = tmp_path / "cache"
    base.mkdir()
    (base / CONFIG_FILE).symlink_to(tmp_path / "outside.json")
    with pytest.raises(RegistryError, match="would be written outside"):
        safe_destination(base.resolve(), CONFIG_FILE, "memory://x/config.json")


@pytest.fixture
def memory_store(tmp_path: Path) -> Iterator[FsspecStore]:
    store = FsspecStore(f"memory://seismo-unit/{uuid.uuid4().hex}", cache_dir=tmp_path / "cache")
    for file in ARTIFACT_FILES:
        store.fs.pipe_file(f"{store.root}/{NAME}/{VERSION}/{file}", file.encode())
    yield store
    store.fs.rm(store.root, recursive=True)


def test_fetch_downloads_the_artifact_files(memory_store: FsspecStore, tmp_path: Path) -> None:
    cached = memory_store.fetch(NAME, VERSION)
    assert cached == tmp_path / "cache" / NAME / VERSION
    assert sorted(p.name for p in cached.iterdir()) == sorted(ARTIFACT_FILES)
    assert (cached / MANIFEST_FILE).read_bytes() == MANIFEST_FILE.encode()


@pytest.mark.parametrize("key", ["../../evil", "../../../../../evil", "a/../../evil"])
def test_a_traversing_key_writes_nothing_outside_the_cache(
    memory_store: FsspecStore, tmp_path: Path, key: str
) -> None:
    planted = f"{memory_store.root}/{NAME}/{VERSION}/{key}"
    memory_store.fs.pipe_file(planted, b"owned")
    with pytest.raises(RegistryError, match="refusing object") as info:
        memory_store.fetch(NAME, VERSION)
    assert planted in str(info.value)
    assert not [p for p in tmp_path.rglob("*") if p.name == "evil"]
    assert not (tmp_path / "cache" / NAME / VERSION).exists()


def test_staging_is_checked_the_same_way(memory_store: FsspecStore, tmp_path: Path) -> None:
    """put() downloads the staged copy back through the same checks before its check runs."""
    local = tmp_path / "local"
    local.mkdir()
    for file in ARTIFACT_FILES:
        (local / file).write_bytes(b"new " + file.encode())
    (local / "extra.bin").write_bytes(b"x")
    with pytest.raises(RegistryError, match="not an artifact file"):
        memory_store.put(local, NAME, "v2", lambda staged: None)
    assert not memory_store.exists(NAME, "v2")
    assert not [p for p in memory_store.fs.find(memory_store.root) if ".staging" in p]


def test_put_replaces_an_existing_version_file_by_file(
    memory_store: FsspecStore, tmp_path: Path
) -> None:
    local = tmp_path / "local"
    local.mkdir()
    for file in ARTIFACT_FILES:
        (local / file).write_bytes(b"new " + file.encode())
    checked: list[list[str]] = []
    memory_store.put(
        local, NAME, VERSION, lambda p: checked.append(sorted(x.name for x in p.iterdir())),
        replace=True,
    )
    assert checked == [sorted(ARTIFACT_FILES)]
    cached = memory_store.fetch(NAME, VERSION, refresh=True)
    assert (cached / WEIGHTS_FILE).read_bytes() == b"new " + WEIGHTS_FILE.encode()
    listed = memory_store.fs.ls(f"{memory_store.root}/{NAME}", detail=False)
    assert [p.rsplit("/", 1)[-1] for p in listed] == [VERSION]  # no staging, no nesting


def test_local_store_replaces_a_version_in_one_rename(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    old = tmp_path / "store" / NAME / VERSION
    old.mkdir(parents=True)
    (old / CONFIG_FILE).write_text("old")
    local = tmp_path / "local"
    local.mkdir()
    for file in ARTIFACT_FILES:
        (local / file).write_text(f"new {file}")
    with pytest.raises(OSError):
        store.put(local, NAME, VERSION, lambda p: None)  # without replace: refused
    assert (old / CONFIG_FILE).read_text() == "old"
    store.put(local, NAME, VERSION, lambda p: None, replace=True)
    assert sorted(p.name for p in old.iterdir()) == sorted(ARTIFACT_FILES)
    assert (old / CONFIG_FILE).read_text() == f"new {CONFIG_FILE}"
    assert [p.name for p in (tmp_path / "store" / NAME).iterdir()] == [VERSION]
