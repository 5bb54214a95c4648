"""Maintenance windows: devices (or shell-style patterns) whose incidents are muted.

Stored in one Redis hash, ``{prefix}:silences``, id -> JSON ``{id, pattern,
reason, starts_at, ends_at, created_at}`` (epoch ms). ``seismo silence``
edits it; the incidents app reads it (cached for a few seconds) and marks the
incidents of a matching device ``silenced`` with the reason, and ``seismo
notify`` delivers nothing for them.

Examples
--------
>>> s = Silence("s1", "pump-*", "maintenance", starts_at=0, ends_at=1000, created_at=0)
>>> s.matches("pump-7", now_ms=500), s.matches("pump-7", now_ms=1000), s.matches("fan-1", 500)
(True, False, False)
>>> active_silence([s], "pump-2", 10).reason
'maintenance'
"""

from __future__ import annotations

import fnmatch
import re
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

import orjson
import redis

from seismo.stream.errors import ConfigError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def silences_key(prefix: str) -> str:
    """The Redis hash of the windows.

    >>> silences_key("seismo")
    'seismo:silences'
    """
    return f"{prefix}:silences"


def parse_duration(text: str) -> float:
    """Seconds in ``90``, ``90s``, ``15m``, ``2h`` or ``1d``.

    >>> parse_duration("2h"), parse_duration("90"), parse_duration("1.5m")
    (7200.0, 90.0, 90.0)
    >>> parse_duration("soon")
    Traceback (most recent call last):
    ...
    seismo.stream.errors.ConfigError: --duration expects a number with s, m, h or d (e.g. 2h), ...
    """
    match = _DURATION.match(text)
    if not match or float(match.group(1)) <= 0:
        raise ConfigError(
            f"--duration expects a number with s, m, h or d (e.g. 2h), got {text!r}"
        )
    return float(match.group(1)) * _UNIT_S[match.group(2)]


@dataclass(frozen=True)
class Silence:
    """One maintenance window."""

    id: str
    pattern: str
    reason: str
    starts_at: int
    ends_at: int
    created_at: int

    def matches(self, device_id: str, now_ms: int) -> bool:
        """Whether this window mutes ``device_id`` at ``now_ms``."""
        in_force = self.starts_at <= now_ms < self.ends_at
        return in_force and fnmatch.fnmatchcase(device_id, self.pattern)


def active_silence(silences: Iterable[Silence], device_id: str, now_ms: int) -> Silence | None:
    """The first window that mutes ``device_id`` now, or ``None``."""
    return next((s for s in silences if s.matches(device_id, now_ms)), None)


def _now_ms() -> int:
    return int(time.time() * 1000)


def add_silence(
    client: redis.Redis, prefix: str, pattern: str, reason: str, duration_s: float,
    now_ms: int | None = None,
) -> Silence:  # fmt: skip
    """Store a window from now for ``duration_s``; return it."""
    if not pattern.strip() or not reason.strip():
        raise ConfigError("a silence needs a device pattern (--device) and a reason (--reason)")
    now = _now_ms() if now_ms is None else now_ms
    silence = Silence(uuid.uuid4().hex[:8], pattern, reason, now, now + int(duration_s * 1000), now)
    client.hset(silences_key(prefix), silence.id, orjson.dumps(asdict(silence)))
    return silence


def list_silences(client: redis.Redis, prefix: str, now_ms: int | None = None) -> list[Silence]:
    """Windows not yet over, soonest end first; expired ones are deleted on the way."""
    now = _now_ms() if now_ms is None else now_ms
    key = silences_key(prefix)
    found, expired = [], []
    for raw_id, raw in client.hgetall(key).items():
        try:
            silence = Silence(**orjson.loads(raw))
        except (orjson.JSONDecodeError, TypeError):
            expired.append(raw_id)  # unreadable: nobody can act on it
            continue
        if silence.ends_at <= now:
            expired.append(raw_id)
        else:
            found.append(silence)
    if expired:
        client.hdel(key, *expired)
    return sorted(found, key=lambda s: s.ends_at)


def remove_silence(client: redis.Redis, prefix: str, silence_id: str) -> bool:
    """Delete one window; ``False`` if there was none with that id."""
    return bool(client.hdel(silences_key(prefix), silence_id))


class SilenceCache:
    """The windows in force, read from Redis at most every ``ttl_s`` seconds.

    When Redis cannot be read the last known windows stay in force (a
    maintenance window must not lapse because Redis blinked).
    """

    def __init__(
        self, read: Callable[[], list[Silence]], ttl_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self._read, self._ttl_s, self._clock = read, ttl_s, clock
        self._silences: list[Silence] = []
        self._read_at: float | None = None

    def silences(self) -> list[Silence]:
        now = self._clock()
        if self._read_at is None or now - self._read_at >= self._ttl_s:
            try:
                self._silences = self._read()
            except redis.RedisError:
                pass
            self._read_at = now
        return self._silences

    def reason_for(self, device_id: str, now_ms: int) -> str | None:
        """The reason ``device_id`` is muted now, or ``None``."""
        silence = active_silence(self.silences(), device_id, now_ms)
        return None if silence is None else silence.reason
