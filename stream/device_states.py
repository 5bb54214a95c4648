"""The per-device rule's states in Redis, cached in memory for the partitions owned.

Each device's :class:`~stream.device_rule.DeviceState` is one string at
``{prefix}:device:{model_name}:{device_id}`` (a small JSON document). A
device's readings come from one partition, so one scorer at a time judges it
and writes its state: no merge is needed, unlike the model-wide statistics.
The scorer reads the states of devices it has not seen since its partitions
were assigned (one ``MGET`` per batch), keeps them in memory, and writes the
states a batch changed after the batch's output is confirmed and before its
offsets are committed. A scorer that takes a partition over (a restart, a
rebalance) therefore continues each device's statistics where they were.

Redis errors never stop scoring: a state that cannot be read starts from the
model's calibration (the device is judged as new), and states that cannot be
written stay pending and are written with the next batch (or dropped at a
revocation, when the partition's new owner becomes the writer).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import redis

from stream.device_rule import DeviceState

log = logging.getLogger(__name__)


def device_key(prefix: str, model_name: str, device_id: str) -> str:
    """Where a device's state lives.

    >>> device_key("seismo", "pumps", "pump-7")
    'seismo:device:pumps:pump-7'
    """
    return f"{prefix}:device:{model_name}:{device_id}"


class DeviceStates:
    """Read-through cache of device states, written back in batches.

    Parameters
    ----------
    client : redis.Redis
    prefix, model_name : str
        Key namespace (see :func:`device_key`).
    ttl_s : int or None
        A state not written for this long expires (a device that went away);
        ``None`` keeps states forever.
    """

    def __init__(
        self, client: redis.Redis, prefix: str, model_name: str, ttl_s: int | None = None
    ) -> None:
        self.client, self.prefix, self.model_name, self.ttl_s = client, prefix, model_name, ttl_s
        self.errors = 0
        self._cache: dict[str, DeviceState] = {}
        self._pending: set[str] = set()

    def __len__(self) -> int:
        """Devices held in memory."""
        return len(self._cache)

    @property
    def pending(self) -> int:
        """Devices whose latest state is not in Redis yet."""
        return len(self._pending)

    def load(self, device_ids: Iterable[str]) -> dict[str, DeviceState | None]:
        """The states of ``device_ids``; ``None`` for a device Redis has never seen
        (or could not be read: counted in :attr:`errors`)."""
        wanted = list(dict.fromkeys(device_ids))
        missing = [d for d in wanted if d not in self._cache]
        if missing:
            try:
                raw = self.client.mget([device_key(self.prefix, self.model_name, d)
                                        for d in missing])  # fmt: skip
            except redis.RedisError as exc:
                self.errors += 1
                log.warning("Redis read of %d device states failed (they start from the "
                            "calibration): %s", len(missing), exc)  # fmt: skip
                raw = [None] * len(missing)
            for device, data in zip(missing, raw, strict=True):
                if data is not None:
                    self._cache[device] = DeviceState.from_bytes(data)
        return {d: self._cache.get(d) for d in wanted}

    def put(self, device_id: str, state: DeviceState) -> None:
        """Hold a device's new state; :meth:`save` writes it."""
        self._cache[device_id] = state
        self._pending.add(device_id)

    def save(self) -> bool:
        """Write every pending state in one pipeline; False (kept pending) on a Redis error."""
        if not self._pending:
            return True
        try:
            with self.client.pipeline(transaction=False) as pipe:
                for device in self._pending:
                    key = device_key(self.prefix, self.model_name, device)
                    pipe.set(key, self._cache[device].to_bytes(), ex=self.ttl_s)
                pipe.execute()
        except redis.RedisError as exc:
            self.errors += 1
            log.warning("Redis write of %d device states failed (kept for the next batch): %s",
                        len(self._pending), exc)  # fmt: skip
            return False
        self._pending.clear()
        return True

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
