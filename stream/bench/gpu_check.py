"""``seismo bench --gpu-check``: what one accelerator does for seismo, in a few minutes.

Two parts, printed as they finish:

1. **Kernel.** The 784-250-10-250-784 dense autoencoder on batches of 4096
   rows already on the device: rows/s of the forward pass and error (eager,
   then ``torch.compile`` with CUDA graphs where it compiles), and of
   :meth:`~seismo.models.detector.AutoencoderDetector.score_batch` from host
   rows (scaling, staging, copy back). Against the **memory-bandwidth bound**:
   the device's measured copy bandwidth over the bytes a row must cross at
   least once (its ``d`` float32 inputs read, one float32 score written).
2. **End to end.** ``seismo bench`` at d = 16 and d = 784 on the embedded broker
   with ``--device`` the accelerator, one run each, JSON and f32 encodings,
   beside the raw consumer of the same run.

On a machine without CUDA it runs the same code on the CPU (smaller, with
``--gpu-check-quick``), so CI covers every path but the CUDA calls.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seismo.models.config import DenseConfig
from seismo.models.detector import AutoencoderDetector
from seismo.models.nets.architectures import get_architecture
from seismo.models.scaler import StandardScaler
from seismo.models.terms.neighbours import Neighbours

Echo = Callable[[str], None]

#: The tutorials' model the kernel part measures.
KERNEL_D, KERNEL_HIDDEN, KERNEL_BATCH = 784, (250, 10), 4096
#: Reference rows of the neighbour term (``TrainConfig.neighbours``' default).
NEIGHBOUR_ROWS = 2048


@dataclass(frozen=True)
class GpuCheck:
    """What ``--gpu-check`` measured (``end_to_end``: events/s per contender and d)."""

    device: str
    batch: int
    bandwidth_gb_s: float
    bound_rows_per_s: float
    eager_rows_per_s: float
    compiled_rows_per_s: float | None
    compile_note: str
    host_rows_per_s: float
    neighbours_rows_per_s: float = 0.0
    end_to_end: dict[str, dict[str, float]] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """The report as the command prints it."""
        share = self.eager_rows_per_s / self.bound_rows_per_s
        compiled = ("not run: " + self.compile_note if self.compiled_rows_per_s is None
                    else f"{self.compiled_rows_per_s:,.0f} rows/s")  # fmt: skip
        out = [
            f"device: {self.device}",
            f"copy bandwidth {self.bandwidth_gb_s:,.1f} GB/s -> bound "
            f"{self.bound_rows_per_s:,.0f} rows/s at d={KERNEL_D}",
            f"kernel eager (batch {self.batch}): {self.eager_rows_per_s:,.0f} rows/s "
            f"({share:.2f} of the bound)",
            f"kernel compiled: {compiled}",
            f"score_batch from host rows: {self.host_rows_per_s:,.0f} rows/s",
            f"score_batch with seismo train's neighbour term ({NEIGHBOUR_ROWS} rows): "
            f"{self.neighbours_rows_per_s:,.0f} rows/s",
        ]
        for d, rates in self.end_to_end.items():
            out.append(f"end to end d={d}: " + ", ".join(
                f"{name} {rate:,.0f}/s" for name, rate in rates.items()))
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def bound_rows_per_s(bandwidth_bytes_per_s: float, d: int) -> float:
    """Rows/s a kernel limited by memory bandwidth alone could score.

    Each row's ``d`` float32 inputs are read and one float32 score written;
    the weights (about 0.8 MB for 784-250-10) stay in cache.

    >>> f"{bound_rows_per_s(3.35e12, 784):,.0f}"  # an H100 SXM's 3.35 TB/s
    '1,066,878,981'
    """
    return bandwidth_bytes_per_s / (4 * d + 4)


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (nothing to wait for on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def rate(step: Callable[[], object], units: float, device: torch.device,
         seconds: float) -> float:  # fmt: skip
    """``units`` per second of ``step``: three warm-up calls, then calls for ``seconds``."""
    for _ in range(3):
        step()
    synchronize(device)
    calls, started = 0, time.perf_counter()
    while True:
        step()
        calls += 1
        if calls % 5 == 0:
            synchronize(device)
            elapsed = time.perf_counter() - started
            if elapsed >= seconds:
                return calls * units / elapsed


def copy_bandwidth(device: torch.device, mib: int, seconds: float) -> float:
    """Bytes/s of a device-to-device copy of ``mib`` MiB (read plus write)."""
    source = torch.empty(mib * 2**20 // 4, dtype=torch.float32, device=device).uniform_()
    target = torch.empty_like(source)
    return rate(lambda: target.copy_(source), 2.0 * source.numel() * 4, device, seconds)


def _compiled(module: torch.nn.Module, device: torch.device) -> tuple[Any, str]:
    """``module`` compiled for fixed shapes (CUDA graphs on CUDA), or why not."""
    if device.type != "cuda":
        return None, "CPU (compile is measured on CUDA only)"
    try:
        return torch.compile(module, mode="reduce-overhead", fullgraph=True), ""
    except Exception as exc:  # noqa: BLE001 - any failure is reported, the check goes on
        return None, f"{type(exc).__name__}: {exc}".splitlines()[0]


def kernel_check(device: torch.device, batch: int, seconds: float, echo: Echo) -> GpuCheck:
    """The kernel part for the 784-250-10-250-784 model (random weights: speed only)."""
    torch.manual_seed(0)
    config = DenseConfig(n_features=KERNEL_D, hidden=KERNEL_HIDDEN)
    module = get_architecture("dense").build(config).to(device).eval()
    bandwidth = copy_bandwidth(device, 1024 if device.type == "cuda" else 64, seconds)
    bound = bound_rows_per_s(bandwidth, KERNEL_D)
    echo(f"copy bandwidth {bandwidth / 1e9:,.1f} GB/s on {device}")
    rows = torch.randn(batch, KERNEL_D, device=device)

    def errors(net: Any) -> Callable[[], object]:
        def step() -> object:
            with torch.inference_mode():
                return (net(rows) - rows).square().mean(dim=1)
        return step

    eager = rate(errors(module), batch, device, seconds)
    echo(f"kernel eager: {eager:,.0f} rows/s")
    compiled_module, note = _compiled(module, device)
    compiled = None
    if compiled_module is not None:
        try:
            compiled = rate(errors(compiled_module), batch, device, seconds)
        except Exception as exc:  # noqa: BLE001 - a backend that fails at run time
            note = f"{type(exc).__name__}: {exc}".splitlines()[0]
    scaler = StandardScaler.fit(np.random.default_rng(0).normal(size=(256, KERNEL_D)))
    detector = AutoencoderDetector(module, scaler, config=config, device=device,
                                   chunk_rows=batch)  # fmt: skip
    host = np.random.default_rng(1).normal(size=(batch, KERNEL_D)).astype(np.float32)
    from_host = rate(lambda: detector.score_batch(host), batch, device, seconds)
    reference = torch.randn(NEIGHBOUR_ROWS, KERNEL_D)
    with_term = AutoencoderDetector(module, scaler, config=config, device=device,
                                    chunk_rows=batch,
                                    neighbours=Neighbours(reference, 5, 1.0, 1.0))  # fmt: skip
    neighbours = rate(lambda: with_term.score_batch(host), batch, device, seconds)
    echo(f"score_batch: {from_host:,.0f} rows/s, with the neighbour term {neighbours:,.0f}")
    return GpuCheck(device=_name(device), batch=batch, bandwidth_gb_s=bandwidth / 1e9,
                    bound_rows_per_s=bound, eager_rows_per_s=eager,
                    compiled_rows_per_s=compiled, compile_note=note,
                    host_rows_per_s=from_host, neighbours_rows_per_s=neighbours)  # fmt: skip


def _name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} ({device})"
    return f"CPU, {torch.get_num_threads()} torch threads"


def end_to_end(
    device: str, sizes: dict[int, int], workdir: Path, echo: Echo,
    kafka_config: dict[str, str] | None = None,
) -> dict[str, dict[str, float]]:  # fmt: skip
    """``seismo bench`` once per ``d`` (events in ``sizes``), the throughput rows only:
    raw and seismo, JSON and f32 (per-message and River are not run)."""
    from seismo.stream.bench.throughput import BenchOptions, run_bench

    out: dict[str, dict[str, float]] = {}
    for d, events in sizes.items():
        options = BenchOptions(events=events, features=d, device=device, repeats=1,
                               latency_seconds=0.0, scaling=(), per_message_events=0,
                               river_events=0, raw_backoff=False,
                               kafka_config=dict(kafka_config or {}))  # fmt: skip
        report = run_bench(options, workdir, echo)
        out[str(d)] = {name: report.results[name]["events_per_s"]
                       for name in ("raw", "seismo", "raw-f32", "seismo-f32")
                       if name in report.results}  # fmt: skip
    return out


def run_gpu_check(device: str, quick: bool, workdir: Path, echo: Echo,
                  kafka_config: dict[str, str] | None = None) -> GpuCheck:  # fmt: skip
    """Both parts; ``quick`` shrinks them (a CPU smoke run of every path).
    ``kafka_config`` goes to every consumer of the end-to-end part."""
    from seismo.models.device import select_device

    target = select_device(device)
    seconds = 0.3 if quick else 3.0
    batch = 256 if quick else KERNEL_BATCH
    check = kernel_check(target, batch, seconds, echo)
    sizes = {16: 30_000, 784: 20_000} if quick else {16: 200_000, 784: 50_000}
    return GpuCheck(**{**check.to_dict(),
                       "end_to_end": end_to_end(str(target), sizes, workdir, echo,
                                                kafka_config)})  # fmt: skip
