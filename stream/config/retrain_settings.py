"""Settings of ``seismo retrain``, the retraining sidecar: one frozen, typed object.

Same rules as :mod:`seismo.stream.config.settings`: flags > ``SEISMO_*`` environment
variables > ``--config`` TOML file > defaults, validated once at start-up by
:func:`load_retrain_settings`. Names shared with the scorer (Kafka, Redis,
topics, ``k``, the threshold space, ``min_samples``) read the same variables,
so one environment configures both.

Examples
--------
>>> from seismo.stream.config.loader import load_retrain_settings
>>> s = load_retrain_settings({"model_store": "/models"}, env={})
>>> s.model_name, s.interval_s, s.min_train_size, s.group_by
('seismo', 3600.0, 1000, 'prefix')
>>> load_retrain_settings({"model_store": "/m", "holdout_fraction": 0.9}, env={})
Traceback (most recent call last):
...
seismo.stream.errors.ConfigError: invalid setting holdout_fraction (--holdout-fraction): Input should be less than or equal to 0.5
"""  # noqa: E501

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from seismo.stream.config import defaults
from seismo.stream.config.base import (
    ENV_PREFIX,
    RedactedSettings,
    check_redis_url,
    check_threshold_factor,
)
from seismo.stream.registry.promotion import GatePolicy
from seismo.stream.scoring.codec import DEFAULT_MAX_MESSAGE_BYTES


class RetrainSettings(RedactedSettings):
    """Settings of ``seismo retrain``; each field's env var is ``SEISMO_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")

    model_store: str = Field(
        min_length=1,
        description="Model registry store (`seismo models`): a directory or an fsspec URL.",
    )
    model_cache_dir: Path | None = Field(
        None, description="With a URL model_store: where versions are downloaded to."
    )
    model_name: str = Field("seismo", description="Model name to keep current.")
    bootstrap_servers: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers.")
    input_topic: str = Field("sensor-events", description="Topic of sensor events to learn from.")
    kafka_config: dict[str, str] = Field(
        default_factory=dict, description="Extra librdkafka settings (SASL/TLS...), JSON in env."
    )
    redis_url: Annotated[SecretStr, AfterValidator(check_redis_url)] = Field(
        SecretStr(defaults.REDIS_URL), description="Redis URL."
    )
    redis_prefix: str = Field(defaults.REDIS_PREFIX, description="Prefix of every Redis key.")
    interval_s: float = Field(
        3600.0, gt=0, description="Seconds between scheduled retrains (drift requests come sooner)."
    )
    window_size: int = Field(
        10_000, ge=10, le=10_000_000, description="Newest events kept per device group."
    )
    max_groups: int = Field(1000, ge=1, description="Device groups kept in the window.")
    group_by: Literal["prefix", "device", "none"] = Field(
        "prefix",
        description="Window groups: device-id prefix (pump-7 -> pump), device id, or none.",
    )
    backfill: int | None = Field(
        None,
        ge=0,
        description="Events per partition read back at start (default: window_size).",
    )
    min_train_size: int = Field(
        1000, ge=10, description="Fewest training events a challenger may be trained on."
    )
    holdout_fraction: float = Field(
        0.2, gt=0, le=0.5, description="Newest share of the window held back to judge both models."
    )
    include_flagged: bool = Field(
        False,
        description="Train on events the champion flags too (off: they are left out, "
        "unless the champion flags most recent events, i.e. a new regime).",
    )
    k: float = Field(3.0, gt=0, description="The scorers' k: threshold = mean + k * std.")
    threshold_space: Literal["log", "linear"] = Field("log", description="The scorers' space.")
    min_samples: int = Field(1000, ge=0, description="The scorers' warm-up length.")
    max_threshold_factor: Annotated[float, AfterValidator(check_threshold_factor)] = Field(
        10.0, ge=0, description="The scorers' bound on the threshold, times the calibration "
        "threshold (0 = unbounded).",
    )
    max_alert_rate: float = Field(
        0.03, gt=0, lt=1, description="Gate: most false alerts of the challenger on recent normal."
    )
    p99_margin: float = Field(
        1.0, ge=0, description="Gate: p99 z-score margin over the champion's (or k)."
    )
    regime_share: float = Field(
        0.5, gt=0, lt=1, description="Champion flags more than this share of recent events: "
        "a new regime.",
    )
    min_agreement: float = Field(
        0.5, ge=0, le=1, description="Gate: share of the champion's anomalies still flagged."
    )
    max_calibration_change: float = Field(
        4.0, gt=1, description="Gate: the challenger's calibrated threshold within this factor "
        "of the champion's.",
    )
    epochs: int | None = Field(None, ge=1, description="Override the champion's epochs.")
    keep: int = Field(
        5, ge=1, description="Versions kept in the store (always the current one, and the "
        "reference: the version an operator published).",
    )
    device: str = Field("auto", description="Torch device for training: auto, cpu, cuda.")
    max_message_bytes: int = Field(
        DEFAULT_MAX_MESSAGE_BYTES, ge=64, description="Larger events are skipped."
    )
    lease_ttl_s: float = Field(
        60.0, gt=1, description="A retrainer that stops renewing loses its lease after this long."
    )
    metrics_port: int | None = Field(9465, ge=0, le=65535, description="Metrics port (0 = off).")
    metrics_host: str = Field("127.0.0.1", description="Address the metrics endpoint binds to.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Level.")

    @property
    def policy(self) -> GatePolicy:
        """The promotion gate these settings describe."""
        return GatePolicy(
            min_train_size=self.min_train_size,
            max_alert_rate=self.max_alert_rate,
            p99_margin=self.p99_margin,
            regime_share=self.regime_share,
            min_agreement=self.min_agreement,
            max_calibration_change=self.max_calibration_change,
        )

    @property
    def backfill_events(self) -> int:
        """Events per partition to read back at start."""
        return self.window_size if self.backfill is None else self.backfill
