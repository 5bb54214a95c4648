"""Shared rolling score statistics in Redis, merged atomically by a Lua script.

Every scorer of a consumer group reads the same hash before judging a batch
and merges the batch's (count, mean, M2) into it afterwards. The merge runs
server-side in one Lua script, so concurrent merges from several scorers never
lose an update; its arithmetic is :meth:`seismo.stream.scoring.stats.RunningStats.merge`
(the tests compare the two).

The hash lives at ``{prefix}:stats:{model_name}:{model_version}:{space}``:
statistics of one model version (or score space) never judge another's scores.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable

import redis

from seismo.stream.errors import ServiceError
from seismo.stream.scoring.stats import RunningStats
from seismo.stream.scoring.threshold import ThresholdSource

log = logging.getLogger(__name__)

#: (writer, sequence): a scorer's id and the number of one of its merges.
MergeNumber = tuple[str, int]

#: KEYS[1] = hash; ARGV = count, mean, m2, window ("" = no cap), writer, seq.
#: Refuses non-finite or negative input with an error reply. A stored state that is
#: not finite (NaN, Inf, unreadable) is treated as missing: the batch starts it again.
#: A writer ("" = none) numbers its merges; the hash keeps its highest number in the
#: field ``merged:{writer}``, and a merge numbered at or below it is not applied again
#: (a merge whose reply timed out may still run when Redis comes back; its retry, or
#: the late copy, is then a no-op).
#: Returns the merged {count, mean, m2} as strings with 17 significant digits,
#: "1" as a fourth element when the stored state had to be repaired ("0" otherwise)
#: and "1" as a fifth when the merge had been applied before ("0" otherwise).
MERGE_LUA = """
local function finite(x) return x ~= nil and x == x and x ~= math.huge and x ~= -math.huge end
local n2 = tonumber(ARGV[1])
local mean2 = tonumber(ARGV[2])
local m2b = tonumber(ARGV[3])
if not (finite(n2) and finite(mean2) and finite(m2b)) or n2 < 0 or m2b < 0 then
  return redis.error_reply('seismo: refusing non-finite statistics')
end
local s = redis.call('HMGET', KEYS[1], 'count', 'mean', 'm2')
local n1 = tonumber(s[1] or '0')
local mean1 = tonumber(s[2] or '0')
local m2a = tonumber(s[3] or '0')
local repaired = '0'
if not (finite(n1) and finite(mean1) and finite(m2a)) or n1 < 0 or m2a < 0 then
  n1, mean1, m2a, repaired = 0, 0, 0, '1'
end
local field, seq, again = nil, nil, '0'
if ARGV[5] ~= nil and ARGV[5] ~= '' then
  field, seq = 'merged:' .. ARGV[5], tonumber(ARGV[6])
  if not finite(seq) then return redis.error_reply('seismo: merge number is not a number') end
  local done = tonumber(redis.call('HGET', KEYS[1], field) or '0') or 0
  if seq <= done then
    n2, again, field = 0, '1', nil
  end
end
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
             string.format('%.17g', m2), repaired, again}
if repaired == '1' and n <= 0 then
  redis.call('DEL', KEYS[1])
else
  redis.call('HSET', KEYS[1], 'count', out[1], 'mean', out[2], 'm2', out[3])
  if field ~= nil then redis.call('HSET', KEYS[1], field, string.format('%d', seq)) end
