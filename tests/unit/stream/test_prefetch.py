"""The prefetching thread: one batch ahead, the rebalance hand-over, failures and stop."""

from __future__ import annotations

import threading
import time

import pytest

from seismo.stream.scoring.prefetch import Prefetcher


class Source:
    """Numbered batches of one item; ``calls`` counts ``consume()``; ``hook`` runs inside it."""

    def __init__(self, batches: int, hook: dict[int, object] | None = None) -> None:
        self.batches, self.calls, self.hook = batches, 0, hook or {}
        self.lock = threading.Lock()

    def consume(self) -> list[int]:
        with self.lock:
            self.calls += 1
            call = self.calls
        action = self.hook.get(call)
        if callable(action):
            action()
        if call > self.batches:
            time.sleep(0.01)  # an idle consume() waits for its timeout
            return []
        return [call]


def test_batches_come_in_order_and_at_most_one_waits_ahead() -> None:
    source, stop = Source(10), threading.Event()
    with Prefetcher(source.consume, stop) as prefetcher:
        time.sleep(0.3)  # nothing taken: one batch queued, the next held in the thread
        assert source.calls == 2
        seen = []
        while len(seen) < 10:
            batch = prefetcher.next(1.0)
            assert batch is not None
            seen.extend(batch)
            prefetcher.done()
        stop.set()
        assert list(prefetcher.left()) == []
    assert seen == list(range(1, 11))


def test_a_revocation_waits_until_every_batch_consumed_ahead_is_finished_and_committed() -> None:
    stop, log = threading.Event(), []
    holder: list[Prefetcher[int]] = []

    def revoke() -> None:  # as librdkafka calls it: inside consume(), in the prefetch thread
        log.append("revoke starts")
        holder[0].settle()
        log.append("revoke ends")

    source = Source(4, hook={3: revoke})
    with Prefetcher(source.consume, stop) as prefetcher:
        holder.append(prefetcher)
        finished = 0
        while finished < 4:
            batch = prefetcher.next(1.0)
            assert batch is not None
            time.sleep(0.2)  # scoring: the third consume() and its revocation run meanwhile
            log.append(f"batch {batch[0]} scored")
            prefetcher.defer(lambda n=batch[0]: log.append(f"batch {n} committed"))
            prefetcher.done()
            finished += 1
        stop.set()
        list(prefetcher.left())
    assert log.index("revoke starts") < log.index("batch 2 scored")
    assert log.index("batch 2 committed") < log.index("revoke ends")
    assert log.index("batch 3 scored") > log.index("revoke ends")


def test_commits_run_in_the_consuming_thread_and_the_last_ones_on_exit() -> None:
    stop, threads = threading.Event(), []

    def commit() -> None:
        threads.append(threading.current_thread().name)

    with Prefetcher(Source(3).consume, stop) as prefetcher:
        for _ in range(3):
            assert prefetcher.next(1.0) is not None
            prefetcher.defer(commit)
            prefetcher.done()
        time.sleep(0.2)  # the thread's idle consume() calls run the deferred commits
        assert threads == ["seismo-prefetch"] * 3
        stop.set()
        assert list(prefetcher.left()) == []
        prefetcher.defer(commit)  # a batch finished after the thread ended
    assert threads[-1] == threading.current_thread().name


def test_a_stop_during_a_revocation_finishes_the_batches_ahead_and_ends() -> None:
    stop, log = threading.Event(), []
    holder: list[Prefetcher[int]] = []

    def revoke() -> None:  # the third consume(): batch 1 in flight, batch 2 queued
        holder[0].settle()
        log.append("revoke ends")

    def score() -> None:  # as Scorer.run does with the prefetcher
        with Prefetcher(Source(10, hook={3: revoke}).consume, stop) as prefetcher:
            holder.append(prefetcher)
            batch = prefetcher.next(1.0)
            time.sleep(0.2)  # scoring batch 1 while the revocation waits; then a SIGTERM
            stop.set()
            log.append(f"batch {batch[0]} done")
            prefetcher.done()
            for ahead in prefetcher.left():
                log.append(f"batch {ahead[0]} done")
                prefetcher.done()

    scorer = threading.Thread(target=score, daemon=True)
    scorer.start()
    scorer.join(5.0)
    assert not scorer.is_alive(), f"deadlocked after {log}"
    # batch 3, consumed by the call the revocation ran in, is finished before leaving too
    assert log == ["batch 1 done", "batch 2 done", "revoke ends", "batch 3 done"]


def test_settle_outside_the_prefetch_thread_returns_at_once() -> None:
    stop = threading.Event()
    with Prefetcher(Source(1).consume, stop) as prefetcher:
        assert prefetcher.next(1.0) == [1]  # taken and not done: one pending
        started = time.monotonic()
        prefetcher.settle()  # the caller's thread: not a revocation in flight
        assert time.monotonic() - started < 0.1
        prefetcher.done()
        stop.set()


def test_the_batch_consumed_after_stop_is_handed_over_by_left() -> None:
    stop = threading.Event()
    source = Source(5, hook={2: stop.set})  # stop arrives while the second batch is consumed
    with Prefetcher(source.consume, stop) as prefetcher:
        assert prefetcher.next(1.0) == [1]
        prefetcher.done()
        assert list(prefetcher.left()) == [[2]]
    assert source.calls == 2


def test_a_consume_failure_reaches_the_caller() -> None:
    def broken() -> list[int]:
        raise RuntimeError("broker gone")

    stop = threading.Event()
    with pytest.raises(RuntimeError, match="broker gone"), Prefetcher(broken, stop) as prefetcher:
        prefetcher.next(0.5)


def test_an_error_of_the_caller_leaves_without_waiting_for_the_batches_ahead() -> None:
    stop, source = threading.Event(), Source(100)
    started = time.monotonic()
    with pytest.raises(ValueError), Prefetcher(source.consume, stop) as prefetcher:
        prefetcher.next(1.0)
        time.sleep(0.2)  # the queue is full and the thread waits to hand one over
        raise ValueError("scoring failed")
    assert time.monotonic() - started < 2.0
    assert source.calls <= 3
