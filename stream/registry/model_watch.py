"""Hot swap: follow a model's registry pointer and load new versions in the background.

A :class:`ModelWatcher` thread listens on the model's events channel
(``{prefix}:model:{name}:events``) and, in case a notification is lost
(pub/sub delivers at most once, and not while disconnected), reads the pointer
every ``poll_s`` seconds: a new version is noticed within ``poll_s`` at the
latest. It loads and verifies the new version (checksum, and the same
channels, in the same order, as the one serving: :func:`input_change`) off the
scoring thread and leaves it in a
one-slot mailbox; the scorer takes it between two batches
(:meth:`ModelWatcher.take`), so no batch is ever scored by two models and no
event is dropped or scored twice by the swap. A version that cannot be used is
logged, counted and skipped; the scorer keeps its current model.

The thread never dies of an error: whatever a check raises (Redis away, a
pointer that is no UTF-8, a store that does not answer) is logged, counted
(``on_error``) and retried after a backoff (:func:`retry_delay_s`), and a
version that failed that way is tried again. :meth:`ModelWatcher.status` says
whether the thread lives, its last error and when a check last succeeded, for
``/health`` (:func:`seismo.stream.io.health.watcher_state`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

import redis

from seismo.models.artifact import Artifact
from seismo.models.columns import is_positional, window_of, window_step_of
from seismo.stream.errors import ArtifactError, RegistryError
from seismo.stream.io.health import WatcherStatus
from seismo.stream.registry.model_registry import ModelRegistry
from seismo.stream.registry.model_versions import events_channel

log = logging.getLogger(__name__)

#: First wait after a failed check (s); it doubles with each failure in a row.
FIRST_RETRY_S = 0.5
#: Longest wait after a failed check (s), whatever the poll period.
MAX_RETRY_S = 30.0
#: Longest single wait on the events channel (s): how soon :meth:`ModelWatcher.stop`
#: is noticed between two polls.
STOP_CHECK_S = 0.25


def retry_delay_s(failures: int, poll_s: float) -> float:
    """Wait after ``failures`` failed checks in a row: doubling, at most one poll period.

    >>> [retry_delay_s(n, 30.0) for n in (1, 2, 3, 7, 20)]
    [0.5, 1.0, 2.0, 30.0, 30.0]
    >>> retry_delay_s(5, 2.0), retry_delay_s(1, 0.1)
    (2.0, 0.5)
    """
    doubled = FIRST_RETRY_S * 2.0 ** min(failures - 1, 16)
    return min(doubled, max(poll_s, FIRST_RETRY_S), MAX_RETRY_S)


#: Channel names a refusal shows of each version before it says how many more.
SHOWN_NAMES = 6


def input_change(serving: Sequence[str], new: Sequence[str]) -> str | None:
    """Why a version whose features are ``new`` cannot replace one whose features are
    ``serving`` in a running scorer, or ``None`` when it can.

    A hot swap must keep the input contract: events that give their values by
    position (a JSON list, binary float32) carry no names, so a version of
    another width, or with the same channels in another order, would read them
    as other channels without a sign. A version without channel names (``f0``,
    ``f1``, ... of a file without a header) says nothing about its order, so it
    is compared by width alone (:func:`unnamed_swap` says so).

    >>> input_change(["temp", "rpm"], ["temp", "rpm"]) is None
    True
    >>> input_change(["temp", "rpm"], ["rpm", "temp"])
    'it names its channels rpm, temp where the version in use names temp, rpm'
    >>> input_change(["temp", "rpm"], ["temp", "rpm", "load"])
    'it takes 3 inputs, the version in use 2'
    >>> input_change(["temp", "rpm"], ["f0", "f1"]) is None  # no names: width alone
    True
    >>> input_change([f"c{i}" for i in range(8)], [f"c{i}" for i in range(7)] + ["x"])
    'it names its channels c0, c1, c2, c3, c4, c5 and 2 more where the version in use \
names c0, c1, c2, c3, c4, c5 and 2 more (first difference: x at position 8, not c7)'
    """
    if len(new) != len(serving):
        return f"it takes {len(new)} inputs, the version in use {len(serving)}"
    if list(new) == list(serving) or is_positional(new) or is_positional(serving):
        return None
    reason = f"it names its channels {_names(new)} where the version in use names {_names(serving)}"
    if len(new) > SHOWN_NAMES:
        at = next(i for i, (a, b) in enumerate(zip(new, serving, strict=True)) if a != b)
        reason += f" (first difference: {new[at]} at position {at + 1}, not {serving[at]})"
    return reason


def window_change(serving: Sequence[str], new: Sequence[str]) -> str | None:
    """How the windows a version scores differ from the serving version's, from their
    ``@t-k`` names, or ``None``: scorers started for one window and step refuse another.

    >>> window_change(["v@t-12", "v@t-6", "v@t-0"], ["v@t-2", "v@t-1", "v@t-0"])
    'it scores windows of 3 readings 1 apart, the version in use 3 readings 6 apart; \
restart the scorers with --window 3 to serve it'
    >>> window_change(["v@t-1", "v@t-0"], ["v@t-1", "v@t-0"]) is None
    True
    """
    shapes = [(window_of(names), window_step_of(names)) for names in (serving, new)]
    if shapes[0] == shapes[1] or shapes[0][0] is None and shapes[1][0] is None:
        return None
    (w_old, s_old), (w_new, s_new) = shapes
    old = "single readings" if w_old is None else f"{w_old} readings {s_old or '?'} apart"
    now = "single readings" if w_new is None else f"{w_new} readings {s_new or '?'} apart"
    flags = "without --window" if w_new is None else f"with --window {w_new}" + (
        f" --window-step {s_new}" if s_new and s_new > 1 else "")
    return (f"it scores {'windows of ' if w_new else ''}{now}, the version in use "
            f"{'windows of ' if w_old and not w_new else ''}{old}; restart the scorers "
            f"{flags} to serve it")


def unnamed_swap(serving: Sequence[str], new: Sequence[str]) -> bool:
    """Whether a swap :func:`input_change` allows cannot check the channel order: one
    of the two versions names no channels.

    >>> unnamed_swap(["temp", "rpm"], ["f0", "f1"]), unnamed_swap(["f0"], ["f0"])
    (True, False)
    """
    return list(new) != list(serving) and (is_positional(new) or is_positional(serving))


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(names[:SHOWN_NAMES])
    more = len(names) - SHOWN_NAMES
    return f"{shown} and {more} more" if more > 0 else shown


def describe(exc: BaseException) -> str:
    """One line naming an error: its type and its first line.

    >>> describe(UnicodeDecodeError("utf-8", b"\\xff", 0, 1, "invalid start byte"))
    "UnicodeDecodeError: 'utf-8' codec can't decode byte 0xff in position 0: invalid start byte"
    >>> describe(KeyError())
    'KeyError'
    """
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__


class ModelWatcher:
    """Load each new current version of ``name`` for the scorer to swap in.

    Parameters
    ----------
    registry : ModelRegistry
        The store and the Redis pointer. Its client is used for reads; the
        watcher opens its own pub/sub connection from the same pool settings.
    name : str
        The model name to follow.
    serving : str
        The version the scorer serves at start.
    channels : sequence of str
        The serving version's channels (its ``feature_names``): a new version must
        name the same, in the same order (:func:`input_change`).
    poll_s : float
        Longest time between two reads of the pointer.
    device : str
        Where new versions are loaded.
    on_refused : callable, optional
        Called with ``(version, reason)`` when a new version cannot be used.
    on_error : callable, optional
        Called with the exception each time a check fails (then retried).
    clock : callable
        Monotonic time of :meth:`status` (the :class:`~seismo.stream.io.health.Health` clock).
    fits : callable, optional
        Why a new version does not fit the scorer's settings (its window and step), or
        ``None``: such a version is refused.
    """

    def __init__(
        self,
        registry: ModelRegistry,
        name: str,
        *,
        serving: str,
        channels: Sequence[str],
        poll_s: float,
        device: str = "cpu",
        on_refused: Callable[[str, str], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        fits: Callable[[Artifact], str | None] | None = None,
    ) -> None:
        self.registry = registry
        self.name = name
        self.channels = list(channels)
        self.poll_s = poll_s
        self.device = device
        self.on_refused = on_refused
        self.fits = fits
        self.on_error = on_error
        self.clock = clock
        self.errors = 0
        self._failures = 0  # in a row
        self._last_error: str | None = None
        self._failing_since: float | None = None
        self._last_ok_at: float | None = None
        self._redis_down_since: float | None = None  # checks fail for Redis itself since
        self._seen = serving
        self._serving = serving  # the version the scorer serves (set again by take)
        self._ready: Artifact | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"model-watch-{name}", daemon=True)

    def start(self) -> ModelWatcher:
        """Start the background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread: it exits within :data:`STOP_CHECK_S` of a wait, or when the
        check under way (a Redis call, a model being loaded) returns."""
        self._stop.set()
        self._thread.join(timeout=STOP_CHECK_S + 10)

    def take(self) -> Artifact | None:
        """The newest loaded version not yet taken, or ``None``."""
        with self._lock:
            ready, self._ready = self._ready, None
            if ready is not None:
                self._serving = ready.version
                if not is_positional(ready.feature_names):  # the last names known count
                    self.channels = list(ready.feature_names)
        return ready

    def status(self) -> WatcherStatus:
        """Whether the thread lives, its errors and its last good check (for ``/health``)."""
        with self._lock:
            return WatcherStatus(
                alive=self._thread.is_alive(), stopping=self._stop.is_set(), errors=self.errors,
                last_error=self._last_error, failing_since=self._failing_since,
                last_ok_at=self._last_ok_at, poll_s=self.poll_s,
                redis_down_since=self._redis_down_since,
            )  # fmt: skip

    def check_now(self) -> None:
        """Read the pointer once and load a new version if there is one (also used by tests).

        A version that cannot be used (unknown, fails verification, other
        channels) is refused once and never tried again; any other error, a
        store that cannot be read (``OSError``) included, is raised, and the
        version is tried again at the next check.
        """
        version = self.registry.current(self.name)
        if version is None or version == self._seen:
            return
        with self._lock:  # atomic with take(): the serving version cannot change meanwhile
            if version == self._serving:  # back to what serves (a rollback after a refusal)
                self._ready = None  # a version loaded since and not taken yet: not current
                self._seen = version
                return
        try:
            artifact = self.registry.verify(self.name, version, device=self.device)
        except (RegistryError, ArtifactError) as exc:
            if isinstance(exc.__cause__, OSError):
                raise  # the store did not answer: not the version's fault
            self._seen = version
            self._refuse(version, str(exc))
            return
        if self.registry.current(self.name) != version:
            return  # the pointer moved while it loaded: the next check takes the new one
        self._seen = version
        unfit = None if self.fits is None else self.fits(artifact)
        if unfit is not None:
            self._refuse(version, f"{unfit} (a scorer's --window and --window-step are set "
                         "at start)")  # fmt: skip
            return
        change = input_change(self.channels, artifact.feature_names)
        if change is not None:
            self._refuse(version, f"{change}; to serve it, restart the scorers on it once the "
                         "producers send values in its order (or by name)")  # fmt: skip
            return
        if unnamed_swap(self.channels, artifact.feature_names):
            log.warning("model %s version %s: one of it and the version in use names no "
                        "channels, so their order cannot be compared; swapping in on the "
                        "width alone", self.name, version)  # fmt: skip
        with self._lock:
            self._ready = artifact
        log.info("model %s version %s loaded, swapping in at the next batch", self.name, version)

    def _refuse(self, version: str, reason: str) -> None:
        with self._lock:
            self._ready = None  # one loaded before and not taken yet is not current either
        log.error("not swapping to %s version %s: %s", self.name, version, reason)
        if self.on_refused is not None:
            self.on_refused(version, reason)

    def _loop(self) -> None:
        channel = events_channel(self.registry.prefix, self.name)
        pubsub: redis.client.PubSub | None = None
        while not self._stop.is_set():
            try:
                if pubsub is None:
                    pubsub = self.registry.client.pubsub(ignore_subscribe_messages=True)
                    pubsub.subscribe(channel)
                self.check_now()
                self._succeeded()
                self._wait_for_news(pubsub)
            except Exception as exc:  # noqa: BLE001 - the thread must outlive any one error
                delay = self._failed(exc)
                _close(pubsub)
                pubsub = None
                self._stop.wait(delay)
        _close(pubsub)

    def _wait_for_news(self, pubsub: redis.client.PubSub) -> None:
        """Until a notification arrives, ``poll_s`` has passed or :meth:`stop` was called:
        in slices of :data:`STOP_CHECK_S`, so stopping never waits for a whole poll."""
        deadline = time.monotonic() + self.poll_s
        while not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0 or pubsub.get_message(timeout=min(left, STOP_CHECK_S)) is not None:
                return

    def _succeeded(self) -> None:
        with self._lock:
            failures, self._failures = self._failures, 0
            self._failing_since, self._last_ok_at = None, self.clock()
            self._redis_down_since = None
        if failures:
            log.info("model watcher of %s reads the pointer again after %d failed checks",
                     self.name, failures)  # fmt: skip

    def _failed(self, exc: Exception) -> float:
        """Record, log and count one failed check; the wait before the next."""
        with self._lock:
            self.errors += 1
            self._failures += 1
            self._last_error = describe(exc)
            if not isinstance(exc, redis.RedisError):
                self._redis_down_since = None
            elif self._redis_down_since is None:
                self._redis_down_since = self.clock()
            if self._failing_since is None:
                self._failing_since = self.clock()
            failures = self._failures
        delay = retry_delay_s(failures, self.poll_s)
        # The traceback of an unexpected error once per run of failures, one line after.
        trace = failures == 1 and not isinstance(exc, redis.RedisError)
        log.warning("model watcher of %s: check failed (%s), retrying in %.1f s", self.name,
                    self._last_error, delay, exc_info=trace)  # fmt: skip
        if self.on_error is not None:
            try:
                self.on_error(exc)
            except Exception:  # noqa: BLE001 - a failing counter must not end the thread
                log.exception("on_error of the model watcher failed")
        return delay


def _close(pubsub: redis.client.PubSub | None) -> None:
    if pubsub is not None:
        try:
            pubsub.close()
        except Exception:  # noqa: BLE001, S110 - closing a broken connection may fail any way
            pass
