"""The scorer's one frozen, typed settings object.

Precedence: command-line flags > ``SEISMO_*`` environment variables > an
optional TOML config file (``--config``, flat ``key = value`` using the field
names below) > defaults. Validated once at start-up by
:func:`~seismo.stream.config.loader.load_settings` and passed down explicitly;
nothing deeper reads the environment.

Examples
--------
>>> from seismo.stream.config.loader import load_settings
>>> s = load_settings({"model": "artifacts/m", "max_batch": 512}, env={})
>>> s.max_batch, s.linger_ms, s.input_topic, s.alerts_topic, s.dlq_topic
(512, 50, 'sensor-events', 'anomalies', 'sensor-events.dlq')
>>> load_settings({"model": "m", "max_batch": 0}, env={})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
seismo.stream.errors.ConfigError: invalid setting max_batch (--max-batch): Input should be ...
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from seismo.stream.config import defaults
from seismo.stream.config.base import (
    ENV_PREFIX,
    RedactedSettings,
    check_redis_url,
    check_threshold_factor,
)
from seismo.stream.scoring.codec import DEFAULT_MAX_MESSAGE_BYTES
from seismo.stream.scoring.devices.states import DEFAULT_MAX_DEVICES


class ScorerSettings(RedactedSettings):
    """Settings of ``seismo score``; each field's env var is ``SEISMO_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")

    model: Path | None = Field(
        None,
        description="Model artifact directory (written by `seismo train`); served as it is. "
        "Give this or model_store.",
    )
    model_store: str | None = Field(
        None,
        min_length=1,
        description="Model registry store (`seismo models`), a directory or an fsspec URL "
        "(s3://bucket/models): serve the current version of model_name and swap to each new "
        "one without stopping.",
    )
    model_cache_dir: Path | None = Field(
        None,
        description="With a URL model_store: where versions are downloaded to "
        "(default ~/.cache/seismo/artifacts).",
    )
    model_name: str = Field("seismo", description="Model name in the registry (model_store).")
    model_poll_s: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="With model_store: longest time a new version can go unnoticed when its "
        "pub/sub notification is lost (the pointer is polled this often).",
    )
    drift_m: float = Field(
        1.0,
        ge=0,
        description="Drift trigger: ask for a retrain when the rolling median score stays above "
        "calibration mean + drift_m * std (threshold space) for drift_window scores; 0 = off.",
    )
    drift_window: int = Field(
        2000, ge=10, description="Scores in the drift trigger's rolling median and its persistence."
    )
    drift_cooldown_s: float = Field(
        600.0, ge=0, description="After a drift request, no scorer asks again for this long."
    )
    bootstrap_servers: str = Field(
        defaults.BOOTSTRAP_SERVERS, description="Kafka bootstrap servers, comma-separated."
    )
    input_topic: str = Field(defaults.INPUT_TOPIC, description="Topic of sensor events.")
    alerts_topic: str = Field(defaults.ALERTS_TOPIC, description="Topic alerts are published to.")
    scores_topic: str | None = Field(
        None, description="Optional topic receiving one score record per valid event."
    )
    dlq_topic: str = Field(
        defaults.DLQ_TOPIC, description="Dead-letter topic for messages that cannot be scored."
    )
    group_id: str = Field("seismo-scorer", description="Kafka consumer group of the scorers.")
    kafka_config: dict[str, str] = Field(
        default_factory=dict,
        description="Extra librdkafka settings for every client (SASL/TLS...); "
        "env var as a JSON object.",
    )
    redis_url: Annotated[SecretStr, AfterValidator(check_redis_url)] = Field(
        SecretStr(defaults.REDIS_URL),
        description="Redis URL; may carry a password; rediss:// for TLS.",
    )
    redis_prefix: str = Field(
        defaults.REDIS_PREFIX, description="Prefix of every Redis key seismo writes."
    )
    device: str = Field("auto", description="Torch device: auto (CUDA if available), cpu, cuda.")
    max_batch: int = Field(
        4096, ge=1, le=1_000_000,
        description="Most events per micro-batch (bounds memory: lower it for wide events).",
    )
    linger_ms: int = Field(
        50, ge=1, le=60_000, description="Longest wait for a micro-batch to fill (ms)."
    )
    prefetch: bool = Field(
        False,
        description="Consume the next micro-batch in a thread while the current one is scored.",
    )
    width_check: bool = Field(
        True,
        description="Refuse to start when no recent event on the input topic has the model's "
        "number of values (or, named, exactly its channels).",
    )
    k: float = Field(3.0, gt=0, description="Threshold = mean + k * std of recent scores.")
    window: int = Field(
        1, ge=1, le=10_000,
        description="Readings per device scored together by a window model (1 = one by one).",
    )
    window_stride: int = Field(
        1, ge=1, description="With window > 1: readings between two scored windows of a device."
    )
    window_tail: int = Field(
        10_000, ge=0,
        description="With window > 1: messages per new partition re-read to rebuild its windows.",
    )
    window_step: int = Field(
        1, ge=1, le=10_000,
        description="With window > 1: readings between two readings of one window (1 = "
        "consecutive; 12 = every 12th, so a window spans (window - 1) * step + 1 readings).",
    )  # fmt: skip
    threshold_scope: Literal["model", "device"] = Field(
        "model",
        description="model: one rolling threshold per model version, shared by every device "
        "and scorer. device: each device against its own past (smoothed errors, forgetting "
        "statistics from the calibration) plus the level check of its readings; states in Redis.",
    )
    smooth: int = Field(
        6, ge=1, le=1000,
        description="threshold_scope device: windows (or events) averaged before judging.",
    )  # fmt: skip
    device_history: int = Field(
        4000, ge=1,
        description="threshold_scope device: memory of a device's statistics, in scores.",
    )  # fmt: skip
    level_history: int = Field(
        6400, ge=0,
        description="threshold_scope device: memory of a device's reading statistics (the "
        "level check: any channel k std off its mean); 0 turns the level check off.",
    )  # fmt: skip
    level_warmup: int = Field(
        250, ge=1,
        description="threshold_scope device: readings of a device before the level check judges.",
    )  # fmt: skip
    level_mode: Literal["std", "range"] = Field(
        "std",
        description="threshold_scope device: the level check. std: a reading (or the mean of "
        "the last level_smooth) k std off the device's readings; range: a reading beyond the "
        "device's lowest-to-highest so far by more than level_tolerance of that range.",
    )
    level_smooth: int = Field(
        1, ge=1, le=1000,
        description="threshold_scope device, level_mode std: readings averaged before the "
        "level check judges them (a spike moves the mean by 1/level_smooth, a shift wholly).",
    )  # fmt: skip
    level_k: float | None = Field(
        None, gt=0,
        description="threshold_scope device, level_mode std: the level check's threshold in "
        "std (None = k).",
    )  # fmt: skip
    level_tolerance: float = Field(
        0.05, ge=0, le=100,
        description="threshold_scope device, level_mode range: how far beyond its range a "
        "reading may go, as a share of the range, before it is flagged. Range mode widens a "
        "device's range by every reading: one far out silences its range check for good, so "
        "it is not for streams untrusted producers write to.",
    )  # fmt: skip
    level_clip: float = Field(
        10.0, ge=0, le=1e6,
        description="threshold_scope device: once 30 of a device's readings are learnt, each "
        "one is learnt clipped to its channel's mean -/+ level_clip std, so one crafted reading "
        "cannot widen the spread and hide later level shifts; 0 learns readings as they are.",
    )  # fmt: skip
    max_devices: int = Field(
        DEFAULT_MAX_DEVICES, ge=1, le=100_000_000,
        description="Most device states (threshold_scope device) and device windows (window "
        "> 1) held in memory; beyond it the least recently heard device's is dropped (states "
        "written to Redis first). Windows of devices heard only once wait beside the cap, "
        "in a queue of a quarter of it. About 1 KB a device.",
    )  # fmt: skip
    device_state_ttl_s: int | None = Field(
        30 * 86_400, ge=1,
        description="threshold_scope device: a device state not written for this long expires "
        "in Redis (None = never).",
    )  # fmt: skip
    threshold_space: Literal["log", "linear"] = Field(
        "log",
        description="Statistics of log(score) (default; errors are right-skewed) or raw scores.",
    )
    min_samples: int = Field(
        1000, ge=0, description="Scores seen before the rolling threshold replaces calibration."
    )
    learn_anomalies: bool = Field(
        False, description="Also fold flagged scores into the rolling statistics (each "
        "clipped to mean + k std, as every learnt score is to mean -/+ k std).",
    )
    max_threshold_factor: Annotated[float, AfterValidator(check_threshold_factor)] = Field(
        10.0, ge=0, description="The threshold in force is at most this many times the model's "
        "calibration threshold (0 = unbounded): scores kept just under it cannot raise it "
        "without limit, and a score this far out always alerts.",
    )
    stats_window: int | None = Field(
        100_000,
        ge=1,
        description="Effective memory of the rolling statistics, in scores (None = unbounded).",
    )
    redis_timeout_s: float = Field(
        2.0, gt=0, le=60,
        description="Longest wait for one Redis call; then the batch is judged locally.",
    )  # fmt: skip
    redis_retry_s: float = Field(
        2.0, ge=0, le=300,
        description="After a failed Redis call, judge on local statistics this long before "
        "trying Redis again.",
    )  # fmt: skip
    max_message_bytes: int = Field(
        DEFAULT_MAX_MESSAGE_BYTES, ge=64,
        description="Larger event values are dead-lettered (their value cut to fit the "
        "producer's message.max.bytes, the original size in a header).",
    )  # fmt: skip
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

        >>> from seismo.stream.config.loader import load_settings
        >>> s = load_settings({"model": "m", "kafka_config": {"sasl.password": "x"},
        ...                    "redis_url": "redis://:pw@h:1/0"}, env={})
        >>> s.redacted()["kafka_config"], s.redacted()["redis_url"], s.redacted()["model"]
        ({'sasl.password': '***'}, 'redis://:***@h:1/0', 'm')
        """
        return super().redacted()

    @model_validator(mode="after")
    def _device_rule_fits(self) -> ScorerSettings:
        if self.level_history and self.level_warmup > self.level_history:
            raise ValueError(f"level_warmup ({self.level_warmup}) cannot exceed level_history "
                             f"({self.level_history})")  # fmt: skip
        if self.threshold_scope == "device" and self.threshold_space != "log":
            raise ValueError("threshold_scope device judges log errors: leave threshold_space log")
        if self.window_step > 1 and self.window == 1:
            raise ValueError("window_step spaces the readings of a window: give window > 1 too")
        return self

    @model_validator(mode="after")
    def _one_model_source(self) -> ScorerSettings:
        if (self.model is None) == (self.model_store is None):
            raise ValueError(
                "give exactly one of model (SEISMO_MODEL, an artifact directory) and "
                "model_store (SEISMO_MODEL_STORE, a registry, with model_name)"
            )
        return self
