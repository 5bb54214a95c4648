"""What every command's parsing shares: ``KEY=VALUE`` options, logging, stop signals."""

from __future__ import annotations

import logging
import re
import signal
import sys
import threading
from collections.abc import Mapping
from typing import Annotated, Any

import typer
from pydantic import SecretStr

from seismo.stream.config.base import check_redis_url
from seismo.stream.errors import ConfigError


def redis_url_option(value: str) -> str:
    """Check a ``--redis-url`` given to a command without a settings class.

    >>> redis_url_option("redis://127.0.0.1:6379/0")
    'redis://127.0.0.1:6379/0'
    >>> try:
    ...     redis_url_option("http://h:6379")
    ... except typer.BadParameter as exc:
    ...     print(exc)
    must start with redis://, rediss:// or unix://
    """
    try:
        check_redis_url(SecretStr(value))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    return value


#: ``--redis-url`` and ``--redis-prefix`` of the commands without a settings class
#: (``seismo models``, ``seismo silence``): the same variables as every other command.
RedisUrlOpt = Annotated[str, typer.Option(
    envvar="SEISMO_REDIS_URL", callback=redis_url_option, help="Redis URL (password allowed).",
)]  # fmt: skip
RedisPrefixOpt = Annotated[
    str, typer.Option(envvar="SEISMO_REDIS_PREFIX", help="Prefix of Redis keys.")
]


def parse_pairs(pairs: list[str] | None) -> dict[str, str] | None:
    """Parse repeated ``KEY=VALUE`` options.

    >>> parse_pairs(["security.protocol=SASL_SSL", "sasl.mechanism=PLAIN"])
    {'security.protocol': 'SASL_SSL', 'sasl.mechanism': 'PLAIN'}
    >>> parse_pairs(["oops"])
    Traceback (most recent call last):
    ...
    seismo.stream.errors.ConfigError: --kafka-config expects KEY=VALUE, got 'oops'
    """
    if not pairs:
        return None
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--kafka-config expects KEY=VALUE, got {pair!r}")
        out[key.strip()] = value
    return out


def kafka_config_or_env(
    pairs: list[str] | None, env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """librdkafka settings of ``tail``, ``produce`` and ``simulate`` (no settings class;
    like ``score`` they read ``SEISMO_BOOTSTRAP_SERVERS``), read as ``score`` reads them:
    ``SEISMO_KAFKA_CONFIG`` (a JSON object of strings) with the ``--kafka-config``
    pairs over it. ``demo`` and ``bench`` run an embedded broker by default and take
    flags only.

    >>> env = {"SEISMO_KAFKA_CONFIG": '{"security.protocol": "SSL"}'}
    >>> kafka_config_or_env(None, env)
    {'security.protocol': 'SSL'}
    >>> kafka_config_or_env(["acks=1"], env)
    {'security.protocol': 'SSL', 'acks': '1'}
    >>> kafka_config_or_env(None, {"SEISMO_KAFKA_CONFIG": '{"acks": 1}'})
    Traceback (most recent call last):
    ...
    seismo.stream.errors.ConfigError: invalid setting kafka_config.acks (SEISMO_KAFKA_CONFIG): Input should be a valid string
    """  # noqa: E501
    from seismo.stream.config.loader import load_kafka_config

    return load_kafka_config(parse_pairs(pairs), env)


#: How librdkafka words a configuration it refuses when a client is created (its
#: ``_INVALID_ARG`` code also covers misuse at run time, which is a bug, not this).
_REFUSED_CONFIG = re.compile(
    r"configuration property|^Failed to create (consumer|producer|admin)|^Expected \w+ value",
    re.IGNORECASE,
)


def kafka_config_error(exc: BaseException) -> str | None:
    """The one line for a Kafka client that refused its configuration (an unknown
    property, a bad value, a missing companion setting), or ``None`` for any other
    exception, which keeps its traceback.

    >>> from confluent_kafka import Consumer, KafkaError, KafkaException
    >>> try:
    ...     Consumer({"group.id": "g", "security.protcol": "SSL"})
    ... except Exception as exc:
    ...     print(kafka_config_error(exc))
    Kafka client configuration: No such configuration property: "security.protcol" (--kafka-config or SEISMO_KAFKA_CONFIG)
    >>> misuse = KafkaException(KafkaError(KafkaError._INVALID_ARG, "StoreOffsets failed"))
    >>> kafka_config_error(misuse) is None, kafka_config_error(ValueError("x")) is None
    (True, True)
    """  # noqa: E501
    from confluent_kafka import KafkaError, KafkaException

    if not isinstance(exc, KafkaException) or not exc.args:
        return None
    error = exc.args[0]
    if not isinstance(error, KafkaError) or error.code() != KafkaError._INVALID_ARG:
        return None
    if not _REFUSED_CONFIG.search(error.str()):
        return None
    text = " ".join(error.str().split())  # librdkafka ends some with a newline
    return f"Kafka client configuration: {text} (--kafka-config or SEISMO_KAFKA_CONFIG)"


def setup_logging(level: str) -> None:
    """Log lines to stderr, one per event.

    Control characters of the line (``\\n``, ``\\r``, ``\\x1b``...: a device id,
    a topic name, a broker's error text) are written out as escapes
    (:func:`seismo.stream.incidents.sinks.escape_controls`), so no input can forge a log line
    or drive a terminal; a traceback, after the line, keeps its lines.
    """
    from seismo.stream.incidents.sinks import escape_controls

    class OneLineFormatter(logging.Formatter):
        def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's)
            return escape_controls(super().formatMessage(record))

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])


def unwind_on_sigterm() -> None:
    """SIGTERM unwinds the command as Ctrl-C does (``SystemExit``, exit status 143), so
    ``finally`` blocks and context managers run: the embedded broker and Redis a command
    started are stopped instead of left running. A second SIGTERM kills at once.

    Commands with a graceful stop replace this with :func:`install_stop_handlers`.
    """

    def handler(signum: int, _frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def install_stop_handlers() -> threading.Event:
    """SIGTERM/SIGINT set the returned event: finish the batch, commit, leave."""
    stop = threading.Event()

    def handler(signum: int, _frame: Any) -> None:
        logging.getLogger("seismo").info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop
