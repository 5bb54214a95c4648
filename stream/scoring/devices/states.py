"""The per-device rule's states in Redis, cached in memory for the partitions owned.

Each device's :class:`~seismo.stream.scoring.devices.rule.DeviceState` is one string at
``{prefix}:device:{model_name}:{input_topic}:{group}:{device_id}`` (a small
JSON document; the group id is percent-encoded, so no two pipelines share a
key). A device's readings come from one partition, so one scorer at a time
judges it and writes its state: no merge is needed, unlike the model-wide
statistics. The scorer reads the states of devices it does not hold (one
``MGET`` per batch), keeps them in memory, and writes the states a batch
changed after the batch's output is confirmed and before its offsets are
committed. A scorer that takes a partition over (a restart, a rebalance)
therefore continues each device's statistics where they were.

Memory is bounded: at most ``max_devices`` states are held, least recently
used first out, and only once written (an evicted device is read from Redis
again when it next reports). Only while Redis cannot be written do unwritten
states pile up, up to twice the cap; beyond that the oldest are dropped with a
warning (those devices continue from their last written state).

Redis errors never stop scoring, and neither does a state that cannot be
used: one that cannot be read starts from the model's calibration (the
device is judged as new), one that holds NaN, Inf or nulls, or is not a
state at all, is *repaired* the same way (logged and counted), and a state
with non-finite numbers is never written. States that cannot be written stay
pending and are written with the next batch (or dropped at a revocation,
when the partition's new owner becomes the writer).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable
from functools import partial
from itertools import islice
from urllib.parse import quote

import redis

from seismo.stream.io.log_throttle import Throttle
from seismo.stream.scoring.devices.rule import DeviceState

log = logging.getLogger(__name__)


def device_key(prefix: str, model_name: str, topic: str, group: str, device_id: str) -> str:
    """Where a device's state lives: per model, input topic and scoring group.

    >>> device_key("seismo", "pumps", "sensor-events", "seismo-scorer", "pump-7")
    'seismo:device:pumps:sensor-events:seismo-scorer:pump-7'
    >>> device_key("seismo", "pumps", "t", "team:a", "x")
    'seismo:device:pumps:t:team%3Aa:x'
    """
    return f"{prefix}:device:{model_name}:{topic}:{quote(group, safe='')}:{device_id}"


#: Device states (and device windows) held in memory by default: a state takes about
#: 1 KB with four channels, a window of four readings about 0.6 KB; with the scorer's
#: own ~350 MiB, a million distinct ids stay under 600 MiB (docs/reliability.md).
DEFAULT_MAX_DEVICES = 50_000


class DeviceStates:
    """Read-through cache of device states, written back in batches, bounded in size.

    Parameters
    ----------
    client : redis.Redis
    prefix, model_name, topic, group : str
        Key namespace (see :func:`device_key`).
    ttl_s : int or None
        A state not written for this long expires (a device that went away);
        ``None`` keeps states forever.
    max_devices : int
        Most states held in memory (least recently used written and dropped first).
    """

    def __init__(
        self, client: redis.Redis, prefix: str, model_name: str, topic: str, group: str,
        ttl_s: int | None = None, max_devices: int = DEFAULT_MAX_DEVICES,
    ) -> None:  # fmt: skip
        if max_devices < 1:
            raise ValueError(f"max_devices must be at least 1, got {max_devices}")
        self.client, self.ttl_s, self.max_devices = client, ttl_s, max_devices
        self._key = partial(device_key, prefix, model_name, topic, group)
        #: Failed Redis calls, states repaired (unusable, started again), states evicted.
        self.errors = self.repairs = self.evictions = 0
        self._cache: OrderedDict[str, DeviceState] = OrderedDict()
        self._pending: set[str] = set()
        #: devices read this batch and found without a usable state (not read twice)
        self._absent: set[str] = set()
        #: a failing Redis fails every batch: one line per kind and period, with a count
        self._throttle = Throttle()

    def key(self, device_id: str) -> str:
        """The Redis key of a device's state."""
        return self._key(device_id)

    def __len__(self) -> int:
        """Devices held in memory."""
        return len(self._cache)

    @property
    def pending(self) -> int:
        """Devices whose latest state is not in Redis yet."""
        return len(self._pending)

    def load(self, device_ids: Iterable[str]) -> dict[str, DeviceState | None]:
        """The states of ``device_ids``; ``None`` for a device Redis has never seen,
        or whose state could not be read (counted in :attr:`errors`) or used
        (counted in :attr:`repairs`)."""
        wanted = list(dict.fromkeys(device_ids))
        cache = self._cache
        missing = []
        for device in wanted:
            if device in cache:
                cache.move_to_end(device)
            elif device not in self._absent:
                missing.append(device)
        if missing:
            try:
                raw = self.client.mget([self._key(d) for d in missing])
            except redis.RedisError as exc:
                self.errors += 1
                if (held := self._throttle.admit("read")) is not None:
                    log.warning("Redis read of %d device states failed (they start from the "
                                "calibration): %s%s", len(missing), exc,
                                self._throttle.note(held))  # fmt: skip
                raw = [None] * len(missing)
            for device, data in zip(missing, raw, strict=True):
                if data is None or not self._read(device, data):
                    self._absent.add(device)
        return {d: cache.get(d) for d in wanted}

    def _read(self, device: str, data: bytes | str) -> bool:
        try:
            self._cache[device] = DeviceState.from_bytes(data)
        except ValueError as exc:
            self.repairs += 1
            log.warning("device %r: %s in Redis; it starts again from the model's "
                        "calibration", device[:80], exc)  # fmt: skip
            return False
        return True

    def put(self, device_id: str, state: DeviceState) -> None:
        """Hold a device's new state; :meth:`save` writes it."""
        self._cache[device_id] = state
        self._cache.move_to_end(device_id)
        self._pending.add(device_id)
        self._absent.discard(device_id)

    def save(self) -> bool:
        """Write every pending state in one pipeline, then evict beyond the cap.

        Returns False (states kept pending) on a Redis error. A state with
        non-finite numbers is not written: it is dropped (the device starts
        again from the calibration) and counted in :attr:`repairs`.
        """
        ok = self._write()
        self._evict()
        self._absent.clear()
        return ok

    def _write(self) -> bool:
        if not self._pending:
            return True
        docs = {}
        for device in self._pending:
            try:
                docs[device] = self._cache[device].to_bytes()
            except ValueError as exc:
                self.repairs += 1
                del self._cache[device]
                log.warning("device %r: %s; it starts again from the model's calibration",
                            device[:80], exc)  # fmt: skip
        try:
            with self.client.pipeline(transaction=False) as pipe:
                for device, doc in docs.items():
                    pipe.set(self._key(device), doc, ex=self.ttl_s)
                pipe.execute()
        except redis.RedisError as exc:
            self.errors += 1
            self._pending = set(docs)
            if (held := self._throttle.admit("write")) is not None:
                log.warning("Redis write of %d device states failed (kept for the next batch): "
                            "%s%s", len(docs), exc, self._throttle.note(held))  # fmt: skip
            return False
        self._pending.clear()
        return True

    def _evict(self) -> None:
        """Drop the least recently used written states beyond ``max_devices``; unwritten
        ones only beyond twice that (Redis down for long: they are lost, with a warning)."""
        cache, over = self._cache, len(self._cache) - self.max_devices
        if over <= 0:
            return
        for device in list(islice(cache, over + len(self._pending))):
            if over <= 0:
                break
            if device not in self._pending:
                del cache[device]
                over -= 1
                self.evictions += 1
        lost = len(cache) - 2 * self.max_devices
        if lost > 0:
            doomed = [d for d in cache if d in self._pending][:lost]
            for device in doomed:
                del cache[device]
                self._pending.discard(device)
            self.evictions += len(doomed)
            log.warning("%d unwritten device states dropped to stay under 2 x max_devices "
                        "(Redis unwritable): those devices continue from their last written "
                        "state", len(doomed))  # fmt: skip

    def forget(self) -> None:
        """Drop every state held in memory (after a revocation).

        Unwritten states go too: the partitions' new owners write those
        devices now, and an old state written later would overwrite theirs.
        """
        if self._pending:
            log.warning("%d device states could not be written before a revocation: "
                        "their new owners continue from the last ones written",
                        len(self._pending))  # fmt: skip
        self._cache.clear()
        self._pending.clear()
        self._absent.clear()
