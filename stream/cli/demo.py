"""``seismo simulate`` and ``seismo demo``: the simulated fleet, and everything at once."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from seismo.stream.errors import ConfigError

Opt = typer.Option


def _kinds(text: str | None) -> tuple[str, ...]:
    from seismo.stream.sim.anomalies import KINDS

    if not text:
        return KINDS
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown or not kinds:
        raise ConfigError(f"--kinds: unknown {', '.join(unknown)}; known: {', '.join(KINDS)}")
    return kinds


def simulate(
    bootstrap_servers: Annotated[
        str, Opt(envvar="SEISMO_BOOTSTRAP_SERVERS", help="Kafka bootstrap servers.")
    ] = "127.0.0.1:9092",
    topic: Annotated[str, Opt(help="Topic of the sensor events.")] = "sensor-events",
    labels_topic: Annotated[
        str, Opt(help="Topic of the anomalies' ground truth ('' = none).")
    ] = "sensor-labels",
    labels_file: Annotated[Path | None, Opt(help="Also append the labels here (JSONL).")] = None,
    devices: Annotated[int, Opt(help="Simulated pumps.")] = 20,
    rate: Annotated[float, Opt(help="Events per second, all devices together.")] = 1000.0,
    duration: Annotated[float, Opt(help="Seconds to run (0 = until Ctrl-C).")] = 0.0,
    anomaly_rate: Annotated[float, Opt(help="Share of readings inside an anomaly.")] = 0.03,
    kinds: Annotated[
        str | None, Opt(help="Anomaly kinds, comma-separated (default all six).")
    ] = None,
    day_ticks: Annotated[int, Opt(help="Readings per device per simulated day.")] = 1500,
    drift_at: Annotated[
        int | None, Opt(help="Concept drift: a new normal regime from this tick on.")
    ] = None,
    seed: Annotated[int, Opt(help="Random seed (same seed, same stream).")] = 0,
    kafka_config: Annotated[list[str] | None, Opt(help="librdkafka KEY=VALUE, repeatable.")] = None,
    write_normal: Annotated[
        Path | None,
        Opt(help="Instead: write normal readings of the same fleet to this CSV (for training)."),
    ] = None,
    days: Annotated[float, Opt(help="With --write-normal: simulated days to write.")] = 1.0,
) -> None:
    """Publish simulated pump telemetry with labelled anomalies to Kafka."""
    from seismo.stream.cli.common import install_stop_handlers, kafka_config_or_env
    from seismo.stream.sim.command import run_simulate, write_normal_csv
    from seismo.stream.sim.simulation import SimulationConfig

    try:
        config = SimulationConfig(
            devices=devices, anomaly_rate=anomaly_rate, kinds=_kinds(kinds),
            day_ticks=day_ticks, seed=seed, drift_at_tick=drift_at,
        )  # fmt: skip
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if write_normal is not None:
        rows = write_normal_csv(config, write_normal, days)
        typer.echo(f"wrote {rows} normal readings of {devices} devices to {write_normal}")
        return
    if rate <= 0:
        raise ConfigError("--rate must be positive")
    run_simulate(
        config=config, bootstrap_servers=bootstrap_servers, topic=topic,
        labels_topic=labels_topic or None, labels_file=labels_file, rate=rate,
        duration_s=duration or None, kafka_config=kafka_config_or_env(kafka_config),
        stop=install_stop_handlers(), echo=typer.echo,
    )  # fmt: skip


def demo(
    duration: Annotated[float, Opt(help="Seconds of streaming (0 = until Ctrl-C).")] = 60.0,
    devices: Annotated[int, Opt(help="Simulated pumps.")] = 20,
    rate: Annotated[float, Opt(help="Events per second, all devices together.")] = 1000.0,
    bootstrap_servers: Annotated[
        str | None, Opt(help="Use this Kafka instead of an embedded one.")
    ] = None,
    redis_url: Annotated[str | None, Opt(help="Use this Redis instead of an embedded one.")] = None,
    out_dir: Annotated[Path, Opt(help="Runs are written under this directory.")] = Path(
        "seismo-demo"
    ),
    tty: Annotated[
        bool | None, Opt("--tty/--no-tty", help="Live view, or plain log lines (default: auto).")
    ] = None,
    scenario: Annotated[
        str, Opt(help="steady, or drift: a new normal regime halfway (the sidecar retrains).")
    ] = "steady",
    anomaly_rate: Annotated[float, Opt(help="Share of readings inside an anomaly.")] = 0.03,
    seed: Annotated[int, Opt(help="Random seed.")] = 0,
    retrain_interval: Annotated[float, Opt(help="Sidecar: seconds between retrains.")] = 300.0,
    kafka_config: Annotated[list[str] | None, Opt(help="librdkafka KEY=VALUE, repeatable.")] = None,
) -> None:
    """Everything at once, embedded: simulator, scorer, sidecar, live view, summary, report."""
    import logging

    from seismo.stream.cli.common import install_stop_handlers, parse_pairs
    from seismo.stream.demo.command import Demo, DemoOptions

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    interactive = sys.stdout.isatty() if tty is None else tty
    try:
        options = DemoOptions(
            duration_s=duration or None, devices=devices, rate=rate,
            bootstrap_servers=bootstrap_servers, redis_url=redis_url, out_dir=out_dir,
            tty=interactive, seed=seed, scenario=scenario, anomaly_rate=anomaly_rate,
            retrain_interval_s=retrain_interval, kafka_config=parse_pairs(kafka_config) or {},
        )  # fmt: skip
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    console = Console(force_terminal=interactive or None, highlight=False)
    result = Demo(options, install_stop_handlers(), console).run()
    if result is not None:
        print_summary(console, result)


def print_summary(console: Console, result: object) -> None:
    """The closing table of a demo run."""
    from seismo.stream.demo.command import DemoResult

    assert isinstance(result, DemoResult)
    s = result.score
    table = Table(title="seismo demo: summary", show_header=False)
    ttd = "-" if s.mean_time_to_detect_s is None else f"{s.mean_time_to_detect_s:.2f} s"
    rows = [
        ("events", f"{s.events:,} scored of {result.produced:,} published "
                   f"in {result.elapsed_s:.0f} s"),
        ("alerts", f"{s.alerts:,} ({s.true_alerts:,} on injected anomalies)"),
        ("anomalies injected", f"{s.episodes} episodes, {s.anomalous_events:,} readings"),
        ("recall", f"{s.recall:.3f} ({s.detected} of {s.episodes} episodes detected)"),
        ("precision", f"{s.precision:.3f} (alerts on an anomaly or within 20 readings after)"),
        ("F1", f"{s.f1:.3f}"),
        ("point-wise recall", f"{s.point_recall:.3f} of anomalous readings alerted"),
        ("false-alert rate", f"{s.false_alert_rate:.5f} of normal readings"),
        ("mean time to detect", ttd),
        ("by kind", ", ".join(f"{k} {d}/{n}" for k, (d, n) in s.by_kind.items())),
        ("model versions", ", ".join(result.versions) or "-"),
    ]  # fmt: skip
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    console.print(f"report: {result.report}")
    console.print(f"summary: {result.run_dir / 'summary.json'}")
