"""Settings of ``seismo incidents`` and ``seismo notify``: frozen, typed, validated once.

Same rules as :mod:`stream.settings` (flags > ``SEISMO_*`` variables >
``--config`` TOML > defaults); names shared with the scorer (Kafka, Redis,
``alerts_topic``) read the same variables.

Examples
--------
>>> s = load(IncidentSettings, {}, env={})
>>> s.alerts_topic, s.incidents_topic, s.open_after, s.window_s, s.quiet_period_s
('anomalies', 'incidents', 3, 60.0, 120.0)
>>> n = load(NotifySettings, {"webhook_url": "http://127.0.0.1:9/hook"}, env={})
>>> n.retry_topic, n.dead_topic, n.sinks
('incidents.retry', 'incidents.notify-dlq', ['webhook'])
>>> load(NotifySettings, {}, env={})
Traceback (most recent call last):
...
stream.errors.ConfigError: invalid settings: no sink configured: give --webhook-url, --slack-url or --alertmanager-url
"""  # noqa: E501

from __future__ import annotations

import ssl
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from stream import defaults
from stream.errors import ConfigError
from stream.settings import ENV_PREFIX, RedactedSettings, check_redis_url, load

__all__ = ["IncidentSettings", "NotifySettings", "ServiceSettings", "faust_credentials", "load"]

#: An http(s) URL, or none.
HttpUrl = Annotated[str | None, Field(pattern=r"^https?://")]


class ServiceSettings(RedactedSettings):
    """What ``seismo incidents`` and ``seismo notify`` share: Kafka, metrics, logging."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")

    bootstrap_servers: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers.")
    kafka_config: dict[str, str] = Field(
        default_factory=dict, description="Extra librdkafka settings (SASL/TLS...), JSON in env."
    )
    metrics_host: str = Field("127.0.0.1", description="Address the metrics endpoint binds to.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Level.")


class IncidentSettings(ServiceSettings):
    """Settings of ``seismo incidents``; each field's env var is ``SEISMO_<NAME>``."""

    alerts_topic: str = Field("anomalies", description="Topic of the scorers' alerts.")
    incidents_topic: str = Field("incidents", description="Topic incident changes go to.")
    app_id: str = Field(
        "seismo-incidents", description="Faust app id: consumer group and table topic prefix."
    )
    open_after: int = Field(3, ge=1, description="Alerts within the window that open one.")
    window_s: float = Field(60.0, gt=0, description="Window of --open-after (s).")
    quiet_period_s: float = Field(120.0, gt=0, description="Resolve after this long quiet (s).")
    redis_url: Annotated[SecretStr, AfterValidator(check_redis_url)] = Field(
        SecretStr(defaults.REDIS_URL), description="Redis URL (maintenance windows)."
    )
    redis_prefix: str = Field(defaults.REDIS_PREFIX, description="Prefix of every Redis key.")
    store: str = Field("memory://", description="Faust table store: memory:// or rocksdb://.")
    data_dir: str = Field("seismo-incidents-data", description="Faust's data directory.")
    session_timeout_s: float = Field(30.0, gt=1, description="Consumer group session timeout.")
    tick_s: float = Field(1.0, gt=0, description="How often quiet incidents are looked for.")
    producer_batch_bytes: int | None = Field(
        None, ge=64,
        description="Faust's producer batch limit (bytes); None keeps Faust's 16 384.",
    )
    metrics_port: int | None = Field(9466, ge=0, le=65535, description="Metrics port (0 = off).")


class NotifySettings(ServiceSettings):
    """Settings of ``seismo notify``; each field's env var is ``SEISMO_<NAME>``."""

    incidents_topic: str = Field("incidents", description="Topic of incident changes.")
    notify_group_id: str = Field("seismo-notify", description="Consumer group of the notifier.")
    retry_topic: str = Field("incidents.retry", description="Deliveries to try again later.")
    dead_topic: str = Field(
        "incidents.notify-dlq", description="Deliveries given up after max_attempts."
    )
    webhook_url: HttpUrl = Field(None, description="Generic JSON webhook.")
    webhook_secret: SecretStr | None = Field(None, description="HMAC-SHA256 key of the webhook.")
    slack_url: HttpUrl = Field(None, description="Slack-compatible incoming webhook.")
    alertmanager_url: HttpUrl = Field(None, description="Alertmanager base URL.")
    updates: Literal["severity", "all", "none"] = Field(
        "severity", description="Which updates are delivered: severity changes, all or none."
    )
    max_attempts: int = Field(8, ge=1, description="Deliveries tried before the dead topic.")
    backoff_s: float = Field(1.0, gt=0, description="First retry delay; doubles each attempt.")
    max_backoff_s: float = Field(300.0, gt=0, description="Longest retry delay.")
    timeout_s: float = Field(5.0, gt=0, description="HTTP timeout of one delivery.")
    metrics_port: int | None = Field(9467, ge=0, le=65535, description="Metrics port (0 = off).")

    @model_validator(mode="after")
    def _one_sink(self) -> NotifySettings:
        if not self.sinks:
            raise ValueError(
                "no sink configured: give --webhook-url, --slack-url or --alertmanager-url"
            )
        return self

    @property
    def sinks(self) -> list[str]:
        """Names of the configured sinks."""
        urls = {"webhook": self.webhook_url, "slack": self.slack_url,
                "alertmanager": self.alertmanager_url}  # fmt: skip
        return [name for name, url in urls.items() if url]


def faust_credentials(kafka_config: dict[str, str]) -> Any:
    """Faust (aiokafka) credentials from librdkafka-named settings, or ``None``.

    Faust does not speak librdkafka, so only the security settings are
    translated; any other key is refused rather than silently dropped.

    >>> faust_credentials({}) is None
    True
    >>> c = faust_credentials({"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
    ...                        "sasl.username": "u", "sasl.password": "p"})
    >>> type(c).__name__, c.username, c.mechanism.value
    ('SASLCredentials', 'u', 'PLAIN')
    >>> faust_credentials({"fetch.wait.max.ms": "10"})
    Traceback (most recent call last):
    ...
    stream.errors.ConfigError: seismo incidents takes only security settings in kafka_config, not fetch.wait.max.ms
    """  # noqa: E501
    import faust

    known = {"security.protocol", "sasl.mechanism", "sasl.mechanisms", "sasl.username",
             "sasl.password", "ssl.ca.location", "session.timeout.ms"}  # fmt: skip
    other = sorted(set(kafka_config) - known)
    if other:
        raise ConfigError(
            "seismo incidents takes only security settings in kafka_config, not " + ", ".join(other)
        )
    protocol = kafka_config.get("security.protocol", "PLAINTEXT").upper()
    if protocol == "PLAINTEXT":
        return None
    context = None
    if protocol.endswith("SSL"):
        context = ssl.create_default_context(cafile=kafka_config.get("ssl.ca.location"))
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    mechanism = kafka_config.get("sasl.mechanism", kafka_config.get("sasl.mechanisms", "PLAIN"))
    return faust.SASLCredentials(
        username=kafka_config.get("sasl.username"), password=kafka_config.get("sasl.password"),
        ssl_context=context, mechanism=mechanism,
    )  # fmt: skip
