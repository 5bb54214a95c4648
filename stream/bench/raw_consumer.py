"""The raw ceiling of ``seismo bench``: a plain consumer in a process of its own.

Run as ``python -m seismo.stream.bench.raw_consumer BOOTSTRAP TOPIC TOTAL``;
it prints one JSON line ``{"events": ..., "seconds": ..., "first_batch": ...}``.

The consumer is what a reader of the confluent-kafka documentation writes:
library defaults (plus a fresh group and ``auto.offset.reset = earliest``),
``subscribe``, ``consume(10000, 1.0)``, discard. Nothing else runs in its
process: no logger callback (librdkafka's log goes to stderr, as by
default), no producer, no display thread, no torch. The clock runs from the
end of the first non-empty batch to the end of the batch holding the last
event, and the events of the first batch count for nothing, as for every
contender.

This module imports nothing but the standard library and confluent-kafka, so
the child starts in a fraction of a second and nothing of seismo competes
with it for the GIL.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from confluent_kafka import Consumer

#: Messages per ``consume`` call and its timeout: the documentation's batch loop.
BATCH = 10_000
TIMEOUT_S = 1.0


def consume_all(
    bootstrap: str, topic: str, total: int, timeout_s: float = 300.0,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, float]:  # fmt: skip
    """Subscribe, consume ``total`` messages in batches of :data:`BATCH`, discard them."""
    consumer = Consumer({**(extra or {}), "bootstrap.servers": bootstrap,
                         "group.id": f"seismo-raw-{uuid.uuid4().hex[:8]}",
                         "auto.offset.reset": "earliest"})  # fmt: skip
    consumer.subscribe([topic])
    seen, first_batch, first, last = 0, 0, 0.0, 0.0
    deadline = time.monotonic() + timeout_s
    try:
        while seen < total and time.monotonic() < deadline:
            messages = consumer.consume(BATCH, TIMEOUT_S)
            if not messages:
                continue
            seen += sum(1 for m in messages if m.error() is None)
            last = time.perf_counter()
            if not first_batch:
                first_batch, first = seen, last
    finally:
        consumer.close()
    return {"events": seen - first_batch, "seconds": last - first, "first_batch": first_batch}


def _pairs(items: Sequence[str]) -> dict[str, str]:
    """``KEY=VALUE`` arguments as a dict.

    >>> _pairs(["fetch.wait.max.ms=50"])
    {'fetch.wait.max.ms': '50'}
    """
    return dict(item.split("=", 1) for item in items)


def main(argv: Sequence[str]) -> int:
    """``BOOTSTRAP TOPIC TOTAL [KEY=VALUE ...]``: run :func:`consume_all`, print its JSON."""
    bootstrap, topic, total, *config = argv
    print(json.dumps(consume_all(bootstrap, topic, int(total), extra=_pairs(config))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