end
return out
"""


#: KEYS[1] = hash. Deletes it if (still) not usable, so the next reader finds it missing
#: rather than repairing it again; returns 1 if it did.
REPAIR_LUA = """
local function finite(x) return x ~= nil and x == x and x ~= math.huge and x ~= -math.huge end
local s = redis.call('HMGET', KEYS[1], 'count', 'mean', 'm2')
if s[1] == false then return 0 end
local n, mean, m2 = tonumber(s[1]), tonumber(s[2] or '0'), tonumber(s[3] or '0')
if finite(n) and finite(mean) and finite(m2) and n >= 0 and m2 >= 0 then return 0 end
redis.call('DEL', KEYS[1])
return 1
"""


def stats_key(prefix: str, model_name: str, model_version: str, space: str) -> str:
    """The Redis key of a model version's statistics in a score space.

    >>> stats_key("seismo", "pumps", "dense-20261123T000000-abcd1234", "log")
    'seismo:stats:pumps:dense-20261123T000000-abcd1234:log'
    """
    return f"{prefix}:stats:{model_name}:{model_version}:{space}"


def connect(url: str, timeout_s: float = 5.0) -> redis.Redis:
    """Open a Redis client from a URL (``redis://``, ``rediss://``, password allowed).

    Raises :class:`~seismo.stream.errors.ServiceError` (without the password) when the
    server does not answer PING.
    """
    client = redis.Redis.from_url(
        url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
    )
    try:
        client.ping()
    except redis.RedisError as exc:
        where = redact_url(url)
        raise ServiceError(f"Redis at {where} is unreachable: {exc}") from exc
    return client


def redact_url(url: str) -> str:
    """Hide a password in a Redis URL.

    >>> redact_url("redis://user:s3cret@db:6379/0")
    'redis://user:***@db:6379/0'
    >>> redact_url("redis://127.0.0.1:6379")
    'redis://127.0.0.1:6379'
    >>> redact_url("redis://db:6379/0?password=s3cret&db=1")
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
        Effective memory in scores (see :mod:`seismo.stream.scoring.stats`); ``None`` = no cap.
    """

    def __init__(self, client: redis.Redis, key: str, window: float | None) -> None:
        self.client = client
        self.key = key
        self.window = window
        #: Stored states found unusable (NaN, Inf, unreadable) and started again.
        self.repairs = 0
        #: Numbered merges sent again that Redis had applied already (not applied twice).
        self.duplicates = 0
        self._merge = client.register_script(MERGE_LUA)
        self._repair = client.register_script(REPAIR_LUA)

    def read(self) -> RunningStats:
        """The current state (all zeros when the key does not exist yet).

        A stored state that is not usable (NaN, Inf, not a number) reads as
        missing, so the threshold falls back to the model's calibration until
        new scores have been merged; it is deleted (by whichever reader or
        merge finds it first) and counted in :attr:`repairs`.
        """
        count, mean, m2 = self.client.hmget(self.key, ["count", "mean", "m2"])
        if count is None:
            return RunningStats()
        try:
            stats = RunningStats(float(count), float(mean or 0.0), float(m2 or 0.0))
        except ValueError:
            stats = RunningStats(float("nan"))
        if not stats.usable:
            if self._repair(keys=[self.key]):
                self._repaired(stats)
            return RunningStats()
        return stats

    def merge(self, batch: RunningStats, number: MergeNumber | None = None) -> RunningStats:
        """Merge a batch's statistics atomically; return the new shared state.

        With a ``number`` (writer, sequence), a merge already applied under that
        number or a later one of the same writer is not applied again (counted
        in :attr:`duplicates`): sending it once more after a timeout is safe.
        Raises ``ValueError`` for a batch that is not usable (never sent).
        """
        if not batch.usable:
            raise ValueError(f"refusing to merge non-finite statistics {batch}")
        window = "" if self.window is None else repr(float(self.window))
        writer, seq = number if number is not None else ("", 0)
        args = [repr(batch.count), repr(batch.mean), repr(batch.m2), window, writer, str(seq)]
        count, mean, m2, repaired, again = self._merge(keys=[self.key], args=args)
        if repaired in (b"1", "1"):
            self._repaired(None)
        if again in (b"1", "1"):
            self.duplicates += 1
            log.info("merge %s:%d of %s had reached Redis before its reply was lost; "
                     "not counted twice", writer, seq, self.key)  # fmt: skip
        return RunningStats(float(count), float(mean), float(m2))

    def _repaired(self, found: RunningStats | None) -> None:
        self.repairs += 1
        log.warning("shared statistics %s were not usable%s: started again from the "
                    "model's calibration", self.key, "" if found is None else f" ({found})")


class SharedStats:
    """The scorer's view of the shared statistics, tolerant of Redis errors.

    A failed read falls back to the last state seen plus this process's
    unmerged scores (source ``"local"``); a failed merge keeps the batch's
    statistics pending and merges them with the next successful call, so no
    update is lost while Redis is away.

    A merge whose reply never came may still have run (a frozen Redis runs it
    when it wakes). It stays *in doubt* and is sent again, alone and under the
    same number, before anything newer: Redis applies a numbered merge once,
    so it is counted exactly once whichever copy arrives first.

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
        self._writer = uuid.uuid4().hex[:16]
        self._sent = 0
        #: The last merge sent whose reply did not come: (its number, its statistics).
        self._in_doubt: tuple[int, RunningStats] | None = None

    @property
    def pending(self) -> RunningStats:
        """This process's scores not (known to be) merged into Redis yet."""
        if self._in_doubt is None:
            return self._pending
        return self._in_doubt[1].merge(self._pending)

    def _failed(self, what: str, exc: redis.RedisError) -> None:
        self.errors += 1
        self._down_until = self._clock() + self.retry_s
        log.warning("Redis %s failed (%d scores pending, next try in %g s): %s",
                    what, self.pending.count, self.retry_s, exc)  # fmt: skip

    def read(self) -> tuple[RunningStats, ThresholdSource]:
        """The current statistics and where they came from (``redis``/``local``)."""
        if self._clock() < self._down_until:
            return self._last.merge(self.pending, self.store.window), "local"
        try:
            self._last = self.store.read()
        except redis.RedisError as exc:
            self._failed("read", exc)
            return self._last.merge(self.pending, self.store.window), "local"
        return self._last.merge(self.pending, self.store.window), "redis"

    def _send(self) -> None:
        """Settle the merge in doubt, then merge what is pending (raises RedisError)."""
        while self._in_doubt is not None or self._pending.count > 0:
            if self._in_doubt is None:
                self._sent += 1
                self._in_doubt, self._pending = (self._sent, self._pending), RunningStats()
            number, stats = self._in_doubt
            self._last = self.store.merge(stats, (self._writer, number))
            self._in_doubt = None

    def flush(self) -> float:
        """One last try to merge what is pending (on shutdown: ignores the pause after a
        failure); the number of scores still not merged (0 when all went)."""
        if self.pending.count <= 0:
            return 0.0
        try:
            self._send()
        except redis.RedisError as exc:
            self.errors += 1
            log.warning("Redis merge failed at shutdown: %d scores of this scorer may never "
                        "reach the shared statistics (%s)", self.pending.count, exc)  # fmt: skip
            return self.pending.count
        return 0.0

    @property
    def repairs(self) -> int:
        """Stored states found unusable and started again (see :meth:`RedisStats.read`)."""
        return self.store.repairs

    def merge(self, batch: RunningStats) -> None:
        """Merge a batch's statistics (and anything pending) into Redis.

        A batch that is not usable (non-finite) is dropped with a warning: it
        must never reach the shared state.
        """
        if not batch.usable:
            log.warning("non-finite batch statistics not merged: %s", batch)
            return
        self._pending = self._pending.merge(batch)
        if self.pending.count <= 0 or self._clock() < self._down_until:
            return
        try:
            self._send()
        except redis.RedisError as exc:
            self._failed("merge", exc)
