"""``seismo tail TOPIC``: print a topic's records (alerts readable, dead letters with reasons)."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from seismo.stream.config import defaults

Opt = typer.Option


def tail(
    topic: Annotated[str, typer.Argument(help="Topic to read, e.g. anomalies.")],
    bootstrap_servers: Annotated[
        str, Opt(envvar="SEISMO_BOOTSTRAP_SERVERS", help="Kafka bootstrap servers.")
    ] = defaults.BOOTSTRAP_SERVERS,
    from_end: Annotated[
        bool, Opt("--from-end", help="Only records produced after the start (see docs).")
    ] = False,
    max_records: Annotated[
        int | None, Opt("--max", help="Stop after N records.", show_default=False)
    ] = None,
    timeout: Annotated[
        float | None,
        Opt(help="Stop after S seconds without a new record (for scripts).", show_default=False),
    ] = None,
    as_json: Annotated[
        bool, Opt("--json", help="One JSON object per record and line (headers included).")
    ] = False,
    kafka_config: Annotated[list[str] | None, Opt(help="librdkafka KEY=VALUE, repeatable.")] = None,
) -> None:
    """Print a topic's records from the beginning, by assignment (no group, no commits).

    Alerts show as one readable line, dead letters with their reason, other
    JSON as compact JSON. Follows the topic until --max, --timeout or Ctrl-C.
    """
    from seismo.stream.cli.common import install_stop_handlers, kafka_config_or_env, setup_logging
    from seismo.stream.offline.tail import TailOptions, run_tail

    setup_logging("WARNING")
    options = TailOptions(
        topic=topic, bootstrap_servers=bootstrap_servers, from_end=from_end,
        max_records=max_records, idle_s=timeout, as_json=as_json,
        kafka_config=kafka_config_or_env(kafka_config),
    )  # fmt: skip
    try:
        printed = run_tail(options, install_stop_handlers(), out=typer.echo)
        if printed == 0:  # say so on stderr: an empty stdout alone looks like a hang or a bug
            within = f" within {timeout:g} s" if timeout is not None else ""
            typer.echo(f"seismo tail: no record in {topic}{within}", err=True)
    except BrokenPipeError:
        # the reader left (`seismo tail anomalies | head`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
