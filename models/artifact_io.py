"""Defensive reading of an artifact directory, turning every failure into `ArtifactError`.

`seismo.models.artifact.load_artifact` is the public entry point; these helpers keep
its error messages specific (which file, which field, what was expected) and
one line long, since the CLI prints them as they are.

Integrity, checked by `read_verified` before anything is built:

* ``manifest.json`` lists the sha256 and size of ``config.json`` and
  ``model.safetensors``; its own sha256 may be checked against a trusted
  record (the registry keeps one in Redis);
* ``config.json`` records the sha256 of the weights, and a version id of the
  form ``{arch}-{yyyymmddTHHMMSS}-{8 hex}`` (every id that
  `seismo.models.artifact.build_artifact` makes) must end with the first 8 hex
  digits of that sha256;
* no file is read whole beyond a size limit.

Examples
--------
>>> from pathlib import Path
>>> read_verified(Path("/nonexistent/model"), 1, None)
Traceback (most recent call last):
...
seismo.models.errors.ArtifactError: model artifact not found: /nonexistent/model
>>> section({"name": 3}, "name", text, "m")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
seismo.models.errors.ArtifactError: m: config.json field 'name' is invalid: expected a non-empty ...
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load as safetensors_load
from torch import nn

from seismo.models.errors import ArtifactError, SeismoError

T = TypeVar("T")
log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
MANIFEST_FILE = "manifest.json"
LISTED_FILES = (CONFIG_FILE, WEIGHTS_FILE)
"""The files ``manifest.json`` lists, each with its sha256 and size."""
ARTIFACT_FILES = (WEIGHTS_FILE, CONFIG_FILE, MANIFEST_FILE)
"""Every file of an artifact directory, in the order they are written."""
MANIFEST_FORMAT = 1
"""The ``format_version`` of ``manifest.json``."""
MAX_CONFIG_BYTES = 16 * 1024 * 1024
"""Largest ``config.json`` read (feature names and quantiles make it kilobytes)."""
MAX_MANIFEST_BYTES = 64 * 1024
"""Largest ``manifest.json`` read."""
MAX_WEIGHTS_BYTES = 4 * 1024**3
"""Largest ``model.safetensors`` read when no manifest gives its exact size."""

_SHA256 = re.compile(r"[0-9a-f]{64}")
_VERSION_DIGEST = re.compile(r"-\d{8}T\d{6}-([0-9a-f]{8})\Z")


@dataclass(frozen=True)
class Manifest:
    """The parsed ``manifest.json``: who the artifact is and ``file -> (sha256, size)``."""

    name: str
    version: str
    files: dict[str, tuple[str, int]]


def sha256_hex(payload: bytes) -> str:
    """The SHA-256 of ``payload`` as 64 lowercase hex digits.

    >>> sha256_hex(b"")[:12]
    'e3b0c44298fc'
    """
    return hashlib.sha256(payload).hexdigest()


def manifest_json(name: str, version: str, files: Mapping[str, bytes]) -> bytes:
    """The ``manifest.json`` of an artifact whose files hold ``files`` (name -> bytes).

    >>> doc = json.loads(manifest_json("m", "v", {"config.json": b"{}"}))
    >>> doc["files"]["config.json"]["size"], doc["version"]
    (2, 'v')
    """
    document = {
        "format_version": MANIFEST_FORMAT,
        "name": name,
        "version": version,
        "files": {
            file: {"sha256": sha256_hex(payload), "size": len(payload)}
            for file, payload in sorted(files.items())
        },
    }
    return json.dumps(document, indent=2, sort_keys=True).encode("utf-8")


def parse_manifest(payload: bytes, where: str) -> Manifest:
    """Parse and validate ``manifest.json``: exactly `LISTED_FILES`, each with sha256 and size.

    >>> files = {"config.json": b"{}", "model.safetensors": b"w"}
    >>> parse_manifest(manifest_json("m", "v1", files), "m").files["model.safetensors"][1]
    1
    >>> parse_manifest(b'{"format_version": 1}', "m")
    Traceback (most recent call last):
    ...
    seismo.models.errors.ArtifactError: m: manifest.json is invalid: expected name, version and ...
    """
    try:
        document = json.loads(payload)
    except (ValueError, RecursionError) as exc:
        raise ArtifactError(f"{where}: manifest.json is not valid JSON: {exc}") from exc
    if not isinstance(document, dict) or document.get("format_version") != MANIFEST_FORMAT:
        raise ArtifactError(
            f"{where}: manifest.json must be a JSON object with format_version {MANIFEST_FORMAT}"
        )
    name, version, files = (document.get(k) for k in ("name", "version", "files"))
    if not (isinstance(name, str) and isinstance(version, str) and isinstance(files, dict)):
        raise ArtifactError(f"{where}: manifest.json is invalid: expected name, version and files")
    if sorted(files) != sorted(LISTED_FILES):
        raise ArtifactError(
            f"{where}: manifest.json lists {sorted(files)}, expected {sorted(LISTED_FILES)}"
        )
    return Manifest(name, version, {f: _listed(files[f], f, where) for f in LISTED_FILES})


def _listed(entry: Any, file: str, where: str) -> tuple[str, int]:
    digest = entry.get("sha256") if isinstance(entry, dict) else None
    size = entry.get("size") if isinstance(entry, dict) else None
    if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
        raise ArtifactError(f"{where}: manifest.json has no valid sha256 for {file}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ArtifactError(f"{where}: manifest.json has no valid size for {file}")
    return digest, size


def check_listed(manifest: Manifest, file: str, payload: bytes, where: str) -> None:
    """``payload`` must have the size and sha256 that ``manifest`` lists for ``file``.

    >>> m = parse_manifest(manifest_json("m", "v", {"config.json": b"{}",
    ...                                             "model.safetensors": b"w"}), "m")
    >>> check_listed(m, "config.json", b"{}", "m")
    >>> check_listed(m, "config.json", b"[]", "m")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    seismo.models.errors.ArtifactError: m: config.json checksum mismatch (manifest.json says ...
    """
    digest, size = manifest.files[file]
    actual = sha256_hex(payload)
    if (actual, len(payload)) != (digest, size):
        raise ArtifactError(
            f"{where}: {file} checksum mismatch (manifest.json says {digest[:12]}..., "
            f"{size} bytes; the file is {actual[:12]}..., {len(payload)} bytes): "
            "the file is corrupt or was modified"
        )


def version_digest(version: str) -> str | None:
    """The weights digest that ends a version id of `build_artifact`'s form, or ``None``.

    Those ids are ``{arch}-{yyyymmddTHHMMSS}-{sha256(weights)[:8]}``; other
    (hand-made) ids carry no digest.

    >>> version_digest("dense-20261123T101500-0badf00d"), version_digest("pumps-20261123")
    ('0badf00d', None)
    """
    found = _VERSION_DIGEST.search(version)
    return found.group(1) if found else None


def check_version_digest(version: str, weights_sha256: str, where: str) -> None:
    """A version id of `build_artifact`'s form must end with its weights' sha256[:8].

    Ids of another form (hand-made) are not bound to their weights.

    >>> check_version_digest("dense-20261123T101500-abcd0123", "abcd0123" + "0" * 56, "m")
    >>> check_version_digest("dense-20261123T101500-abcd0123", "f" * 64, "m")
    Traceback (most recent call last):
    ...
    seismo.models.errors.ArtifactError: m: version dense-20261123T101500-abcd0123 names weights abcd0123, model.safetensors is ffffffff...: the weights were replaced
    """  # noqa: E501
    expected = version_digest(version)
    if expected is not None and not weights_sha256.startswith(expected):
        raise ArtifactError(
            f"{where}: version {version} names weights {expected}, "
            f"{WEIGHTS_FILE} is {weights_sha256[:8]}...: the weights were replaced"
        )


def read_bounded(path: Path, limit: int, where: str, why: str) -> bytes:
    """Read the regular file ``path``, refusing it unread when larger than ``limit`` bytes.

    >>> read_bounded(Path("/nonexistent/model/config.json"), 10, "m", "the limit")
    Traceback (most recent call last):
    ...
    seismo.models.errors.ArtifactError: m has no config.json
    """
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise ArtifactError(f"{where}: {path.name} is not a regular file")
        if info.st_size > limit:
            raise ArtifactError(
                f"{where}: {path.name} is {info.st_size} bytes, more than {why} ({limit})"
            )
        with path.open("rb") as handle:
            payload = handle.read(limit + 1)
    except FileNotFoundError as exc:
        raise ArtifactError(f"{where} has no {path.name}") from exc
    except OSError as exc:
        raise ArtifactError(f"cannot read {path}: {exc}") from exc
    if len(payload) > limit:  # it grew while being read
        raise ArtifactError(f"{where}: {path.name} is larger than {why} ({limit})")
    return payload


def manifest_sha256(root: Path) -> str | None:
    """The sha256 of ``root/manifest.json``, or ``None`` when the artifact has none."""
    if not (root / MANIFEST_FILE).exists():
        return None
    where = f"model artifact {root}"
    return sha256_hex(read_bounded(root / MANIFEST_FILE, MAX_MANIFEST_BYTES, where, "the limit"))


def check_dir(root: Path) -> None:
    """``root`` must be an existing directory."""
    if not root.exists():
        raise ArtifactError(f"model artifact not found: {root}")
    if not root.is_dir():
        raise ArtifactError(
            f"model artifact {root} is not a directory (expected one holding {CONFIG_FILE})"
        )


def parse_config(payload: bytes, path: Path, format_version: int) -> dict[str, Any]:
    """Parse ``config.json``'s bytes as a JSON object; its ``format_version`` must be an
    integer from 1 to ``format_version``."""
    try:
        document = json.loads(payload.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ArtifactError(f"cannot read {path}: {exc}") from exc
    except (ValueError, RecursionError) as exc:
        raise ArtifactError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise ArtifactError(f"{path} must hold a JSON object, got {type(document).__name__}")
    found = document.get("format_version")
    if type(found) is not int or not 1 <= found <= format_version:
        newer = type(found) is int and found > format_version
        raise ArtifactError(
            f"{path} has unsupported format_version {found!r} (this seismo reads 1 to "
            f"{format_version}" + ("; a newer seismo wrote it: upgrade to load this model)"
                                   if newer else ")")
        )
    return document


def read_verified(
    root: Path, format_version: int, manifest_digest: str | None
) -> tuple[dict[str, Any], bytes]:
    """Read ``config.json`` and the weights of ``root``, verifying every checksum.

    Parameters
    ----------
    root : Path
        The artifact directory.
    format_version : int
        The newest ``config.json`` format this seismo reads (1 up to it).
    manifest_digest : str, optional
        The sha256 ``manifest.json`` must have (a trusted record). Without one,
        the manifest is checked for consistency only; without a manifest (an
        artifact of an older seismo) a WARNING says that ``config.json`` is
        not covered by any checksum.

    Returns
    -------
    tuple of (dict, bytes)
        The parsed ``config.json`` and the raw weights file.
    """
    check_dir(root)
    where = f"model artifact {root}"
    manifest = _read_manifest(root, manifest_digest, where)
    config = read_bounded(root / CONFIG_FILE, MAX_CONFIG_BYTES, where, "the limit")
    document = parse_config(config, root / CONFIG_FILE, format_version)
    if manifest is not None:
        check_listed(manifest, CONFIG_FILE, config, where)
        size = manifest.files[WEIGHTS_FILE][1]
        weights = read_bounded(root / WEIGHTS_FILE, size, where, "manifest.json says")
        check_listed(manifest, WEIGHTS_FILE, weights, where)
    else:
        weights = read_bounded(root / WEIGHTS_FILE, MAX_WEIGHTS_BYTES, where, "the limit")
    _check_weights_digest(document, weights, root, where)
    if manifest is not None:
        found = (document.get("name"), document.get("version"))
        if found != (manifest.name, manifest.version):
            raise ArtifactError(
                f"{where}: config.json is {found[0]!r} version {found[1]!r}, manifest.json "
                f"{manifest.name!r} version {manifest.version!r}"
            )
    return document, weights


def _read_manifest(root: Path, expected: str | None, where: str) -> Manifest | None:
    path = root / MANIFEST_FILE
    if not path.exists() and expected is None:
        log.warning(
            "%s has no %s (written by an older seismo, or removed): %s (scaler, calibration, "
            "architecture) is covered by no checksum, so the artifact is not fully verified; if "
            "it is the model as trained, republish it (seismo models publish --model DIR) or "
            "save it again with this seismo; if it may have been edited, train it again",
            where, MANIFEST_FILE, CONFIG_FILE,
        )
        return None
    payload = read_bounded(path, MAX_MANIFEST_BYTES, where, "the limit")
    actual = sha256_hex(payload)
    if expected is not None and actual != expected.lower():
        raise ArtifactError(
            f"{where}: {MANIFEST_FILE} sha256 is {actual[:12]}..., the registry recorded "
            f"{expected[:12]}...: the artifact was modified after it was published"
        )
    return parse_manifest(payload, where)


def _check_weights_digest(document: dict[str, Any], weights: bytes, root: Path, where: str) -> None:
    expected = _expected_sha256(document, where)
    actual = sha256_hex(weights)
    if actual != expected:
        raise ArtifactError(
            f"{root / WEIGHTS_FILE} checksum mismatch (config.json says {expected[:12]}..., "
            f"file is {actual[:12]}...): the file is corrupt or was modified"
        )
    version = document.get("version")
    if isinstance(version, str):
        check_version_digest(version, actual, where)


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


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message (torch errors carry C++ stack traces).

    >>> first_line(RuntimeError("size overflow\\nframe #0: ..."))
    'size overflow'
    """
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def check_fits(state: dict[str, torch.Tensor], module: nn.Module, where: str) -> None:
    """``state`` must hold exactly ``module``'s tensors, with the same shapes.

    ``module`` may live on the ``meta`` device: only shapes are compared.
    """
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


def parse_weights(payload: bytes, path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file's bytes (never a pickle), as CPU tensors."""
    try:
        return safetensors_load(payload)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise ArtifactError(
            f"{path} is not a readable safetensors file: {first_line(exc)}"
        ) from exc
