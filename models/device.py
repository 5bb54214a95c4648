"""Choosing the torch device and moving numpy batches onto it.

Examples
--------
>>> select_device("cpu")
device(type='cpu')
>>> import numpy as np
>>> to_device(np.ones((2, 3), dtype=np.float32), select_device("cpu")).shape
torch.Size([2, 3])
"""

from __future__ import annotations

import numpy as np
import torch

from seismo.models.errors import SeismoError


def select_device(name: str = "auto") -> torch.device:
    """Resolve a device name to a `torch.device`.

    Parameters
    ----------
    name : str
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"`` or
        ``"cuda:N"``. Case and surrounding spaces are ignored.

    Returns
    -------
    torch.device

    Raises
    ------
    SeismoError
        For an unknown name, or a CUDA device this machine does not have.

    Examples
    --------
    >>> select_device(" CPU ")
    device(type='cpu')
    >>> select_device("tpu")
    Traceback (most recent call last):
    ...
    seismo.models.errors.SeismoError: unknown device 'tpu': use auto, cpu, cuda or cuda:N
    """
    text = name.strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if text == "cpu":
        return torch.device("cpu")
    kind, _, index = text.partition(":")
    if kind != "cuda" or (index and not index.isdigit()):
        raise SeismoError(f"unknown device {name!r}: use auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise SeismoError(
            f"device {name!r} asked for, but CUDA is not available "
            f"(torch {torch.__version__}); use device 'cpu' or 'auto'"
        )
    if index and int(index) >= torch.cuda.device_count():
        raise SeismoError(
            f"device {name!r} asked for, but only {torch.cuda.device_count()} CUDA device(s) exist"
        )
    return torch.device(text)


def to_device(x: np.ndarray, device: torch.device) -> torch.Tensor:
    """Wrap a numpy batch as a tensor on ``device``.

    On CUDA the batch goes through pinned host memory with a non-blocking
    copy; elsewhere it is `torch.from_numpy`, which shares memory with ``x``
    (so callers must not write to the result).

    Parameters
    ----------
    x : numpy.ndarray
        Any shape; its dtype is kept.
    device : torch.device
        Target device, typically from `select_device`.

    Returns
    -------
    torch.Tensor
    """
    array = np.ascontiguousarray(x)
    if not array.flags.writeable:
        array = array.copy()  # torch.from_numpy warns on read-only memory
    tensor = torch.from_numpy(array)
    if device.type == "cuda" and torch.cuda.is_available():
        return tensor.pin_memory().to(device, non_blocking=True)
    if device.type == "cpu":
        return tensor
    return tensor.to(device)
