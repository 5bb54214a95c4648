"""Load any command's settings: flags, ``SEISMO_*`` variables and a config file.

The one place that knows every settings class, so that a ``SEISMO_*``
variable no command reads is refused with a did-you-mean, even when the
scorer, the sidecar and the incidents app share one environment.

Examples
--------
>>> s = load_settings({"model": "artifacts/m", "max_batch": 512}, env={})
>>> s.max_batch, s.linger_ms, s.input_topic, s.alerts_topic, s.dlq_topic
(512, 50, 'sensor-events', 'anomalies', 'sensor-events.dlq')
>>> load_settings({"model": "m"}, env={"SEISMO_LINGER_MSX": "5"})
Traceback (most recent call last):
...
seismo.stream.errors.ConfigError: unknown environment variable SEISMO_LINGER_MSX: not a seismo ...
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from seismo.stream.config.base import ENV_PREFIX, RedactedSettings, S, validate
from seismo.stream.config.incident_settings import IncidentSettings, NotifySettings
from seismo.stream.config.retrain_settings import RetrainSettings
from seismo.stream.config.settings import ScorerSettings

#: Every settings class of a seismo command.
SETTINGS_CLASSES: tuple[type[RedactedSettings], ...] = (
    ScorerSettings, RetrainSettings, IncidentSettings, NotifySettings,
)  # fmt: skip


def known_env() -> set[str]:
    """Every ``SEISMO_*`` variable some seismo command reads (scorer and sidecar share an env).

    >>> {"SEISMO_LINGER_MS", "SEISMO_WINDOW_SIZE", "SEISMO_SLACK_URL"} <= known_env()
    True
    """
    names = {name for cls in SETTINGS_CLASSES for name in cls.model_fields}
    return {ENV_PREFIX + n.upper() for n in names}


def load(
    cls: type[S],
    cli: Mapping[str, Any],
    *,
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> S:
    """Validate settings of class ``cls`` once; every problem is a one-line ConfigError.

    Parameters
    ----------
    cls : type
        A settings class with ``env_prefix`` ``SEISMO_``.
    cli : mapping
        Values given on the command line (``None`` values are ignored).
    config_file : Path, optional
        A TOML file with flat ``field = value`` lines.
    env : mapping, optional
        Environment variables (default: ``os.environ``).
    """
    environ = os.environ if env is None else env
    return validate(cls, cli, environ=environ, known=known_env(), config_file=config_file)


def load_settings(
    cli: Mapping[str, Any],
    *,
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> ScorerSettings:
    """Validate the scorer's settings once (see :func:`load`)."""
    return load(ScorerSettings, cli, config_file=config_file, env=env)


def load_retrain_settings(
    cli: Mapping[str, Any],
    *,
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> RetrainSettings:
    """Validate the retrainer's settings once (see :func:`load`)."""
    return load(RetrainSettings, cli, config_file=config_file, env=env)


class KafkaClientSettings(RedactedSettings):
    """The Kafka settings of ``tail``, ``produce`` and ``simulate``, which have no
    settings class of their own: validated as ``seismo score`` validates its own."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")

    kafka_config: dict[str, str] = Field(default_factory=dict)


def load_kafka_config(
    pairs: Mapping[str, str] | None, env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """``SEISMO_KAFKA_CONFIG`` with the ``--kafka-config`` ``pairs`` over it, as ``seismo
    score`` reads them. Only that variable is read: these commands never refused other
    ``SEISMO_*`` variables.

    >>> load_kafka_config({"acks": "1"}, {"SEISMO_KAFKA_CONFIG": '{"security.protocol": "SSL"}'})
    {'security.protocol': 'SSL', 'acks': '1'}
    """
    environ = os.environ if env is None else env
    own = {k: v for k, v in environ.items() if k.upper() == ENV_PREFIX + "KAFKA_CONFIG"}
    return load(KafkaClientSettings, {"kafka_config": pairs}, env=own).kafka_config
