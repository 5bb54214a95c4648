"""SharedStats' retry pause: while Redis is failing, batches are judged locally at once."""

from __future__ import annotations

import numpy as np
import redis

from seismo.stream.io.redis_stats import SharedStats
from seismo.stream.scoring.stats import RunningStats


class FlakyStore:
    """A RedisStats stand-in held in memory, that fails while ``down`` is set."""

    window = None

    def __init__(self) -> None:
        self.state = RunningStats()
        self.down = False
        self.calls = 0

    def _call(self) -> None:
        self.calls += 1
        if self.down:
            raise redis.TimeoutError("Timeout reading from socket")

    def read(self) -> RunningStats:
        self._call()
        return self.state

    def merge(self, batch: RunningStats, number: object = None) -> RunningStats:
        self._call()
        self.state = self.state.merge(batch)
        return self.state


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def batch(n: int, seed: int) -> RunningStats:
    return RunningStats.from_scores(np.random.default_rng(seed).normal(2.0, 0.5, size=n))


def test_after_a_failure_redis_is_left_alone_for_retry_s_and_nothing_is_lost():
    store, clock = FlakyStore(), Clock()
    shared = SharedStats(store, retry_s=2.0, clock=clock)  # type: ignore[arg-type]
    shared.merge(batch(10, 0))
    assert shared.read()[1] == "redis" and store.calls == 2

    store.down = True
    assert shared.read()[1] == "local" and shared.errors == 1 and store.calls == 3
    for seed in range(1, 6):  # within the pause: no call reaches Redis
        clock.now += 0.3
        shared.merge(batch(5, seed))
        stats, source = shared.read()
        assert source == "local"
    assert store.calls == 3 and shared.errors == 1
    assert shared.pending.count == 25
    assert stats.count == 35  # the last state seen plus everything pending

    clock.now += 1.0  # the pause is over: one try, which fails and starts a new pause
    assert shared.read()[1] == "local" and store.calls == 4 and shared.errors == 2

    store.down = False
    clock.now += 2.0
    shared.merge(batch(5, 9))
    assert store.calls == 5 and shared.pending.count == 0
    expected = batch(10, 0)
    for seed in [*range(1, 6), 9]:
        expected = expected.merge(batch(5, seed))
    assert store.state.count == expected.count == 40
    assert np.isclose(store.state.mean, expected.mean) and np.isclose(store.state.m2, expected.m2)
    assert shared.read()[1] == "redis"


def test_with_no_pause_every_call_tries_redis():
    store = FlakyStore()
    store.down = True
    shared = SharedStats(store)  # type: ignore[arg-type]
    for seed in range(3):
        shared.merge(batch(4, seed))
        shared.read()
    assert store.calls == 6 and shared.errors == 6
