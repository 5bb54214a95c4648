"""Artifacts verified whole: manifest, trusted digest, version digest, size limits, meta build.

The attacker here can write the artifact directory (a shared volume, a bucket)
but not the digest the caller trusts (``manifest_digest``, which the registry
keeps in Redis). Each test tampers with a freshly saved artifact and checks
that loading refuses it in one line, before anything is built.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save as safetensors_save

import seismo.models.artifact_io as artifact_io
from seismo.models.artifact import (
    CONFIG_FILE,
    MANIFEST_FILE,
    WEIGHTS_FILE,
    Artifact,
    build_artifact,
    load_artifact,
    manifest_sha256,
    save_artifact,
)
from seismo.models.artifact_io import manifest_json
from seismo.models.errors import ArtifactError
from seismo.models.training import TrainResult


@pytest.fixture
def artifact(trained: TrainResult) -> Artifact:
    return build_artifact(trained, name="pumps")


@pytest.fixture
def saved(artifact: Artifact, tmp_path: Path) -> Path:
    return save_artifact(artifact, tmp_path / "model")


def sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def read_config(path: Path) -> dict[str, Any]:
    return json.loads((path / CONFIG_FILE).read_text())


def write_config(path: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    document = read_config(path)
    edit(document)
    (path / CONFIG_FILE).write_text(json.dumps(document))


def restamp_manifest(path: Path) -> None:
    """What an attacker who can write the directory does: a manifest that agrees again."""
    document = read_config(path)
    files = {f: (path / f).read_bytes() for f in (CONFIG_FILE, WEIGHTS_FILE)}
    manifest = manifest_json(document["name"], document["version"], files)
    (path / MANIFEST_FILE).write_bytes(manifest)


def scale_up(document: dict[str, Any]) -> None:
    document["scaler"]["scale"] = [s * 1e6 for s in document["scaler"]["scale"]]


def one_line(exc: BaseException) -> str:
    message = str(exc)
    assert message and "\n" not in message, message
    return message


def test_save_writes_a_manifest_of_every_file(artifact: Artifact, saved: Path) -> None:
    manifest = json.loads((saved / MANIFEST_FILE).read_text())
    assert manifest["format_version"] == 1
    assert (manifest["name"], manifest["version"]) == ("pumps", artifact.version)
    for file in (CONFIG_FILE, WEIGHTS_FILE):
        payload = (saved / file).read_bytes()
        assert manifest["files"][file] == {"sha256": sha256(payload), "size": len(payload)}
    assert sorted(manifest["files"]) == [CONFIG_FILE, WEIGHTS_FILE]
    digest = manifest_sha256(saved)
    assert digest == sha256((saved / MANIFEST_FILE).read_bytes())
    assert load_artifact(saved, device="cpu", manifest_digest=digest).version == artifact.version


def test_a_tampered_config_is_refused_by_the_manifest(saved: Path) -> None:
    write_config(saved, scale_up)
    with pytest.raises(ArtifactError, match="config.json checksum mismatch") as info:
        load_artifact(saved, device="cpu")
    assert "corrupt or was modified" in one_line(info.value)


@pytest.mark.parametrize(
    "edit",
    [scale_up, lambda d: d["calibration"].update(mean=d["calibration"]["mean"] * 1e6)],
    ids=["scaler-scale", "calibration-mean"],
)
def test_a_tampered_config_with_a_matching_manifest_is_refused_by_the_trusted_digest(
    saved: Path, edit: Callable[[dict[str, Any]], None]
) -> None:
    trusted = manifest_sha256(saved)
    write_config(saved, edit)
    restamp_manifest(saved)
    load_artifact(saved, device="cpu")  # consistent on its own: only the trusted digest knows
    with pytest.raises(ArtifactError, match="the registry recorded") as info:
        load_artifact(saved, device="cpu", manifest_digest=trusted)
    assert "manifest.json sha256" in one_line(info.value)


def test_a_deleted_manifest_is_refused_when_a_digest_is_trusted(saved: Path) -> None:
    trusted = manifest_sha256(saved)
    (saved / MANIFEST_FILE).unlink()
    with pytest.raises(ArtifactError, match="has no manifest.json") as info:
        load_artifact(saved, device="cpu", manifest_digest=trusted)
    one_line(info.value)


def test_weights_replaced_with_a_consistent_config_are_refused_by_the_version_digest(
    artifact: Artifact, saved: Path
) -> None:
    """Another valid safetensors file of the right shapes, config and manifest restamped."""
    state = {k: v + 0.5 for k, v in artifact.detector.module.state_dict().items()}
    payload = safetensors_save({k: v.contiguous() for k, v in state.items()})
    (saved / WEIGHTS_FILE).write_bytes(payload)
    write_config(saved, lambda d: d["weights"].update(sha256=sha256(payload)))
    restamp_manifest(saved)
    with pytest.raises(ArtifactError, match="the weights were replaced") as info:
        load_artifact(saved, device="cpu")
    assert f"names weights {artifact.version[-8:]}" in one_line(info.value)
    (saved / MANIFEST_FILE).unlink()  # the version digest holds without a manifest too
    with pytest.raises(ArtifactError, match="the weights were replaced"):
        load_artifact(saved, device="cpu")


def test_a_hand_made_version_id_is_not_bound_to_the_weights(saved: Path) -> None:
    write_config(saved, lambda d: d.update(version="pumps-golden"))
    restamp_manifest(saved)
    assert load_artifact(saved, device="cpu").version == "pumps-golden"


@pytest.mark.parametrize("hidden", [[10**9, 10**9], [2**62, 8]], ids=["huge", "overflowing"])
def test_huge_hidden_sizes_are_refused_without_allocating(
    saved: Path, hidden: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A config naming layers of 10^18 weights: the meta build notices, nothing is allocated."""
    write_config(saved, lambda d: d["model"].update(hidden=hidden))
    restamp_manifest(saved)
    built_on: list[str] = []
    real_linear_init = torch.nn.Linear.__init__

    def spy(self: torch.nn.Linear, *args: Any, **kwargs: Any) -> None:
        real_linear_init(self, *args, **kwargs)
        built_on.append(self.weight.device.type)

    monkeypatch.setattr(torch.nn.Linear, "__init__", spy)
    started = time.perf_counter()
    with pytest.raises(ArtifactError, match="model config") as info:
        load_artifact(saved, device="cpu")
    assert time.perf_counter() - started < 1.0
    one_line(info.value)
    assert set(built_on) <= {"meta"}  # never a real (allocated) layer


