"""``seismo incidents``, ``seismo notify`` and ``seismo silence``: alerts to incidents to people."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from seismo.stream.cli.common import RedisPrefixOpt, RedisUrlOpt
from seismo.stream.config import defaults

if TYPE_CHECKING:
    from seismo.stream.config.incident_settings import ServiceSettings

S = TypeVar("S", bound="ServiceSettings")

Opt = typer.Option

silence_app = typer.Typer(
    help="Maintenance windows: mute the incidents of devices (patterns allowed), in Redis.",
    no_args_is_help=True,
)
KafkaConfigOpt = Annotated[list[str] | None, Opt(help="librdkafka KEY=VALUE, repeatable.")]
ConfigOpt = Annotated[Path | None, Opt(help="TOML config file (flags and env win).")]
BootstrapOpt = Annotated[str | None, Opt(help="Kafka bootstrap servers.")]
MetricsPortOpt = Annotated[int | None, Opt(help="Prometheus port (0 = off).")]
MetricsHostOpt = Annotated[str | None, Opt(help="Metrics bind address.")]
LogLevelOpt = Annotated[str | None, Opt(help="DEBUG, INFO, WARNING or ERROR.")]


def _settings(cls: type[S], given: dict[str, Any]) -> S:
    """Validate a command's options (its ``locals()`` on entry) as ``cls``; set up logging."""
    from seismo.stream.cli.common import parse_pairs, setup_logging
    from seismo.stream.config.loader import load

    options = dict(given)
    config = options.pop("config")
    options["kafka_config"] = parse_pairs(options["kafka_config"])
    settings = load(cls, options, config_file=config)
    setup_logging(settings.log_level)
    return settings


