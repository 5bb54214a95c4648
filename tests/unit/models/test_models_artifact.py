"""Artifacts: round trip, contents, atomic writes, and every way loading can fail."""

from __future__ import annotations

import hashlib
import json
import pickle
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import seismo.models.artifact as artifact_module
from seismo.models.artifact import Artifact, build_artifact, load_artifact, save_artifact
from seismo.models.artifact_io import manifest_json
from seismo.models.config import default_hidden
from seismo.models.errors import ArtifactError
from seismo.models.training import TrainResult

RowMaker = Callable[..., np.ndarray]


@pytest.fixture
def artifact(trained: TrainResult) -> Artifact:
    return build_artifact(trained, name="pumps", training_window={"topic": "sensors", "rows": 1200})


@pytest.fixture
def saved(artifact: Artifact, tmp_path: Path) -> Path:
    return save_artifact(artifact, tmp_path / "model")


def read_json(path: Path) -> dict[str, Any]:
    return json.loads((path / "config.json").read_text())


def restamp_manifest(path: Path) -> None:
    """Make manifest.json agree with the files as they now are (a consistent writer)."""
    config = json.loads((path / "config.json").read_bytes())
    name, version = (config.get(k) for k in ("name", "version"))
    files = {f: (path / f).read_bytes() for f in ("config.json", "model.safetensors")}
    (path / "manifest.json").write_bytes(manifest_json(str(name), str(version), files))


def rewrite(path: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    """Edit config.json and restamp the manifest, so the edit itself is what loading sees."""
    document = read_json(path)
    edit(document)
    (path / "config.json").write_text(json.dumps(document))
    restamp_manifest(path)


def restamp_weights(path: Path) -> None:
    """Make config.json's checksum, the version's digest and the manifest agree with the
    weights file as it now is: only the file's contents can fail."""
    digest = hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest()

    def stamp(document: dict[str, Any]) -> None:
        document["weights"]["sha256"] = digest
        document["version"] = document["version"][:-8] + digest[:8]

    rewrite(path, stamp)


def test_round_trip_rebuilds_an_identical_model(
    artifact: Artifact, saved: Path, manifold_rows: RowMaker, off_manifold_rows: RowMaker
) -> None:
    loaded = load_artifact(saved, device="cpu")
    x = np.vstack([manifold_rows(30, seed=3), off_manifold_rows(30, seed=4)])
    np.testing.assert_allclose(
        loaded.detector.score_batch(x), artifact.detector.score_batch(x), rtol=0, atol=1e-6
    )
    for key, value in artifact.detector.module.state_dict().items():
        torch.testing.assert_close(loaded.detector.module.state_dict()[key], value)
    np.testing.assert_array_equal(loaded.detector.scaler.mean, artifact.detector.scaler.mean)
    assert loaded.detector.config == artifact.detector.config
    assert loaded.calibration == artifact.calibration
    assert (loaded.name, loaded.version, loaded.created_at) == (
        artifact.name,
        artifact.version,
        artifact.created_at,
    )
    assert loaded.feature_names == artifact.feature_names == [f"f{i}" for i in range(16)]
    assert loaded.training == json.loads(json.dumps(artifact.training))
    assert loaded.n_features == 16
    assert not loaded.detector.module.training


def test_build_artifact_metadata(artifact: Artifact, trained: TrainResult) -> None:
    assert re.fullmatch(r"dense-\d{8}T\d{6}-[0-9a-f]{8}", artifact.version)
    created = datetime.fromisoformat(artifact.created_at)
    assert created.utcoffset() == UTC.utcoffset(None)
    assert artifact.version.split("-")[1] == created.strftime("%Y%m%dT%H%M%S")
    assert artifact.calibration.count == trained.val_scores.size
    assert artifact.training["window"] == {"topic": "sensors", "rows": 1200}
    assert artifact.training["summary"]["n_val"] == 120


def test_config_json_contents(artifact: Artifact, saved: Path) -> None:
    document = read_json(saved)
    weights = (saved / "model.safetensors").read_bytes()
    assert document["format_version"] == 1
    assert document["arch"] == "dense"
    assert document["model"] == {
        "n_features": 16,
        "hidden": list(default_hidden(16)),
        "activation": "relu",
        "output_activation": None,
    }
    assert document["weights"]["sha256"] == hashlib.sha256(weights).hexdigest()
    assert artifact.version.endswith(document["weights"]["sha256"][:8])
    assert document["scaler"]["mean"] == artifact.detector.scaler.mean.tolist()
    assert document["calibration"] == artifact.calibration.to_dict()
    assert document["name"] == "pumps"
    assert document["training"]["window"]["topic"] == "sensors"
    assert "seismo_version" in document
    header_len = int.from_bytes(weights[:8], "little")
    assert weights[8:9] == b"{" and header_len < len(weights)  # safetensors, not a pickle


def test_custom_feature_names(trained: TrainResult, tmp_path: Path) -> None:
    names = [f"sensor_{i}" for i in range(16)]
    path = save_artifact(build_artifact(trained, feature_names=names), tmp_path / "a")
    assert load_artifact(path, device="cpu").feature_names == names
    with pytest.raises(ArtifactError, match="need 16 non-empty feature names"):
        build_artifact(trained, feature_names=["a", "b"])
    with pytest.raises(ArtifactError, match="unique"):
        build_artifact(trained, feature_names=["a"] * 16)


def test_loading_never_unpickles(saved: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("pickle used")

    monkeypatch.setattr(torch, "load", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    load_artifact(saved, device="cpu")


def test_save_refuses_to_clobber_and_can_overwrite(artifact: Artifact, saved: Path) -> None:
    with pytest.raises(ArtifactError, match="already exists"):
        save_artifact(artifact, saved)
    (saved / "marker").write_text("old")
    save_artifact(artifact, saved, overwrite=True)
    assert sorted(p.name for p in saved.iterdir()) == [
        "config.json",
        "manifest.json",
        "model.safetensors",
    ]
    assert sorted(p.name for p in saved.parent.iterdir()) == ["model"]


def test_save_into_existing_empty_dir(artifact: Artifact, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    load_artifact(save_artifact(artifact, tmp_path / "empty"), device="cpu")


def test_failed_save_leaves_nothing_behind(
    artifact: Artifact, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = artifact_module._write_synced
    calls: list[Path] = []

    def crash_on_second(path: Path, payload: bytes) -> None:
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        real_write(path, payload)

    monkeypatch.setattr(artifact_module, "_write_synced", crash_on_second)
    with pytest.raises(OSError, match="disk full"):
        save_artifact(artifact, tmp_path / "model")
    assert list(tmp_path.iterdir()) == []


def test_unserialisable_training_window(trained: TrainResult, tmp_path: Path) -> None:
    bad = build_artifact(trained, training_window={"start": datetime.now(UTC)})
    with pytest.raises(ArtifactError, match="not JSON-serialisable"):
        save_artifact(bad, tmp_path / "model")
    assert list(tmp_path.iterdir()) == []


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="not found"):
        load_artifact(tmp_path / "nope")


def test_path_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"x")
    with pytest.raises(ArtifactError, match="not a directory"):
        load_artifact(tmp_path / "model.bin")


def test_missing_config(saved: Path) -> None:
    (saved / "config.json").unlink()
    with pytest.raises(ArtifactError, match="has no config.json"):
        load_artifact(saved)


@pytest.mark.parametrize("text", ["{not json", "", '["a list"]'])
def test_invalid_config_json(saved: Path, text: str) -> None:
    (saved / "config.json").write_text(text)
    with pytest.raises(ArtifactError, match="config.json"):
        load_artifact(saved)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda d: d.update(format_version=3), "unsupported format_version 3"),
        (lambda d: d.update(format_version=True), "unsupported format_version True"),
        (lambda d: d.pop("format_version"), "unsupported format_version None"),
        (lambda d: d.update(arch="gru"), "unknown architecture 'gru'"),
        (lambda d: d.pop("model"), "no 'model' field"),
        (lambda d: d["model"].update(activation="swish"), "field 'model' is invalid"),
        (lambda d: d["scaler"].update(scale=[1.0]), "field 'scaler' is invalid"),
        (lambda d: d.update(feature_names=["a"]), "feature_names 1"),
        (lambda d: d.update(feature_names="abc"), "field 'feature_names' is invalid"),
        (lambda d: d["calibration"].pop("std"), "field 'calibration' is invalid"),
        (lambda d: d.update(version=""), "field 'version' is invalid"),
        (lambda d: d.pop("weights"), "weights.sha256"),
    ],
)
def test_invalid_config_fields(
    saved: Path, edit: Callable[[dict[str, Any]], None], match: str
) -> None:
    rewrite(saved, edit)
    with pytest.raises(ArtifactError, match=match) as info:
        load_artifact(saved, device="cpu")
    assert "\n" not in str(info.value)


