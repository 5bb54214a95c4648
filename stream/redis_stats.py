"""Shared rolling score statistics in Redis, merged atomically by a Lua script.

Every scorer of a consumer group reads the same hash before judging a batch
and merges the batch's (count, mean, M2) into it afterwards. The merge runs
server-side in one Lua script, so concurrent merges from several scorers never
lose an update; its arithmetic is :meth:`stream.stats.RunningStats.merge`
(the tests compare the two).

The hash lives at ``{prefix}:stats:{model_name}:{model_version}:{space}``:
statistics of one model version (or score space) never judge another's scores.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

import redis

from stream.errors import ServiceError
from stream.stats import RunningStats
from stream.threshold import ThresholdSource

log = logging.getLogger(__name__)

#: KEYS[1] = hash; ARGV = count, mean, m2, window ("" = no cap).
#: Returns the merged {count, mean, m2} as strings with 17 significant digits.
MERGE_LUA = """
local s = redis.call('HMGET', KEYS[1], 'count', 'mean', 'm2')
local n1 = tonumber(s[1] or '0') or 0
local mean1 = tonumber(s[2] or '0') or 0
local m2a = tonumber(s[3] or '0') or 0
local n2 = tonumber(ARGV[1])
local mean2 = tonumber(ARGV[2])
local m2b = tonumber(ARGV[3])
local n, mean, m2
if n2 <= 0 then
  n, mean, m2 = n1, mean1, m2a
elseif n1 <= 0 then
  n, mean, m2 = n2, mean2, m2b
else
  n = n1 + n2
  local delta = mean2 - mean1
  mean = mean1 + delta * n2 / n
  m2 = m2a + m2b + delta * delta * n1 * n2 / n
end
if ARGV[4] ~= '' then
  local w = tonumber(ARGV[4])
  if n > w then
    m2 = m2 * (w / n)
    n = w
  end
end
local out = {string.format('%.17g', n), string.format('%.17g', mean),
             string.format('%.17g', m2)}
redis.call('HSET', KEYS[1], 'count', out[1], 'mean', out[2], 'm2', out[3])
return out
"""


def stats_key(prefix: str, model_name: str, model_version: str, space: str) -> str:
    """The Redis key of a model version's statistics in a score space.

    >>> stats_key("seismo", "pumps", "dense-20261123T000000-abcd1234", "log")
    'seismo:stats:pumps:dense-20261123T000000-abcd1234:log'
    """
    return f"{prefix}:stats:{model_name}:{model_version}:{space}"


def connect(url: str, timeout_s: float = 5.0) -> redis.Redis:
    """Open a Redis client from a URL (``redis://``, ``rediss://``, password allowed).

    Raises :class:`~stream.errors.ServiceError` (without the password) when the
    server does not answer PING.
    """
    client = redis.Redis.from_url(
        url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
    )
    try:
        client.ping()
    except redis.RedisError as exc:
        where = _redact(url)
        raise ServiceError(f"Redis at {where} is unreachable: {exc}") from exc
    return client


def _redact(url: str) -> str:
    """Hide a password in a Redis URL.

    >>> _redact("redis://user:s3cret@db:6379/0")
    'redis://user:***@db:6379/0'
    >>> _redact("redis://127.0.0.1:6379")
    'redis://127.0.0.1:6379'
    >>> _redact("redis://db:6379/0?password=s3cret&db=1")
    'redis://db:6379/0?password=***&db=1'
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    # redis-py also takes the password from the query string (?password=...).
    rest = re.sub(r"([?&]password=)[^&#]*", r"\1***", rest)
    if "@" not in rest:
        return f"{scheme}://{rest}"
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0] if ":" in creds else ""
    return f"{scheme}://{user}:***@{host}"


class RedisStats:
    """One model version's shared statistics.

    Parameters
    ----------
    client : redis.Redis
        A connected client.
    key : str
        The hash key (see :func:`stats_key`).
    window : float, optional
        Effective memory in scores (see :mod:`stream.stats`); ``None`` = no cap.
    """

    def __init__(self, client: redis.Redis, key: str, window: float | None) -> None:
        self.client = client
        self.key = key
        self.window = window
        self._merge = client.register_script(MERGE_LUA)

    def read(self) -> RunningStats:
        """The current state (all zeros when the key does not exist yet)."""
        count, mean, m2 = self.client.hmget(self.key, ["count", "mean", "m2"])
        if count is None:
            return RunningStats()
        return RunningStats(float(count), float(mean or 0.0), float(m2 or 0.0))

    def merge(self, batch: RunningStats) -> RunningStats:
        """Merge a batch's statistics atomically; return the new shared state."""
        window = "" if self.window is None else repr(float(self.window))
        args = [repr(batch.count), repr(batch.mean), repr(batch.m2), window]
        count, mean, m2 = self._merge(keys=[self.key], args=args)
        return RunningStats(float(count), float(mean), float(m2))


class SharedStats:
    """The scorer's view of the shared statistics, tolerant of Redis errors.

    A failed read falls back to the last state seen plus this process's
    unmerged scores (source ``"local"``); a failed merge keeps the batch's
    statistics pending and merges them with the next successful call, so no
    update is lost while Redis is away.

    After a failure, Redis is left alone for ``retry_s`` seconds: batches in
    between are judged on the local statistics at once instead of each one
    waiting for a timeout, so a hung or unreachable Redis delays a batch by at
    most one call's timeout every ``retry_s``.
    """

    def __init__(
        self, store: RedisStats, retry_s: float = 0.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.store = store
        self.retry_s = retry_s
        self.errors = 0
        self._clock = clock
        self._down_until = float("-inf")
        self._last = RunningStats()
        self._pending = RunningStats()

    @property
    def pending(self) -> RunningStats:
        """This process's scores not merged into Redis yet."""
        return self._pending

    def _failed(self, what: str, exc: redis.RedisError) -> None:
        self.errors += 1
        self._down_until = self._clock() + self.retry_s
        log.warning("Redis %s failed (%d scores pending, next try in %g s): %s",
                    what, self._pending.count, self.retry_s, exc)  # fmt: skip

    def read(self) -> tuple[RunningStats, ThresholdSource]:
        """The current statistics and where they came from (``redis``/``local``)."""
        if self._clock() < self._down_until:
            return self._last.merge(self._pending, self.store.window), "local"
        try:
            self._last = self.store.read()
        except redis.RedisError as exc:
            self._failed("read", exc)
            return self._last.merge(self._pending, self.store.window), "local"
        return self._last.merge(self._pending, self.store.window), "redis"

    def merge(self, batch: RunningStats) -> None:
        """Merge a batch's statistics (and anything pending) into Redis."""
        self._pending = self._pending.merge(batch)
        if self._pending.count <= 0 or self._clock() < self._down_until:
            return
        try:
            self._last = self.store.merge(self._pending)
        except redis.RedisError as exc:
            self._failed("merge", exc)
            return
        self._pending = RunningStats()
