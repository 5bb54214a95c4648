"""Self-describing model artifacts: one directory that rebuilds a detector alone.

Layout of an artifact directory::

    model.safetensors   the module's state dict (safetensors, never pickle)
    config.json         format_version, arch, model config, feature names,
                        scaler, calibration, name, version, created_at,
                        training summary + window, sha256 of the weights
    manifest.json       name, version, and the sha256 and size of the two
                        files above (its own sha256 is what the registry
                        records in Redis)

Loading verifies the artifact whole before it builds anything (see
`seismo.models.artifact_io.read_verified`): the manifest (against a trusted digest
when one is given), each file against the manifest, the weights against
``config.json``, and a version id of `build_artifact`'s form
(``{arch}-{yyyymmddTHHMMSS}-{8 hex}``) against the weights' sha256.
The module is first built on torch's ``meta`` device, which allocates nothing,
and its shapes compared with the weights', so a config that asks for huge
layers is refused instead of exhausting memory. An artifact without
``manifest.json`` (written by seismo before manifests) still loads, with a
WARNING that ``config.json`` is not covered by any checksum.

Examples
--------
>>> import tempfile, numpy as np
>>> from pathlib import Path
>>> from seismo.models.config import TrainConfig
>>> from seismo.models.training import train_autoencoder
>>> x = np.random.default_rng(0).normal(size=(40, 3))
>>> result = train_autoencoder(x, train=TrainConfig(epochs=1), device="cpu")
>>> artifact = build_artifact(result, name="demo")
>>> artifact.feature_names, artifact.version.startswith("vae-")
(['f0', 'f1', 'f2'], True)
>>> with tempfile.TemporaryDirectory() as tmp:
...     saved = save_artifact(artifact, Path(tmp) / "model")
...     loaded = load_artifact(saved, device="cpu")
...     sorted(p.name for p in saved.iterdir())
['config.json', 'manifest.json', 'model.safetensors']
>>> loaded.version == artifact.version
True
>>> bool(np.allclose(loaded.detector.score_batch(x), artifact.detector.score_batch(x)))
True
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save as safetensors_save

from seismo.models.artifact_io import (
    ARTIFACT_FILES,
    CONFIG_FILE,
    MANIFEST_FILE,
    WEIGHTS_FILE,
    check_fits,
    first_line,
    manifest_json,
    manifest_sha256,
    parse_weights,
    read_verified,
    section,
    text,
    text_list,
)
from seismo.models.calibration import Calibration
from seismo.models.detector import AutoencoderDetector
from seismo.models.device import select_device
from seismo.models.errors import ArtifactError, SeismoError
from seismo.models.nets.architectures import Architecture, ModelConfig, get_architecture
from seismo.models.nets.base import Autoencoder
from seismo.models.scaler import StandardScaler
from seismo.models.terms.neighbours import REFERENCE_KEY, Neighbours
from seismo.models.terms.training_range import TrainingRange
from seismo.models.training import TrainResult

FORMAT_VERSION = 2
"""The newest ``format_version`` this seismo reads (it reads 1 too)."""
RANGE_FORMAT = 2
"""The ``format_version`` written for a model with the range term (1 otherwise): a seismo
that reads 1 alone would load it without the term and score lower than its calibration
assumes; it refuses it in one line instead."""

__all__ = [
    "ARTIFACT_FILES",
    "CONFIG_FILE",
    "FORMAT_VERSION",
    "MANIFEST_FILE",
    "WEIGHTS_FILE",
    "Artifact",
    "build_artifact",
    "load_artifact",
    "manifest_sha256",
    "save_artifact",
]


@dataclass
class Artifact:
    """A detector plus everything needed to deploy and audit it.

    Attributes
    ----------
    detector : AutoencoderDetector
    name : str
        Model family name, e.g. ``"seismo"``.
    version : str
        ``{arch}-{yyyymmddTHHMMSS}-{sha256(weights)[:8]}``; alerts carry it.
    created_at : str
        ISO-8601 UTC timestamp.
    feature_names : list of str
        One name per input column, in order.
    calibration : Calibration
        Score statistics on held-out training rows.
    training : dict
        ``{"summary": TrainResult.summary, "window": training_window or None}``.
    """

    detector: AutoencoderDetector
    name: str
    version: str
    created_at: str
    feature_names: list[str]
    calibration: Calibration
    training: dict[str, Any]

    @property
    def n_features(self) -> int:
        """Number of input features ``d``."""
        return self.detector.n_features


def _weights_bytes(detector: AutoencoderDetector) -> bytes:
    state = dict(detector.module.state_dict())
    if detector.neighbours is not None:  # checksummed with the weights
        state[REFERENCE_KEY] = detector.neighbours.reference
    return safetensors_save({k: v.detach().cpu().contiguous() for k, v in state.items()})


def _check_feature_names(names: list[str], n_features: int) -> list[str]:
    if len(names) != n_features or not all(isinstance(n, str) and n for n in names):
        raise ArtifactError(f"need {n_features} non-empty feature names, got {len(names)}")
    if len(set(names)) != len(names):
        raise ArtifactError("feature names must be unique")
    return list(names)


def build_artifact(
    result: TrainResult,
    *,
    name: str = "seismo",
    feature_names: list[str] | None = None,
    training_window: Mapping[str, Any] | None = None,
    contamination: float | None = None,
) -> Artifact:
    """Package a training result: calibration, version id and metadata.

    Parameters
    ----------
    result : TrainResult
        From `seismo.models.training.train_autoencoder`.
    name : str
        Model family name.
    feature_names : list of str, optional
        Defaults to ``f0, f1, ...``.
    training_window : mapping, optional
        JSON-able description of the training data (e.g. topic, offsets, time
        range); stored as-is.
    contamination : float, optional
        Known share of anomalies in the training rows: also store the
        threshold that flags that share of the training scores.

    Returns
    -------
    Artifact
    """
    detector = result.detector
    if not isinstance(name, str) or not name:
        raise ArtifactError(f"artifact name must be a non-empty string, got {name!r}")
    if feature_names is None:
        feature_names = [f"f{i}" for i in range(detector.n_features)]
    now = datetime.now(UTC).replace(microsecond=0)
    digest = hashlib.sha256(_weights_bytes(detector)).hexdigest()
    calibration = Calibration.from_scores(result.val_scores)
    if contamination is not None:
        calibration = calibration.with_contamination(result.train_scores, contamination)
    return Artifact(
        detector=detector,
        name=name,
        version=f"{detector.arch}-{now:%Y%m%dT%H%M%S}-{digest[:8]}",
        created_at=now.isoformat(),
        feature_names=_check_feature_names(feature_names, detector.n_features),
        calibration=calibration,
        training={
            "summary": dict(result.summary),
            "window": dict(training_window) if training_window is not None else None,
        },
    )


def _seismo_version() -> str:
    try:
        return metadata.version("seismo")
    except metadata.PackageNotFoundError:
        return "unknown"


def _config_json(artifact: Artifact, weights: bytes) -> bytes:
    detector = artifact.detector
    document = {
        "format_version": RANGE_FORMAT if detector.training_range is not None else 1,
        "seismo_version": _seismo_version(),
        "name": artifact.name,
        "version": artifact.version,
        "created_at": artifact.created_at,
        "arch": detector.arch,
        "model": detector.config.to_dict(),
        "feature_names": artifact.feature_names,
        "scaler": detector.scaler.to_dict(),
        "calibration": artifact.calibration.to_dict(),
        "training": artifact.training,
        "weights": {"file": WEIGHTS_FILE, "sha256": hashlib.sha256(weights).hexdigest()},
    }
    if detector.neighbours is not None:
        document["neighbours"] = detector.neighbours.to_dict()
    if detector.training_range is not None:
        document["training_range"] = detector.training_range.to_dict()
    try:
        return json.dumps(document, indent=2, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ArtifactError(f"artifact metadata is not JSON-serialisable: {exc}") from exc


def _write_synced(path: Path, payload: bytes) -> None:
    with path.open("wb") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())


def _publish(staging: Path, target: Path, overwrite: bool) -> None:
    """Rename ``staging`` to ``target``; an old ``target`` is swapped out, then removed."""
    if not target.exists():
        os.rename(staging, target)
        return
    if target.is_dir() and not any(target.iterdir()):
        target.rmdir()
        os.rename(staging, target)
        return
    if not overwrite or not target.is_dir():
        raise ArtifactError(
            f"{target} already exists; save to a new directory (or overwrite=True for a directory)"
        )
    retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.rename(target, retired / target.name)
    try:
        os.rename(staging, target)
    except OSError:
        os.rename(retired / target.name, target)  # put the old artifact back
        raise
    finally:
        shutil.rmtree(retired, ignore_errors=True)


def save_artifact(
    artifact: Artifact, out_dir: str | os.PathLike[str], *, overwrite: bool = False
) -> Path:
    """Write ``artifact`` as the directory ``out_dir`` and return its path.

    Files (weights, ``config.json``, then ``manifest.json`` listing the sha256
    and size of the other two) are written and fsynced in a hidden sibling
    directory that is then renamed into place, so readers never see a
    half-written artifact.
    ``out_dir`` must not exist or be empty unless ``overwrite`` is true.
    """
    target = Path(out_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    weights = _weights_bytes(artifact.detector)
    config = _config_json(artifact, weights)
    files = {WEIGHTS_FILE: weights, CONFIG_FILE: config}
    files[MANIFEST_FILE] = manifest_json(artifact.name, artifact.version, files)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        staging.chmod(0o755)
        for file in ARTIFACT_FILES:
            _write_synced(staging / file, files[file])
        _publish(staging, target, overwrite)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def load_artifact(
    path: str | os.PathLike[str], device: str = "auto", *, manifest_digest: str | None = None
) -> Artifact:
    """Rebuild an `Artifact` from its directory alone, after verifying it whole.

    Checks, in order and before building anything: ``manifest.json`` against
    ``manifest_digest`` (when given), ``config.json`` and the weights against
    the manifest (when there is one), the weights against ``config.json``'s
    sha256 and against the digest that ends a version id of `build_artifact`'s
    form; then the weights' shapes against the module built on the ``meta``
    device. Only the JSON syntax and ``format_version`` of ``config.json``
    (at most `seismo.models.artifact_io.MAX_CONFIG_BYTES`) are read before its
    checksum, so a garbled or foreign file is named as such. Reads
    safetensors and JSON only, never pickle.

    Parameters
    ----------
    path : path
        The artifact directory.
    device : str
        Where the detector runs (``"auto"``, ``"cpu"``, ``"cuda"``, ...).
    manifest_digest : str, optional
        The sha256 that ``manifest.json`` must have, from a record the caller
        trusts more than the directory (the registry's Redis). With one, a
        missing manifest is an error, not a legacy artifact.

    Raises
    ------
    ArtifactError
        The directory or a file is missing or too large, ``config.json`` is
        invalid, the format version or architecture is unknown, or a file is
        corrupt, modified or does not fit the model config.
    """
    root = Path(path)
    document, weights = read_verified(root, FORMAT_VERSION, manifest_digest)
    where = f"model artifact {root}"
    spec = section(document, "arch", get_architecture, where)
    config = section(document, "model", spec.config_cls.from_dict, where)
    scaler = section(document, "scaler", StandardScaler.from_dict, where)
    names = section(document, "feature_names", text_list, where)
    if not scaler.n_features == len(names) == config.n_features:
        raise ArtifactError(
            f"{where}: model has {config.n_features} features, scaler {scaler.n_features}, "
            f"feature_names {len(names)}"
        )
    if len(set(names)) != len(names):
        raise ArtifactError(f"{where}: feature_names must be unique")
    state = parse_weights(weights, root / WEIGHTS_FILE)
    reference = state.pop(REFERENCE_KEY, None)
    near = None
    if "neighbours" in document or reference is not None:
        try:
            near = Neighbours.from_parts(document.get("neighbours"), reference, config.n_features)
        except ArtifactError as exc:
            raise ArtifactError(f"{where}: {exc}") from exc
    span = None
    if "training_range" in document:
        try:
            span = TrainingRange.from_dict(document["training_range"], config.n_features)
        except ArtifactError as exc:
            raise ArtifactError(f"{where}: {exc}") from exc
    module = _build_checked(spec, config, state, where)
    training = document.get("training")
    return Artifact(
        detector=AutoencoderDetector(module, scaler, config=config, device=select_device(device),
                                     neighbours=near, training_range=span),  # fmt: skip
        name=section(document, "name", text, where),
        version=section(document, "version", text, where),
        created_at=section(document, "created_at", text, where),
        feature_names=names,
        calibration=section(document, "calibration", Calibration.from_dict, where),
        training=training if isinstance(training, dict) else {},
    )


def _build_checked(
    spec: Architecture, config: ModelConfig, state: dict[str, torch.Tensor], where: str
) -> Autoencoder:
    """Build the module for ``config`` holding ``state``, shapes checked on ``meta`` first.

    The ``meta`` build allocates no memory whatever sizes the config names, so
    a config that does not fit its (checksummed) weights is refused before the
    real build allocates anything.
    """
    try:
        with torch.device("meta"):
            skeleton = spec.build(config)
    except (SeismoError, RuntimeError, TypeError, ValueError, OverflowError) as exc:
        reason = first_line(exc)
        raise ArtifactError(f"{where}: the model config cannot be built: {reason}") from exc
    check_fits(state, skeleton, where)
    module = spec.build(config)
    module.load_state_dict(state)
    return module
