"""``seismo bench``: throughput of seismo against the raw consumer and its peers."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer

Opt = typer.Option


def _counts(text: str, flag: str = "--scaling") -> tuple[int, ...]:
    """``--scaling`` (process counts) or ``--hidden`` (widths) as positive integers.

    >>> _counts("1,2,4"), _counts(""), _counts("250,10", "--hidden")
    ((1, 2, 4), (), (250, 10))
    """
    from seismo.stream.errors import ConfigError

    try:
        counts = tuple(int(n) for n in text.split(",") if n.strip())
    except ValueError:
        raise ConfigError(f"{flag} expects integers like 1,2,4, got {text!r}") from None
    if any(n < 1 for n in counts):
        raise ConfigError(f"{flag} values must be at least 1")
    return counts


def _scope(text: str) -> str:
    """``--threshold-scope``: model or device.

    >>> _scope("device")
    'device'
    """
    from seismo.stream.errors import ConfigError

    if text not in ("model", "device"):
        raise ConfigError(f"--threshold-scope expects model or device, got {text!r}")
    return text


def bench(
    events: Annotated[int, Opt(help="Events in the benchmark topic.")] = 200_000,
    features: Annotated[int, Opt("--features", "-d", help="Features per event (d).")] = 16,
    partitions: Annotated[int, Opt(help="Partitions of the topic.")] = 4,
    max_batch: Annotated[int, Opt(help="The scorer's max batch.")] = 4096,
    linger_ms: Annotated[int, Opt(help="The scorer's linger (ms).")] = 50,
    per_message_events: Annotated[int, Opt(help="Events for the per-message run (0 = skip).")] = (
        20_000
    ),
    river_events: Annotated[int, Opt(help="Events for the River run (0 = skip).")] = 10_000,
    latency_seconds: Annotated[
        float, Opt(help="Seconds of paced events per latency level (0 = skip).")
    ] = 10.0,
    latency_linger_ms: Annotated[int, Opt(help="The scorer's linger in the latency runs.")] = 20,
    scaling: Annotated[
        str, Opt(help="Scorer process counts to run in one group, e.g. 1,2,4 ('' = skip).")
    ] = "1,2,4",
    soak_seconds: Annotated[
        float, Opt(help="Seconds of a memory soak at half the measured rate (0 = skip).")
    ] = 0.0,
    bootstrap_servers: Annotated[
        str | None, Opt(help="Use this Kafka, not an embedded one.")
    ] = None,
    redis_url: Annotated[str | None, Opt(help="Use this Redis, not an embedded one.")] = None,
    device: Annotated[str, Opt(help="cpu, cuda or auto.")] = "cpu",
    json_path: Annotated[Path | None, Opt("--json", help="Also write the report here.")] = None,
    out: Annotated[
        Path | None, Opt(help="Rewrite this file's 'seismo bench' section (docs/benchmarks.md).")
    ] = None,
    kafka_config: Annotated[list[str] | None, Opt(help="librdkafka KEY=VALUE, repeatable.")] = None,
    hidden: Annotated[
        str | None,
        Opt(help="Encoder widths of the bench model, e.g. 250,10 (default: 784 inputs get "
            "the tutorials' 784-250-10-250-784, others seismo's default)."),
    ] = None,
    binary: Annotated[
        bool, Opt(help="Also run raw and seismo on the binary application/x-seismo-f32 encoding.")
    ] = True,
    repeats: Annotated[
        int, Opt(min=1, help="Runs of raw and seismo (in turn); the report gives medians.")
    ] = 3,
    threshold_scope: Annotated[
        str, Opt(help="model, or device: also run seismo with device scope (seismo-device).")
    ] = "model",
    window: Annotated[
        int, Opt(min=1, help="With --threshold-scope device: windows of this many readings "
                 "(a model of window * d inputs), model and device scope.")
    ] = 1,
    neighbours: Annotated[
        int, Opt(min=0, help="Reference rows of the bench model's neighbour term (0 = the "
                 "reconstruction error alone; seismo train's default is 2048).")
    ] = 0,
    prefetch: Annotated[
        bool, Opt(help="The seismo contenders consume the next batch while scoring (--prefetch).")
    ] = False,
    gpu_check: Annotated[
        bool, Opt(help="Instead: the accelerator check (kernel rows/s of the 784-250-10 model "
                  "against the memory-bandwidth bound, end to end at d=16 and 784) on --device.")
    ] = False,
    gpu_check_quick: Annotated[
        bool, Opt(help="With --gpu-check: a small run of every step (a smoke test on CPU).")
    ] = False,
) -> None:
    """Events/s of the raw consumer, seismo, per-message scoring and River, on one topic."""
    import logging
    import sys

    from seismo.stream.cli.common import parse_pairs

    if gpu_check:
        _gpu_check(device, gpu_check_quick, json_path, parse_pairs(kafka_config) or {})
        return

    from seismo.stream.bench.throughput import BenchOptions, format_report, run_bench

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    options = BenchOptions(
        events=events, features=features, partitions=partitions, max_batch=max_batch,
        linger_ms=linger_ms, per_message_events=per_message_events, river_events=river_events,
        latency_seconds=latency_seconds, latency_linger_ms=latency_linger_ms,
        scaling=_counts(scaling), soak_seconds=soak_seconds,
        bootstrap_servers=bootstrap_servers, redis_url=redis_url, device=device,
        kafka_config=parse_pairs(kafka_config) or {}, binary=binary,
        hidden=_counts(hidden, "--hidden") if hidden else None, repeats=repeats,
        threshold_scope=_scope(threshold_scope), window=window, neighbours=neighbours,
        prefetch=prefetch,
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="seismo-bench-") as tmp:
        report = run_bench(options, Path(tmp), typer.echo)
    for line in format_report(report):
        typer.echo(line)
    if json_path is not None:
        json_path.write_bytes(report.to_json())
        typer.echo(f"wrote {json_path}")
    if out is not None:
        from seismo.stream.bench.odds import replace_section
        from seismo.stream.bench.throughput import SECTION, render_section

        command = "seismo bench " + " ".join(sys.argv[2:])
        document = out.read_text(encoding="utf-8") if out.exists() else "# Benchmarks\n"
        out.write_text(replace_section(document, render_section(report, command), SECTION),
                       encoding="utf-8")  # fmt: skip
        typer.echo(f"wrote {out}")


def _gpu_check(
    device: str, quick: bool, json_path: Path | None, kafka_config: dict[str, str]
) -> None:
    import logging
    import sys

    import orjson

    from seismo.stream.bench.gpu_check import run_gpu_check

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="seismo-gpu-check-") as tmp:
        check = run_gpu_check(device, quick, Path(tmp), typer.echo, kafka_config)
    for line in check.lines():
        typer.echo(line)
    if json_path is not None:
        json_path.write_bytes(orjson.dumps(check.to_dict(), option=orjson.OPT_INDENT_2))
        typer.echo(f"wrote {json_path}")


def bench_devices(
    ids: Annotated[int, Opt(help="Distinct device ids, each sending --window readings.")] = (
        1_000_000
    ),
    window: Annotated[int, Opt(help="Readings per window (and per id).")] = 4,
    channels: Annotated[int, Opt(help="Values per reading.")] = 4,
    max_devices: Annotated[int, Opt(help="The bounded run's --max-devices.")] = 50_000,
    threshold_scope: Annotated[str, Opt(help="device or model.")] = "device",
    partitions: Annotated[int, Opt(help="Partitions of the topic.")] = 4,
    unbounded: Annotated[
        bool, Opt("--unbounded/--no-unbounded", help="Also run with every id held (before).")
    ] = True,
    bootstrap_servers: Annotated[
        str | None, Opt(help="Use this Kafka, not an embedded one.")
    ] = None,
    redis_url: Annotated[str | None, Opt(help="Use this Redis, not an embedded one.")] = None,
    json_path: Annotated[Path | None, Opt("--json", help="Also write the report here.")] = None,
    out: Annotated[
        Path | None, Opt(help="Rewrite this file's 'Many device ids' section.")
    ] = None,
) -> None:
    """Scorer memory (RSS) and Redis memory when every message brings a new device id."""
    import logging
    import sys

    import orjson

    from seismo.stream.bench.devices import SECTION, DevicesOptions, render_section, run_devices
    from seismo.stream.bench.odds import rewrite_section

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    options = DevicesOptions(
        ids=ids, window=window, channels=channels, max_devices=max_devices,
        threshold_scope=threshold_scope, partitions=partitions, unbounded=unbounded,
        bootstrap_servers=bootstrap_servers, redis_url=redis_url,
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="seismo-bench-devices-") as tmp:
        report = run_devices(options, Path(tmp), typer.echo)
    if json_path is not None:
        json_path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
        typer.echo(f"wrote {json_path}")
    if out is not None:
        command = "seismo bench-devices " + " ".join(sys.argv[2:])
        rewrite_section(out, render_section(report, command), SECTION)
        typer.echo(f"wrote {out}")