def test_missing_weights(saved: Path) -> None:
    (saved / "model.safetensors").unlink()
    with pytest.raises(ArtifactError, match="has no model.safetensors"):
        load_artifact(saved)


def test_truncated_weights_fail_the_checksum(saved: Path) -> None:
    weights = saved / "model.safetensors"
    size = weights.stat().st_size
    weights.write_bytes(weights.read_bytes()[:-10])
    shorter = f"manifest.json says .*, {size} bytes; .*, {size - 10} bytes"
    with pytest.raises(ArtifactError, match=shorter):
        load_artifact(saved)
    restamp_manifest(saved)
    with pytest.raises(ArtifactError, match="checksum mismatch"):
        load_artifact(saved)


def test_flipped_byte_fails_the_checksum(saved: Path) -> None:
    weights = saved / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="corrupt or was modified"):
        load_artifact(saved)


def test_corrupt_weights_with_matching_checksum(saved: Path) -> None:
    (saved / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{broken")
    restamp_weights(saved)
    with pytest.raises(ArtifactError, match="not a readable safetensors file"):
        load_artifact(saved)


def test_weights_that_do_not_fit_the_config(saved: Path) -> None:
    rewrite(saved, lambda d: d["model"].update(hidden=[32, 7]))
    with pytest.raises(
        ArtifactError, match=r"has shape \(8, 32\), the model config needs \(7, 32\)"
    ):
        load_artifact(saved)
    rewrite(saved, lambda d: d["model"].update(hidden=[32]))
    with pytest.raises(ArtifactError, match="unexpected"):
        load_artifact(saved)


class _Payload:
    """Unpickling this runs code: it creates the file ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


def test_a_pickle_in_place_of_the_weights_is_refused_without_running_it(
    saved: Path, tmp_path: Path
) -> None:
    """An attacker who can write the artifact, checksum included, still runs no code."""
    marker = tmp_path / "code-ran"
    pickle.loads(pickle.dumps(_Payload(marker)))  # the payload works...
    assert marker.exists()
    marker.unlink()
    torch.save({"state": _Payload(marker)}, saved / "model.safetensors")  # a torch pickle file
    restamp_weights(saved)
    with pytest.raises(ArtifactError, match="not a readable safetensors file"):
        load_artifact(saved)
    assert not marker.exists()  # ...and loading never unpickled it
