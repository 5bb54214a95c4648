"""Settings of ``seismo incidents`` and ``seismo notify``: frozen, typed, validated once.

Same rules as :mod:`seismo.stream.config.settings` (flags > ``SEISMO_*`` variables >
``--config`` TOML > defaults); names shared with the scorer (Kafka, Redis,
``alerts_topic``) read the same variables.

Examples
--------
>>> from seismo.stream.config.loader import load
>>> s = load(IncidentSettings, {}, env={})
>>> s.alerts_topic, s.incidents_topic, s.open_after, s.window_s, s.quiet_period_s
('anomalies', 'incidents', 3, 60.0, 120.0)
>>> s.alerts_dlq_topic
'anomalies.incidents-dlq'
>>> n = load(NotifySettings, {"webhook_url": "http://127.0.0.1:9/hook"}, env={})
>>> n.retry_topic, n.dead_topic, n.sinks
('incidents.retry', 'incidents.notify-dlq', ['webhook'])

Sink URLs are secrets (a Slack or webhook token in the path, a password in
the user part): logs and settings dumps show their scheme and host only.

>>> n = load(NotifySettings, {"slack_url": "https://hooks.slack.com/services/T0/B0/XyZ"}, env={})
>>> n.redacted()["slack_url"], n.slack_url
('https://hooks.slack.com/***', SecretStr('**********'))
>>> load(NotifySettings, {}, env={})
Traceback (most recent call last):
...
seismo.stream.errors.ConfigError: invalid settings: no sink configured: give --webhook-url, --slack-url or --alertmanager-url
"""  # noqa: E501

from __future__ import annotations

import ssl
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from seismo.stream.config import defaults
from seismo.stream.config.base import ENV_PREFIX, RedactedSettings, check_redis_url
from seismo.stream.errors import ConfigError

__all__ = ["IncidentSettings", "NotifySettings", "ServiceSettings", "faust_credentials"]



def redact_url(url: str) -> str:
    """``url`` safe to log: its scheme and host, and ``/***`` for anything else.

    The user part (a password), the path (a Slack or webhook token) and the
    query (``?token=``) are all left out.

    >>> redact_url("https://user:pw@hooks.example.com:8443/T0/B1/secret?token=x")
    'https://hooks.example.com:8443/***'
    >>> redact_url("http://127.0.0.1:9093"), redact_url("nonsense")
    ('http://127.0.0.1:9093', '***')
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return "***"
    if not parts.scheme or not host:
        return "***"
    host = f"[{host}]" if ":" in host else host
    where = f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")
    rest = url.split(parts.netloc, 1)[-1] if parts.netloc else url
    return where + ("/***" if rest.strip("/") or parts.username or parts.password else "")


def check_http_url(url: SecretStr | None) -> SecretStr | None:
    """Refuse a sink URL that is not http(s) with a host, without echoing it (a secret).

    >>> check_http_url(SecretStr("ftp://h/x"))
    Traceback (most recent call last):
    ...
    ValueError: must be an http:// or https:// URL with a host, without spaces or control characters
    """  # noqa: E501
    if url is None:
        return None
    text = url.get_secret_value()
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises on a port that is no number
    except ValueError:
        parts = None
    if (parts is None or parts.scheme not in ("http", "https") or not parts.hostname
            or any(c.isspace() or not c.isprintable() for c in text)):  # fmt: skip
        raise ValueError(
            "must be an http:// or https:// URL with a host, without spaces or control characters"
        )
    return url


#: An http(s) URL kept secret, or none.
HttpUrl = Annotated[SecretStr | None, AfterValidator(check_http_url)]


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

    FLAG_NAMES: ClassVar[dict[str, str]] = {"window_s": "--window",
                                            "quiet_period_s": "--quiet-period",
                                            "forget_after_s": "--forget-after"}  # fmt: skip
    alerts_topic: str = Field("anomalies", description="Topic of the scorers' alerts.")
    incidents_topic: str = Field("incidents", description="Topic incident changes go to.")
    alerts_dlq_topic: str = Field(
        "anomalies.incidents-dlq",
        description="Alerts that cannot be read, with the reason in header seismo-error "
        "(created with one partition at start when missing, like the app's table topic).",
    )
    app_id: str = Field(
        "seismo-incidents", description="Faust app id: consumer group and table topic prefix."
    )
    open_after: int = Field(3, ge=1, description="Alerts within the window that open one.")
    window_s: float = Field(60.0, gt=0, description="Window of --open-after (s).")
    quiet_period_s: float = Field(120.0, gt=0, description="Resolve after this long quiet (s).")
    forget_after_s: float = Field(
        86_400.0, ge=0, description="A device with no open incident and no alert for this long "
        "is forgotten (its state deleted; 0 = never).",
    )
    max_devices: int = Field(
        100_000, ge=1, description="Device states kept per instance: beyond, those without an "
        "open incident and with the oldest last alert are forgotten.",
    )
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
        "incidents.notify-dlq",
        description="Deliveries given up after max_attempts, and messages that are no "
        "incident change (header seismo-error says why).",
    )
    webhook_url: HttpUrl = Field(None, description="Generic JSON webhook (a secret).")
    webhook_secret: SecretStr | None = Field(None, description="HMAC-SHA256 key of the webhook.")
    slack_url: HttpUrl = Field(None, description="Slack-compatible incoming webhook (a secret).")
    alertmanager_url: HttpUrl = Field(
        None, description="Alertmanager base URL (a secret: it may hold a password)."
    )
    updates: Literal["severity", "all", "none"] = Field(
        "severity", description="Which updates are delivered: severity changes, all or none."
    )
    max_attempts: int = Field(8, ge=1, description="Deliveries tried before the dead topic.")
    backoff_s: float = Field(1.0, gt=0, description="First retry delay; doubles each attempt.")
    max_backoff_s: float = Field(300.0, gt=0, description="Longest retry delay.")
    timeout_s: float = Field(5.0, gt=0, description="Longest time of one delivery, answer read.")
    metrics_port: int | None = Field(9467, ge=0, le=65535, description="Metrics port (0 = off).")

    @model_validator(mode="after")
    def _one_sink(self) -> NotifySettings:
        if not self.sinks:
            raise ValueError(
                "no sink configured: give --webhook-url, --slack-url or --alertmanager-url"
            )
        return self

    def _urls(self) -> dict[str, SecretStr | None]:
        return {"webhook": self.webhook_url, "slack": self.slack_url,
                "alertmanager": self.alertmanager_url}  # fmt: skip

    @property
    def sinks(self) -> list[str]:
        """Names of the configured sinks."""
        return [name for name, url in self._urls().items() if url is not None]

    def sink_url(self, sink: str) -> str:
        """The URL of a configured sink, in clear (never log it: see :meth:`redacted`)."""
        url = self._urls().get(sink)
        if url is None:
            raise ValueError(f"sink {sink!r} is not configured")
        return url.get_secret_value()

    def redacted(self) -> dict[str, Any]:
        """The settings as a dict safe to log; sink URLs show scheme and host only."""
        out = super().redacted()
        for name, url in self._urls().items():
            out[f"{name}_url"] = None if url is None else redact_url(url.get_secret_value())
        return out


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
    seismo.stream.errors.ConfigError: seismo incidents takes only security settings in kafka_config, not fetch.wait.max.ms
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
