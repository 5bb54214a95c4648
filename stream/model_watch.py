"""Hot swap: follow a model's registry pointer and load new versions in the background.

A :class:`ModelWatcher` thread listens on the model's events channel
(``{prefix}:model:{name}:events``) and, in case a notification is lost
(pub/sub delivers at most once, and not while disconnected), reads the pointer
every ``poll_s`` seconds: a new version is noticed within ``poll_s`` at the
latest. It loads and verifies the new version (checksum, and the same number
of features as the one serving) off the scoring thread and leaves it in a
one-slot mailbox; the scorer takes it between two batches
(:meth:`ModelWatcher.take`), so no batch is ever scored by two models and no
event is dropped or scored twice by the swap. A version that cannot be used is
logged, counted and skipped; the scorer keeps its current model.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import redis

from models.artifact import Artifact
from stream.errors import RegistryError
from stream.model_store import ModelRegistry
from stream.model_versions import events_channel

log = logging.getLogger(__name__)


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
    n_features : int
        A new version must take this many features.
    poll_s : float
        Longest time between two reads of the pointer.
    device : str
        Where new versions are loaded.
    on_refused : callable, optional
        Called with ``(version, reason)`` when a new version cannot be used.
    """

    def __init__(
        self,
        registry: ModelRegistry,
        name: str,
        *,
        serving: str,
        n_features: int,
        poll_s: float,
        device: str = "cpu",
        on_refused: Callable[[str, str], None] | None = None,
    ) -> None:
        self.registry = registry
        self.name = name
        self.n_features = n_features
        self.poll_s = poll_s
        self.device = device
        self.on_refused = on_refused
        self._seen = serving
        self._ready: Artifact | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"model-watch-{name}", daemon=True)

    def start(self) -> ModelWatcher:
        """Start the background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread (it exits within ``poll_s`` at the latest)."""
        self._stop.set()
        self._thread.join(timeout=self.poll_s + 5)

    def take(self) -> Artifact | None:
        """The newest loaded version not yet taken, or ``None``."""
        with self._lock:
            ready, self._ready = self._ready, None
        return ready

    def check_now(self) -> None:
        """Read the pointer once and load a new version if there is one (also used by tests)."""
        version = self.registry.current(self.name)
        if version is None or version == self._seen:
            return
        self._seen = version
        try:
            artifact = self.registry.verify(self.name, version, device=self.device)
        except RegistryError as exc:
            self._refuse(version, str(exc))
            return
        if artifact.n_features != self.n_features:
            self._refuse(
                version, f"it takes {artifact.n_features} features, the scorer {self.n_features}"
            )
            return
        with self._lock:
            self._ready = artifact
        log.info("model %s version %s loaded, swapping in at the next batch", self.name, version)

    def _refuse(self, version: str, reason: str) -> None:
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
                pubsub.get_message(timeout=self.poll_s)  # wakes early on a notification
            except redis.RedisError as exc:
                log.warning("model pointer of %s unreadable, retrying: %s", self.name, exc)
                _close(pubsub)
                pubsub = None
                self._stop.wait(min(self.poll_s, 5.0))
        _close(pubsub)


def _close(pubsub: redis.client.PubSub | None) -> None:
    if pubsub is not None:
        try:
            pubsub.close()
        except redis.RedisError:
            pass
