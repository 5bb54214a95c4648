"""``seismo models ...``: the model registry from the shell (logic:
:mod:`seismo.stream.registry.commands`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from seismo.stream.cli.common import RedisPrefixOpt, RedisUrlOpt
from seismo.stream.config import defaults

Opt = typer.Option

models_app = typer.Typer(
    help="The model registry: stored versions and the current pointer in Redis.",
    no_args_is_help=True,
)

StoreOpt = Annotated[
    str, Opt("--store", help="Artifact store: a directory or an fsspec URL (s3://bucket/models).")
]
NameOpt = Annotated[str, Opt("--name", help="Model name.")]


def _to_stderr(line: str) -> None:
    typer.echo(line, err=True)


@models_app.command("list")
def models_list(
    store: StoreOpt,
    name: NameOpt,
    redis_url: RedisUrlOpt = defaults.REDIS_URL,
    redis_prefix: RedisPrefixOpt = defaults.REDIS_PREFIX,
) -> None:
    """List stored versions, newest first; * marks the current one."""
    from seismo.stream.registry.commands import run_list

    run_list(store, name, redis_url, redis_prefix, typer.echo,
             warn=lambda line: typer.echo(line, err=True))  # fmt: skip


@models_app.command("publish")
def models_publish(
    store: StoreOpt,
    model: Annotated[Path, Opt(help="Trained artifact directory to copy in.")],
    keep: Annotated[int, Opt(help="Versions kept per name (the current one always).")] = 5,
    redis_url: RedisUrlOpt = defaults.REDIS_URL,
    redis_prefix: RedisPrefixOpt = defaults.REDIS_PREFIX,
) -> None:
    """Copy an artifact into the store, verify it, and make it current."""
    from seismo.stream.registry.commands import run_publish

    run_publish(store, model, keep, redis_url, redis_prefix, typer.echo, warn=_to_stderr)


@models_app.command("promote")
def models_promote(
    store: StoreOpt,
    name: NameOpt,
    version: Annotated[str, Opt(help="Stored version to make current.")],
    redis_url: RedisUrlOpt = defaults.REDIS_URL,
    redis_prefix: RedisPrefixOpt = defaults.REDIS_PREFIX,
) -> None:
    """Make a stored version current after verifying its checksum."""
    from seismo.stream.registry.commands import run_promote

    run_promote(store, name, version, redis_url, redis_prefix, typer.echo, warn=_to_stderr)


@models_app.command("rollback")
def models_rollback(
    store: StoreOpt,
    name: NameOpt,
    redis_url: RedisUrlOpt = defaults.REDIS_URL,
    redis_prefix: RedisPrefixOpt = defaults.REDIS_PREFIX,
) -> None:
    """Make the previously current version current again."""
    from seismo.stream.registry.commands import run_rollback

    run_rollback(store, name, redis_url, redis_prefix, typer.echo, warn=_to_stderr)


@models_app.command("request-retrain")
def models_request_retrain(
    name: NameOpt,
    reason: Annotated[str, Opt(help="Why (logged by the retrainer).")] = "operator request",
    redis_url: RedisUrlOpt = defaults.REDIS_URL,
    redis_prefix: RedisPrefixOpt = defaults.REDIS_PREFIX,
) -> None:
    """Ask the running retrainer of NAME for a round now."""
    from seismo.stream.registry.commands import run_request_retrain

    run_request_retrain(name, reason, redis_url, redis_prefix, typer.echo)