def test_an_oversized_config_is_refused_unread(saved: Path) -> None:
    """A sparse 8 GiB config.json: refused from its size, never read whole."""
    with (saved / CONFIG_FILE).open("r+b") as handle:
        handle.truncate(8 * 1024**3)
    started = time.perf_counter()
    with pytest.raises(ArtifactError, match=r"config.json is 8589934592 bytes, more than") as info:
        load_artifact(saved, device="cpu")
    assert time.perf_counter() - started < 1.0
    one_line(info.value)


def test_an_oversized_weights_file_is_refused_unread(saved: Path) -> None:
    weights = saved / WEIGHTS_FILE
    size = weights.stat().st_size
    with weights.open("r+b") as handle:
        handle.truncate(size + 1)
    with pytest.raises(ArtifactError, match="more than manifest.json says"):
        load_artifact(saved, device="cpu")
    (saved / MANIFEST_FILE).unlink()
    with weights.open("r+b") as handle:
        handle.truncate(artifact_io.MAX_WEIGHTS_BYTES + 1)  # sparse, never read
    with pytest.raises(ArtifactError, match="model.safetensors is 4294967297 bytes"):
        load_artifact(saved, device="cpu")


def test_a_config_that_is_not_a_regular_file_is_refused(saved: Path) -> None:
    (saved / CONFIG_FILE).unlink()
    os.mkfifo(saved / CONFIG_FILE)  # reading a fifo would block forever
    with pytest.raises(ArtifactError, match="config.json is not a regular file"):
        load_artifact(saved, device="cpu")


def test_deeply_nested_json_is_a_one_line_error(saved: Path) -> None:
    (saved / CONFIG_FILE).write_text("[" * 100_000)
    with pytest.raises(ArtifactError, match="is not valid JSON") as info:
        load_artifact(saved, device="cpu")
    one_line(info.value)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda m: m["files"].pop(WEIGHTS_FILE), r"lists \['config.json'\], expected"),
        (lambda m: m["files"].update({"../evil": m["files"][CONFIG_FILE]}), "expected"),
        (lambda m: m["files"][CONFIG_FILE].update(sha256="abc"), "no valid sha256"),
        (lambda m: m["files"][CONFIG_FILE].update(size=-1), "no valid size"),
        (lambda m: m.update(format_version=2), "format_version 1"),
        (lambda m: m.update(version="dense-20000101T000000-00000000"), "manifest.json 'pumps'"),
    ],
)
def test_invalid_manifests_are_refused(
    saved: Path, edit: Callable[[dict[str, Any]], None], match: str
) -> None:
    manifest = json.loads((saved / MANIFEST_FILE).read_text())
    edit(manifest)
    (saved / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=match) as info:
        load_artifact(saved, device="cpu")
    one_line(info.value)


def test_an_artifact_of_an_older_seismo_loads_with_a_warning(
    artifact: Artifact, saved: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (saved / MANIFEST_FILE).unlink()
    with caplog.at_level(logging.WARNING, logger="seismo.models.artifact_io"):
        loaded = load_artifact(saved, device="cpu")
    assert loaded.version == artifact.version
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "has no manifest.json" in message and "not fully verified" in message
    assert "republish it" in message and "\n" not in message


def test_a_current_artifact_loads_without_a_warning(
    saved: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        load_artifact(saved, device="cpu")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
