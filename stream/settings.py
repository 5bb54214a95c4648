"""The scorer's one frozen, typed settings object.

Precedence: command-line flags > ``SEISMO_*`` environment variables > an
optional TOML config file (``--config``, flat ``key = value`` using the field
names below) > defaults. Validated once at start-up by :func:`load_settings`
and passed down explicitly; nothing deeper reads the environment.

Examples
--------
>>> s = load_settings({"model": "artifacts/m", "max_batch": 512}, env={})
>>> s.max_batch, s.linger_ms, s.input_topic, s.alerts_topic, s.dlq_topic
(512, 50, 'sensor-events', 'anomalies', 'sensor-events.dlq')
>>> load_settings({"model": "m", "max_batch": 0}, env={})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
stream.errors.ConfigError: invalid setting max_batch (SEISMO_MAX_BATCH): Input should be ...
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from stream import defaults
from stream.codec import DEFAULT_MAX_MESSAGE_BYTES
from stream.errors import ConfigError

ENV_PREFIX = "SEISMO_"
_SECRET_WORDS = ("password", "secret", "token", "key")


class ScorerSettings(BaseSettings):
    """Settings of ``seismo score``; each field's env var is ``SEISMO_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")

    model: Path = Field(description="Model artifact directory (written by `seismo train`).")
    bootstrap_servers: str = Field(
        "127.0.0.1:9092", description="Kafka bootstrap servers, comma-separated."
    )
    input_topic: str = Field("sensor-events", description="Topic of sensor events.")
    alerts_topic: str = Field("anomalies", description="Topic alerts are published to.")
    scores_topic: str | None = Field(
        None, description="Optional topic receiving one score record per valid event."
    )
    dlq_topic: str = Field(
        "sensor-events.dlq", description="Dead-letter topic for messages that cannot be scored."
    )
    group_id: str = Field("seismo-scorer", description="Kafka consumer group of the scorers.")
    kafka_config: dict[str, str] = Field(
        default_factory=dict,
        description="Extra librdkafka settings for every client (SASL/TLS...); "
        "env var as a JSON object.",
    )
    redis_url: SecretStr = Field(
        SecretStr(defaults.REDIS_URL),
        description="Redis URL; may carry a password; rediss:// for TLS.",
    )
    redis_prefix: str = Field(
        defaults.REDIS_PREFIX, description="Prefix of every Redis key seismo writes."
    )
    device: str = Field("auto", description="Torch device: auto (CUDA if available), cpu, cuda.")
    max_batch: int = Field(
        1024, ge=1, le=1_000_000, description="Most events per micro-batch (bounds memory)."
    )
    linger_ms: int = Field(
        50, ge=1, le=60_000, description="Longest wait for a micro-batch to fill (ms)."
    )
    k: float = Field(3.0, gt=0, description="Threshold = mean + k * std of recent scores.")
    threshold_space: Literal["log", "linear"] = Field(
        "log",
        description="Statistics of log(score) (default; errors are right-skewed) or raw scores.",
    )
    min_samples: int = Field(
        1000, ge=0, description="Scores seen before the rolling threshold replaces calibration."
    )
    learn_anomalies: bool = Field(
        False, description="Also fold flagged scores into the rolling statistics."
    )
    stats_window: int | None = Field(
        100_000,
        ge=1,
        description="Effective memory of the rolling statistics, in scores (None = unbounded).",
    )
    max_message_bytes: int = Field(
        DEFAULT_MAX_MESSAGE_BYTES, ge=64, description="Larger event values are dead-lettered."
    )
    flush_timeout_s: float = Field(
        30.0, gt=0, description="Longest wait for the broker to confirm a batch's output."
    )
    metrics_port: int | None = Field(
        9464, ge=0, le=65535, description="Prometheus metrics port (0 or None = off)."
    )
    metrics_host: str = Field("127.0.0.1", description="Address the metrics endpoint binds to.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Log level."
    )

    def redacted(self) -> dict[str, Any]:
        """The settings as a dict safe to log: secrets masked.

        >>> s = load_settings({"model": "m", "kafka_config": {"sasl.password": "x"},
        ...                    "redis_url": "redis://:pw@h:1/0"}, env={})
        >>> s.redacted()["kafka_config"], s.redacted()["redis_url"]
        ({'sasl.password': '***'}, '**********')
        """
        out = self.model_dump()
        out["redis_url"] = str(self.redis_url)
        out["kafka_config"] = {
            k: ("***" if any(w in k.lower() for w in _SECRET_WORDS) else v)
            for k, v in self.kafka_config.items()
        }
        out["model"] = str(self.model)
        return out

    def __repr_args__(self) -> Any:
        """``repr`` shows the redacted view, so a logged settings object leaks nothing."""
        return list(self.redacted().items())


def _with_sources(config_file: Path | None, env: Mapping[str, str]) -> type[ScorerSettings]:
    """A settings class reading the given env mapping and TOML file."""

    class _Loaded(ScorerSettings):
        model_config = SettingsConfigDict(
            **{**ScorerSettings.model_config, "toml_file": config_file}
        )

        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            sources: list[PydanticBaseSettingsSource] = [init_settings]
            sources.append(_MappingEnvSource(settings_cls, env))
            if config_file is not None:
                sources.append(TomlConfigSettingsSource(settings_cls))
            return tuple(sources)

    return _Loaded


class _MappingEnvSource(PydanticBaseSettingsSource):
    """Environment source over an explicit mapping (so tests need not patch os.environ)."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        from pydantic_settings import EnvSettingsSource

        self._inner = EnvSettingsSource(settings_cls, case_sensitive=False)
        self._inner.env_vars = {k.lower(): v for k, v in env.items()}

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._inner.get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:
        return self._inner()


def load_settings(
    cli: Mapping[str, Any],
    *,
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> ScorerSettings:
    """Validate the settings once, turning every problem into a one-line ConfigError.

    Parameters
    ----------
    cli : mapping
        Values given on the command line (``None`` values are ignored).
    config_file : Path, optional
        A TOML file with flat ``field = value`` lines.
    env : mapping, optional
        Environment variables (default: ``os.environ``).
    """
    if config_file is not None and not config_file.is_file():
        raise ConfigError(f"config file {config_file} does not exist")
    given = {k: v for k, v in cli.items() if v is not None}
    cls = _with_sources(config_file, os.environ if env is None else env)
    try:
        return cls(**given)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = ".".join(str(p) for p in err["loc"]) or "?"
        field = name.split(".")[0]
        raise ConfigError(
            f"invalid setting {name} ({ENV_PREFIX}{field.upper()}): {err['msg']}"
        ) from None
    except ValueError as exc:  # e.g. TOML syntax
        raise ConfigError(f"invalid configuration: {exc}") from None
