"""``seismo dev up / down / status``: a local broker and Redis, and the settings to reach them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from seismo.stream.config import defaults

Opt = typer.Option

dev_app = typer.Typer(
    help="A local Kafka broker (Tansu) and Redis for your own data: up, status, down.",
    no_args_is_help=True,
)

StateFileOpt = Annotated[
    Path | None,
    Opt(help="State file (pids, ports, URLs) (default: $XDG_RUNTIME_DIR/seismo/dev.json, "
        "else ~/.cache/seismo/dev.json).", show_default=False),
]  # fmt: skip


def _state_file(given: Path | None) -> Path:
    from seismo.stream.local.dev_state import default_state_file

    return given if given is not None else default_state_file()


def _changed(**names: tuple[str, str]) -> dict[str, str]:
    """``SEISMO_*`` variables for topic names that are not the scorer's defaults.

    >>> _changed(SEISMO_INPUT_TOPIC=("rooms", "sensor-events"),
    ...          SEISMO_ALERTS_TOPIC=("anomalies", "anomalies"))
    {'SEISMO_INPUT_TOPIC': 'rooms'}
    """
    return {var: name for var, (name, default) in names.items() if name != default}


def _incident_topics() -> list[str]:
    """The topics ``seismo incidents`` and ``seismo notify`` need, by their default names.

    >>> _incident_topics()
    ['incidents', 'incidents.retry', 'incidents.notify-dlq']
    """
    from seismo.stream.config.incident_settings import NotifySettings

    fields = NotifySettings.model_fields
    return [str(fields[name].default) for name in ("incidents_topic", "retry_topic", "dead_topic")]


@dev_app.command()
def up(
    input_topic: Annotated[str, Opt(help="Topic of the sensor events.")] = defaults.INPUT_TOPIC,
    alerts_topic: Annotated[str, Opt(help="Topic of the alerts.")] = defaults.ALERTS_TOPIC,
    dlq_topic: Annotated[str, Opt(help="Dead-letter topic.")] = defaults.DLQ_TOPIC,
    scores_topic: Annotated[
        str, Opt(help="Per-event scores topic ('' = none); the scorer writes it when given "
                 "--scores-topic.")
    ] = defaults.SCORES_TOPIC,
    partitions: Annotated[
        int, Opt(help="Partitions of the events, alerts and scores topics.")
    ] = 4,
    dlq_partitions: Annotated[int, Opt(help="Partitions of the dead-letter topic.")] = 1,
    incident_topics: Annotated[
        bool, Opt(help="Also create the topics of `seismo incidents` and `seismo notify` under "
                  "their default names (incidents, incidents.retry, incidents.notify-dlq; "
                  "one partition each).")
    ] = True,
    kafka_port: Annotated[
        int | None, Opt(help="Broker port on 127.0.0.1 (default: a free one).", show_default=False)
    ] = None,
    redis_port: Annotated[
        int | None, Opt(help="Redis port on 127.0.0.1 (default: a free one).", show_default=False)
    ] = None,
    detach: Annotated[
        bool, Opt("--detach", help="Leave both running and return; stop with `seismo dev down`.")
    ] = False,
    state_file: StateFileOpt = None,
) -> None:
    """Start a local broker and Redis, create the scorer's topics, print `export` lines.

    Only the `export` lines go to stdout, so `eval "$(seismo dev up --detach)"`
    sets them; progress goes to stderr. Runs until Ctrl-C unless --detach.
    """
    from seismo.stream.cli.common import install_stop_handlers, setup_logging
    from seismo.stream.local.dev_stack import DevOptions, dev_up

    setup_logging("WARNING")
    topics = {input_topic: partitions, alerts_topic: partitions, dlq_topic: dlq_partitions}
    if scores_topic:
        topics[scores_topic] = partitions
    if incident_topics:
        for name in _incident_topics():
            topics.setdefault(name, 1)  # a topic of the scorer's under that name keeps its own
    settings = _changed(
        SEISMO_INPUT_TOPIC=(input_topic, defaults.INPUT_TOPIC),
        SEISMO_ALERTS_TOPIC=(alerts_topic, defaults.ALERTS_TOPIC),
        SEISMO_DLQ_TOPIC=(dlq_topic, defaults.DLQ_TOPIC),
    )
    options = DevOptions(
        state_file=_state_file(state_file), topics=topics, settings=settings,
        kafka_port=kafka_port, redis_port=redis_port, detach=detach,
    )  # fmt: skip
    stop = install_stop_handlers()
    dev_up(options, stop, out=typer.echo, echo=lambda line: typer.echo(line, err=True))


@dev_app.command()
def down(state_file: StateFileOpt = None) -> None:
    """Stop the broker and Redis of `seismo dev up` (named in its state file)."""
    from seismo.stream.local.dev_stack import dev_down

    dev_down(_state_file(state_file), echo=lambda line: typer.echo(line, err=True))


@dev_app.command()
def status(state_file: StateFileOpt = None) -> None:
    """Show what `seismo dev up` started and whether it runs (exit 1 if not all).

    The export lines go to stdout, the rest to stderr: in another shell,
    eval "$(seismo dev status)" sets the variables.
    """
    from seismo.stream.local.dev_stack import dev_status

    if not dev_status(_state_file(state_file), out=typer.echo,
                      echo=lambda line: typer.echo(line, err=True)):  # fmt: skip
        raise typer.Exit(1)
