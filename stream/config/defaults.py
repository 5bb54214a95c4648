"""Defaults shared by the settings object and the commands that take the same options.

Kept free of imports so the command line can use them without loading pydantic.
"""

REDIS_URL = "redis://127.0.0.1:6379/0"
"""Redis every seismo process talks to unless told otherwise."""

REDIS_PREFIX = "seismo"
"""Prefix of every Redis key seismo writes."""

BOOTSTRAP_SERVERS = "127.0.0.1:9092"
"""Kafka every seismo process talks to unless told otherwise."""

INPUT_TOPIC = "sensor-events"
"""Topic of the sensor events the scorer reads."""

ALERTS_TOPIC = "anomalies"
"""Topic the scorer publishes alerts to."""

DLQ_TOPIC = "sensor-events.dlq"
"""Dead-letter topic: messages that could not be scored, with the reason in a header."""

SCORES_TOPIC = "sensor-scores"
"""Name ``seismo dev up`` and ``seismo demo`` give the optional per-event scores topic (the
scorer writes none unless given ``--scores-topic``)."""
