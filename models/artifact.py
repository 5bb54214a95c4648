"""Self-describing model artifacts: one directory that rebuilds a detector alone.

Layout of an artifact directory::

    model.safetensors   the module's state dict (safetensors, never pickle)
    config.json         format_version, arch, model config, feature names,
                        scaler, calibration, name, version, created_at,
                        training summary + window, sha256 of the weights

Examples
--------
>>> import tempfile, numpy as np
>>> from pathlib import Path
>>> from models.config import TrainConfig
>>> from models.training import train_autoencoder
>>> x = np.random.default_rng(0).normal(size=(40, 3))
>>> result = train_autoencoder(x, train=TrainConfig(epochs=1), device="cpu")
>>> artifact = build_artifact(result, name="demo")
>>> artifact.feature_names, artifact.version.startswith("vae-")
(['f0', 'f1', 'f2'], True)
>>> with tempfile.TemporaryDirectory() as tmp:
...     saved = save_artifact(artifact, Path(tmp) / "model")
...     loaded = load_artifact(saved, device="cpu")
...     sorted(p.name for p in saved.iterdir())
['config.json', 'model.safetensors']
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

from safetensors.torch import save as safetensors_save

from models.artifact_io import read_config, read_state_dict, section, text, text_list
from models.calibration import Calibration
from models.detector import AutoencoderDetector
from models.device import select_device
from models.errors import ArtifactError
from models.registry import get_architecture
from models.scaler import StandardScaler
from models.training import TrainResult

FORMAT_VERSION = 1
"""The ``format_version`` this seismo writes and reads."""
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


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
    state = detector.module.state_dict()
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
        From `models.training.train_autoencoder`.
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
        "format_version": FORMAT_VERSION,
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

    Files are written and fsynced in a hidden sibling directory that is then
    renamed into place, so readers never see a half-written artifact.
    ``out_dir`` must not exist or be empty unless ``overwrite`` is true.
    """
    target = Path(out_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    weights = _weights_bytes(artifact.detector)
    config = _config_json(artifact, weights)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        staging.chmod(0o755)
        _write_synced(staging / WEIGHTS_FILE, weights)
        _write_synced(staging / CONFIG_FILE, config)
        _publish(staging, target, overwrite)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def load_artifact(path: str | os.PathLike[str], device: str = "auto") -> Artifact:
    """Rebuild an `Artifact` from its directory alone.

    Verifies the weights' sha256 and their shapes against the recorded model
    config before loading them; reads safetensors and JSON only, never pickle.

    Raises
    ------
    ArtifactError
        The directory or a file is missing, ``config.json`` is invalid, the
        format version or architecture is unknown, or the weights are corrupt,
        modified or do not fit the model config.
    """
    root = Path(path)
    document = read_config(root, CONFIG_FILE, FORMAT_VERSION)
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
    module = spec.build(config)
    module.load_state_dict(read_state_dict(root, document, WEIGHTS_FILE, module))
    training = document.get("training")
    return Artifact(
        detector=AutoencoderDetector(module, scaler, config=config, device=select_device(device)),
        name=section(document, "name", text, where),
        version=section(document, "version", text, where),
        created_at=section(document, "created_at", text, where),
        feature_names=names,
        calibration=section(document, "calibration", Calibration.from_dict, where),
        training=training if isinstance(training, dict) else {},
    )