def incidents(
    bootstrap_servers: BootstrapOpt = None,
    alerts_topic: Annotated[str | None, Opt(help="Topic of the scorers' alerts.")] = None,
    incidents_topic: Annotated[str | None, Opt(help="Topic incident changes go to.")] = None,
    alerts_dlq_topic: Annotated[
        str | None, Opt(help="Topic malformed alerts go to, with a reason header.")
    ] = None,
    app_id: Annotated[str | None, Opt(help="Faust app id (group, table topics).")] = None,
    open_after: Annotated[int | None, Opt(help="Alerts within --window that open one.")] = None,
    window_s: Annotated[float | None, Opt("--window", help="Window of --open-after (s).")] = None,
    quiet_period_s: Annotated[
        float | None, Opt("--quiet-period", help="Resolve after this long without alerts (s).")
    ] = None,
    forget_after_s: Annotated[
        float | None, Opt("--forget-after", help="Forget a device idle this long, no incident "
                          "open (s; 0 = never) [default 86400].")
    ] = None,
    max_devices: Annotated[
        int | None, Opt(help="Device states kept; the longest idle forgotten beyond "
                        "[default 100000].")
    ] = None,
    redis_url: Annotated[str | None, Opt(help="Redis URL (maintenance windows).")] = None,
    redis_prefix: Annotated[str | None, Opt(help="Prefix of Redis keys.")] = None,
    store: Annotated[str | None, Opt(help="Table store: memory:// or rocksdb://.")] = None,
    data_dir: Annotated[str | None, Opt(help="Faust's data directory.")] = None,
    session_timeout_s: Annotated[float | None, Opt(help="Group session timeout (s).")] = None,
    producer_batch_bytes: Annotated[
        int | None, Opt(help="Faust producer batch limit in bytes (default Faust's).")
    ] = None,
    tick_s: Annotated[
        float | None, Opt(help="How often quiet incidents are looked for (s).")
    ] = None,
    metrics_port: MetricsPortOpt = None,
    metrics_host: MetricsHostOpt = None,
    kafka_config: KafkaConfigOpt = None,
    log_level: LogLevelOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Turn alerts into incidents (open, update, resolved) on the incidents topic (Faust app)."""
    given = dict(locals())  # first statement: exactly the options
    from seismo.stream.config.incident_settings import IncidentSettings
    from seismo.stream.incidents.app import run_incidents

    run_incidents(_settings(IncidentSettings, given))


def notify(
    bootstrap_servers: BootstrapOpt = None,
    incidents_topic: Annotated[str | None, Opt(help="Topic of incident changes.")] = None,
    notify_group_id: Annotated[str | None, Opt(help="Consumer group.")] = None,
    retry_topic: Annotated[str | None, Opt(help="Deliveries to try again later.")] = None,
    dead_topic: Annotated[str | None, Opt(help="Deliveries given up.")] = None,
    webhook_url: Annotated[str | None, Opt(help="Generic JSON webhook URL.")] = None,
    webhook_secret: Annotated[
        str | None, Opt(help="HMAC key (better: SEISMO_WEBHOOK_SECRET).")
    ] = None,
    slack_url: Annotated[str | None, Opt(help="Slack-compatible incoming webhook URL.")] = None,
    alertmanager_url: Annotated[str | None, Opt(help="Alertmanager base URL.")] = None,
    updates: Annotated[str | None, Opt(help="Updates delivered: severity, all or none.")] = None,
    max_attempts: Annotated[int | None, Opt(help="Tries before the dead topic.")] = None,
    backoff_s: Annotated[float | None, Opt(help="First retry delay (s), doubling.")] = None,
    max_backoff_s: Annotated[float | None, Opt(help="Longest retry delay (s).")] = None,
    timeout_s: Annotated[float | None, Opt(help="HTTP timeout (s).")] = None,
    metrics_port: MetricsPortOpt = None,
    metrics_host: MetricsHostOpt = None,
    kafka_config: KafkaConfigOpt = None,
    log_level: LogLevelOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Deliver incident changes to a webhook, Slack and Alertmanager (with retries)."""
    given = dict(locals())  # first statement: exactly the options
    from seismo.stream.cli.common import install_stop_handlers
    from seismo.stream.config.incident_settings import NotifySettings
    from seismo.stream.incidents.notify import run_notify

    settings = _settings(NotifySettings, given)
    run_notify(settings, install_stop_handlers())


def _connect(redis_url: str):  # noqa: ANN202 (redis.Redis, imported late)
    from seismo.stream.io.redis_stats import connect

    return connect(redis_url)


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@silence_app.command("add")
def silence_add(
    device: Annotated[str, Opt(help="Device id or shell pattern (pump-*).")],
    reason: Annotated[str, Opt(help="Why (shown on the muted incidents).")],
    duration: Annotated[str, Opt(help="How long: 90s, 30m, 2h, 1d.")] = "1h",
    redis_url: RedisUrlOpt = defaults.REDIS_URL,
    redis_prefix: RedisPrefixOpt = defaults.REDIS_PREFIX,
) -> None:
    """Mute a device's incidents from now for --duration; prints the window's id."""
    from seismo.stream.incidents.silences import add_silence, parse_duration

    seconds = parse_duration(duration)
    silence = add_silence(_connect(redis_url), redis_prefix, device, reason, seconds)
    typer.echo(f"{silence.id}  {silence.pattern}  until {_when(silence.ends_at)}  {reason}")


@silence_app.command("list")
def silence_list(
    as_json: Annotated[bool, Opt("--json", help="One JSON array.")] = False,
    redis_url: RedisUrlOpt = defaults.REDIS_URL,
    redis_prefix: RedisPrefixOpt = defaults.REDIS_PREFIX,
) -> None:
    """The windows in force, soonest end first."""
    from dataclasses import asdict

    from seismo.stream.incidents.silences import list_silences

    found = list_silences(_connect(redis_url), redis_prefix)
    if as_json:
        typer.echo(json.dumps([asdict(s) for s in found]))
        return
    for s in found:
        typer.echo(f"{s.id}  {s.pattern}  until {_when(s.ends_at)}  {s.reason}")


@silence_app.command("remove")
def silence_remove(
    silence_id: Annotated[str, typer.Argument(help="Id printed by add or list.")],
    redis_url: RedisUrlOpt = defaults.REDIS_URL,
    redis_prefix: RedisPrefixOpt = defaults.REDIS_PREFIX,
) -> None:
    """End a window now."""
    from seismo.stream.errors import ConfigError
    from seismo.stream.incidents.silences import remove_silence

    if not remove_silence(_connect(redis_url), redis_prefix, silence_id):
        raise ConfigError(f"no silence with id {silence_id!r} (see seismo silence list)")
    typer.echo(f"removed {silence_id}")
