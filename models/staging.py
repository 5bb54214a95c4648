"""Host-to-device staging of score batches: one reusable (pinned) buffer, asynchronous copies.

`seismo.models.device.to_device` pins a fresh host tensor per batch on CUDA,
which costs an allocation and a page-locking per micro-batch. A
:class:`HostStaging` keeps one host buffer, grown to the largest batch seen,
page-locked when the target is a CUDA device, and copies each batch to the
device with ``non_blocking=True`` on a side CUDA stream; the compute stream
waits for that copy only, and the buffer is not overwritten before the
previous copy has finished.

On a CPU target nothing is pinned and no stream exists, but the same code
runs (copy into the reused buffer, ``.to(device)``), so CPU CI covers the
buffer logic the GPU path uses.

>>> import numpy as np, torch
>>> staging = HostStaging(torch.device("cpu"))
>>> staging.stage(np.ones((3, 2), dtype=np.float64)).dtype, staging.capacity
(torch.float32, 3)
>>> staging.stage(np.zeros((2, 2), dtype=np.float32)).shape, staging.capacity
(torch.Size([2, 2]), 3)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


class HostStaging:
    """Copies ``(n, d)`` batches to ``device`` through one reused host buffer.

    Parameters
    ----------
    device : torch.device
        Where the batches go.
    pin : bool or None
        Page-lock the host buffer; default: when ``device`` is CUDA and CUDA is
        available (pinning needs a CUDA driver).
    """

    def __init__(self, device: torch.device, pin: bool | None = None) -> None:
        cuda = device.type == "cuda" and torch.cuda.is_available()
        self.device = device
        self.pin = cuda if pin is None else pin
        self._buffer: torch.Tensor | None = None
        self._stream: Any = torch.cuda.Stream(device) if cuda else None
        self._copied: Any = torch.cuda.Event() if cuda else None  # the last copy's end
        self._pending = False  # a copy out of the buffer may still run

    @property
    def capacity(self) -> int:
        """Rows the host buffer holds now (0 before the first batch)."""
        return 0 if self._buffer is None else int(self._buffer.shape[0])

    def _host(self, rows: int, width: int) -> torch.Tensor:
        buffer = self._buffer
        if buffer is None or buffer.shape[0] < rows or buffer.shape[1] != width:
            buffer = torch.empty((rows, width), dtype=torch.float32, pin_memory=self.pin)
            self._buffer = buffer
        elif self._pending:
            self._copied.synchronize()  # the previous batch has left the buffer
        return buffer[:rows]

    def stage(self, batch: np.ndarray) -> torch.Tensor:
        """``batch`` as a float32 tensor on the device, ready for the current stream.

        The returned tensor never shares memory with ``batch``; on CPU it is a
        view of the staging buffer, valid until the next call.
        """
        rows, width = batch.shape
        host = self._host(rows, width)
        host.numpy()[...] = batch
        if self._stream is None:
            return host.to(self.device)
        with torch.cuda.stream(self._stream):
            moved = host.to(self.device, non_blocking=True)
            self._copied.record(self._stream)
            self._pending = True
        torch.cuda.current_stream(self.device).wait_stream(self._stream)
        moved.record_stream(torch.cuda.current_stream(self.device))
        return moved
