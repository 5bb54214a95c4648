"""Reading the IDX files of the original MNIST distribution (plain or gzipped).

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number
of dimensions), one big-endian uint32 per dimension, then the data in C order.

Examples
--------
>>> import gzip, tempfile
>>> from pathlib import Path
>>> payload = bytes([0, 0, 0x08, 2]) + (2).to_bytes(4, "big") + (3).to_bytes(4, "big")
>>> with tempfile.TemporaryDirectory() as tmp:
...     path = Path(tmp) / "tiny-idx2-ubyte.gz"
...     _ = path.write_bytes(gzip.compress(payload + bytes(range(6))))
...     read_idx(path).tolist()
[[0, 1, 2], [3, 4, 5]]
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from seismo.models.errors import DataError

_DTYPES: dict[int, str] = {
    0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"
}  # fmt: skip

MNIST_FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
"""Image and label file names of each MNIST split."""


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """The array stored in an IDX file (``.gz`` is decompressed).

    Raises
    ------
    DataError
        Missing file, bad magic number, or a size that does not match the header.
    """
    source = Path(path)
    try:
        raw = source.read_bytes()
        data = gzip.decompress(raw) if source.suffix == ".gz" else raw
    except (OSError, gzip.BadGzipFile, EOFError) as exc:
        raise DataError(f"cannot read IDX file {source}: {exc}") from exc
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise DataError(f"{source} is not an IDX file (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_DTYPES[data[2]])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(data) != expected:
        raise DataError(f"{source}: {len(data)} bytes, the header promises {expected}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)


def load_mnist(
    folder: str | os.PathLike[str], split: str = "train"
) -> tuple[np.ndarray, np.ndarray]:
    """MNIST images as ``(n, 784)`` float32 in [0, 1] and their ``(n,)`` digit labels."""
    try:
        images_file, labels_file = MNIST_FILES[split]
    except KeyError:
        raise DataError(f"MNIST split must be 'train' or 'test', got {split!r}") from None
    images = read_idx(Path(folder) / images_file)
    labels = read_idx(Path(folder) / labels_file)
    if images.ndim != 3 or labels.shape != images.shape[:1]:
        raise DataError(f"MNIST {split}: images {images.shape} and labels {labels.shape} differ")
    flat = images.reshape(len(images), -1).astype(np.float32) / 255.0
    return flat, labels.astype(np.int64)
