"""Defensive reading of an artifact directory, turning every failure into `ArtifactError`.

`models.artifact.load_artifact` is the public entry point; these helpers keep
its error messages specific (which file, which field, what was expected) and
one line long, since the CLI prints them as they are.

Examples
--------
>>> from pathlib import Path
>>> read_config(Path("/nonexistent/model"), "config.json", 1)
Traceback (most recent call last):
...
models.errors.ArtifactError: model artifact not found: /nonexistent/model
>>> section({"name": 3}, "name", text, "m")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
models.errors.ArtifactError: m: config.json field 'name' is invalid: expected a non-empty string...
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load as safetensors_load
from torch import nn

from models.errors import ArtifactError, SeismoError

T = TypeVar("T")


def read_config(root: Path, config_file: str, format_version: int) -> dict[str, Any]:
    """Load ``root/config_file`` as a JSON object and check its ``format_version``."""
    if not root.exists():
        raise ArtifactError(f"model artifact not found: {root}")
    if not root.is_dir():
        raise ArtifactError(
            f"model artifact {root} is not a directory (expected one holding {config_file})"
        )
    path = root / config_file
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ArtifactError(f"model artifact {root} has no {config_file}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"cannot read {path}: {exc}") from exc
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise ArtifactError(f"{path} must hold a JSON object, got {type(document).__name__}")
    found = document.get("format_version")
    if found != format_version:
        raise ArtifactError(
            f"{path} has unsupported format_version {found!r} (this seismo reads {format_version})"
        )
    return document


def section(document: dict[str, Any], key: str, parse: Callable[[Any], T], where: str) -> T:
    """Parse ``document[key]`` with ``parse``, reporting any failure as `ArtifactError`."""
    if key not in document:
        raise ArtifactError(f"{where}: config.json has no {key!r} field")
    try:
        return parse(document[key])
    except (SeismoError, KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{where}: config.json field {key!r} is invalid: {exc}") from exc


def text(value: Any) -> str:
    """Return ``value`` if it is a non-empty string, else raise `ValueError`."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a non-empty string, got {value!r}")
    return value


def text_list(value: Any) -> list[str]:
    """Return ``value`` if it is a list of non-empty strings, else raise `ValueError`."""
    if not isinstance(value, list):
        raise ValueError(f"expected a list of strings, got {type(value).__name__}")
    return [text(item) for item in value]


def _expected_sha256(document: dict[str, Any], where: str) -> str:
    weights = document.get("weights")
    digest = weights.get("sha256") if isinstance(weights, dict) else None
    if not isinstance(digest, str) or len(digest) != 64:
        raise ArtifactError(f"{where}: config.json has no valid weights.sha256")
    return digest.lower()


def _check_shapes(state: dict[str, torch.Tensor], module: nn.Module, where: str) -> None:
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ArtifactError(
            f"{where}: weights do not match the model config "
            f"(missing: {missing or 'none'}; unexpected: {unexpected or 'none'})"
        )
    for key, tensor in expected.items():
        if state[key].shape != tensor.shape:
            raise ArtifactError(
                f"{where}: weight {key!r} has shape {tuple(state[key].shape)}, "
                f"the model config needs {tuple(tensor.shape)}"
            )


def read_state_dict(
    root: Path, document: dict[str, Any], weights_file: str, module: nn.Module
) -> dict[str, torch.Tensor]:
    """Read ``root/weights_file``, verify its sha256 and that it fits ``module``.

    Returns CPU tensors ready for ``module.load_state_dict``.
    """
    where = f"model artifact {root}"
    expected = _expected_sha256(document, where)
    path = root / weights_file
    try:
        payload = path.read_bytes()
    except FileNotFoundError as exc:
        raise ArtifactError(f"{where} has no {weights_file}") from exc
    except OSError as exc:
        raise ArtifactError(f"cannot read {path}: {exc}") from exc
    actual = hashlib.sha256(payload).hexdigest()
    if actual != expected:
        raise ArtifactError(
            f"{path} checksum mismatch (config.json says {expected[:12]}..., file is "
            f"{actual[:12]}...): the file is corrupt or was modified"
        )
    try:
        state = safetensors_load(payload)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise ArtifactError(f"{path} is not a readable safetensors file: {exc}") from exc
    _check_shapes(state, module, where)
    return state
