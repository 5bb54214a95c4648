"""The next micro-batch consumed in a thread while the current one is scored (``--prefetch``).

librdkafka's ``consume()`` waits for the broker and builds the batch's
message objects; scoring decodes, runs the model and writes to Kafka and
Redis. One after the other, each waits for the other. A :class:`Prefetcher`
runs ``consume()`` in a thread of its own and hands the batches over through
a queue of one, so at most one batch waits while another is scored: memory
stays bounded, and an output topic that cannot be written holds the
consumer back as before.

**The consumer is used from that thread only.** A synchronous offset commit
made in one thread while ``consume()`` waits in another can block for good
(seen with librdkafka 2.16 on Tansu; the scorer's integration and rebalance
tests run ``--prefetch`` against a broker).
So the scoring thread does not commit: it hands the commit over with
:meth:`Prefetcher.defer`, and the prefetching thread runs it between two
``consume()`` calls (within one ``linger_ms``). A crash before it runs
replays the batch, as a crash before any commit does.

The rebalance hand-over keeps the scorer's promise (a batch is scored,
delivered and committed by the member that consumed it): librdkafka calls
the revocation callback from inside ``consume()``, so in the prefetching
thread, and :meth:`Prefetcher.settle` (called there) waits until every batch
already consumed is finished, the one in flight and the one waiting, then
runs their commits, before the partitions go. The next owner starts after them.
A revocation therefore takes up to two batches' time (with windows, a rebuild
of the windows too): far below librdkafka's ``max.poll.interval.ms`` (5 min)
with the default batch sizes.

Examples
--------
>>> import threading
>>> batches, committed = iter([[1, 2], [], [3]]), []
>>> stop = threading.Event()
>>> with Prefetcher(lambda: next(batches, []), stop) as prefetcher:
...     seen = [prefetcher.next(1.0), prefetcher.next(1.0)]
...     for batch in seen:
...         prefetcher.defer(lambda batch=batch: committed.append(batch))
...         prefetcher.done()
...     stop.set()
...     list(prefetcher.left())
[]
>>> seen, committed
([[1, 2], [3]], [[1, 2], [3]])
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import Generic, TypeVar

T = TypeVar("T")

#: How often a thread waiting to hand a batch over runs the deferred work (s).
_TICK_S = 0.01


class Prefetcher(Generic[T]):
    """``consume()`` in a thread, one batch ahead of the scorer.

    ``consume`` returns a batch (possibly empty: nothing arrived in time);
    empty ones are not handed over. Used as a context manager: the thread
    starts on entry and is joined on exit, after ``stop`` is set by the
    caller; then the work still deferred runs in the caller's thread (the
    consumer is no longer used elsewhere). The caller takes batches with
    :meth:`next`, hands their commits over with :meth:`defer` and reports
    each batch finished with :meth:`done`; :meth:`left` gives the batch
    consumed after ``stop`` (to finish before leaving).
    """

    def __init__(self, consume: Callable[[], Sequence[T]], stop: threading.Event) -> None:
        self._consume = consume
        self._stop = stop
        self._queue: queue.Queue[Sequence[T]] = queue.Queue(maxsize=1)
        self._settled = threading.Condition()
        self._pending = 0  # batches consumed and not yet reported done
        self._deferred: deque[Callable[[], None]] = deque()
        self._abandoned = False  # the caller left without finishing (an error)
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="seismo-prefetch", daemon=True)

    def __enter__(self) -> Prefetcher[T]:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:  # fmt: skip
        if error is not None:
            self.abandon()
        self._thread.join()
        self._run_deferred()  # the batches finished last: committed here, the thread is gone

    def next(self, timeout: float) -> Sequence[T] | None:
        """The next batch, or ``None`` when none came within ``timeout`` seconds.

        Raises what ``consume()`` raised in the thread.
        """
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            if self._failure is not None:
                raise self._failure from None
            return None

    def defer(self, work: Callable[[], None]) -> None:
        """Run ``work`` (a commit) in the consuming thread, before its next ``consume()``."""
        self._deferred.append(work)

    def done(self) -> None:
        """The batch last taken is finished (its commit, if any, deferred)."""
        with self._settled:
            self._pending -= 1
            self._settled.notify_all()

    def left(self) -> Iterator[Sequence[T]]:
        """After ``stop``: the batches consumed and not yet taken, each handed over as soon
        as it is taken, until the thread ended.

        One at a time, not a list at the end: a revocation in flight waits in the
        thread until they are finished (:meth:`settle`), and the thread ends only then.
        """
        while self._thread.is_alive() or not self._queue.empty():
            try:
                batch = self._queue.get(timeout=0.05)
            except queue.Empty:
                continue
            yield batch
        if self._failure is not None:
            raise self._failure

    def abandon(self) -> None:
        """Stop the thread without waiting for the batches it consumed (they are not
        committed, so they are consumed again after a restart)."""
        with self._settled:
            self._abandoned = True
            self._settled.notify_all()

    def settle(self) -> None:
        """Until every batch consumed so far is finished and committed (from the
        revocation callback, which runs in the consuming thread)."""
        if threading.current_thread() is not self._thread:
            return  # not prefetching: nothing is in flight
        with self._settled:
            self._settled.wait_for(lambda: self._pending == 0 or self._abandoned)
        self._run_deferred()

    def _run(self) -> None:
        try:
            while not self._stop.is_set() and not self._abandoned:
                self._run_deferred()
                batch = self._consume()
                if batch:
                    with self._settled:
                        self._pending += 1
                    self._hand_over(batch)
        except BaseException as error:  # handed to the caller by next()
            self._failure = error

    def _hand_over(self, batch: Sequence[T]) -> None:
        while not self._abandoned:
            try:
                self._queue.put(batch, timeout=_TICK_S)
                return
            except queue.Full:
                self._run_deferred()  # batches finished meanwhile are committed promptly

    def _run_deferred(self) -> None:
        while self._deferred:
            self._deferred.popleft()()
