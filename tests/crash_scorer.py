"""``seismo score`` that kills itself with SIGKILL at a chosen step of its Nth batch.

Usage: ``python -m tests.crash_scorer STEP N score --model ...``. The scorer
is the real one (real Kafka, real Redis, the installed code); only these
points are wrapped, each right after the step it names:

- ``consume``: a batch was consumed, nothing of it processed yet;
- ``score``: the batch was decoded, scored and judged, nothing published;
- ``produce``: its alerts, scores and dead letters are queued, not confirmed;
- ``redis``: delivery was confirmed and the statistics merged into Redis,
  the offsets not committed;
- ``commit``: the offsets were committed, the batch's metrics not updated.

It lives under ``tests/`` on purpose: the product has no fault-injection code.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from seismo.stream.io.kafka import ConfirmingProducer
from seismo.stream.io.redis_stats import SharedStats
from seismo.stream.scoring.scorer import Scorer

STEPS = ("consume", "score", "produce", "redis", "commit")


def _arm(step: str, nth: int) -> None:
    seen = 0

    def hit() -> None:
        nonlocal seen
        seen += 1
        if seen == nth:
            os.kill(os.getpid(), signal.SIGKILL)

    def before(cls: type, name: str) -> None:
        original: Callable[..., Any] = getattr(cls, name)

        def wrapper(self: object, *args: Any, **kwargs: Any) -> Any:
            hit()
            return original(self, *args, **kwargs)

        setattr(cls, name, wrapper)

    def after(cls: type, name: str) -> None:
        original: Callable[..., Any] = getattr(cls, name)

        def wrapper(self: object, *args: Any, **kwargs: Any) -> Any:
            result = original(self, *args, **kwargs)
            hit()
            return result

        setattr(cls, name, wrapper)

    points = {
        "consume": lambda: before(Scorer, "process"),
        "score": lambda: after(Scorer, "_score"),
        # every record of the batch sent, none confirmed yet
        "produce": lambda: before(ConfirmingProducer, "flush"),
        "redis": lambda: after(SharedStats, "merge"),
        "commit": lambda: after(Scorer, "_commit"),
    }
    points[step]()


def main(argv: list[str]) -> None:
    step, nth, *seismo_args = argv
    if step not in STEPS:
        raise SystemExit(f"step must be one of {', '.join(STEPS)}")
    _arm(step, int(nth))
    from seismo.stream.cli.app import main as seismo_main

    sys.argv = ["seismo", *seismo_args]
    seismo_main()


if __name__ == "__main__":
    main(sys.argv[1:])
