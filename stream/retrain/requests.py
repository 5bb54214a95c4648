"""Retrain requests and the retrainer's lease, in Redis.

Keys (``prefix`` as in :mod:`seismo.stream.io.redis_stats`)::

    {prefix}:retrain:{name}:request    string: JSON {"reason", "by", "kind", "at"} (pending)
    {prefix}:retrain:{name}:cooldown   string with expiry: a drift request was made recently
    {prefix}:retrain:{name}:lease      string with expiry: id of the active retrainer

A scorer that sees drift calls :func:`request_retrain` with a cool-down: the
first caller sets the cool-down key (``SET NX EX``) and the request; the
others, and the same scorer again, find the cool-down key and ask nothing, so
several scorers ask only once. The retrainer takes the request atomically
(:func:`take_request`), so it is served once.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis

#: KEYS[1] = request key. Returns the value and deletes it, atomically.
TAKE_LUA = """
local v = redis.call('GET', KEYS[1])
if v then redis.call('DEL', KEYS[1]) end
return v
"""

#: KEYS[1] = lease; ARGV = owner id, ttl ms. Takes a free lease or renews its own; 1 or 0.
LEASE_LUA = """
local owner = redis.call('GET', KEYS[1])
if owner == false or owner == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

#: KEYS[1] = lease; ARGV[1] = owner id. Frees the lease only if we hold it.
RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def request_key(prefix: str, name: str) -> str:
    """The key of a pending retrain request of model ``name``.

    >>> request_key("seismo", "pumps")
    'seismo:retrain:pumps:request'
    """
    return f"{prefix}:retrain:{name}:request"


def cooldown_key(prefix: str, name: str) -> str:
    """The key that marks a recent drift request of ``name``."""
    return f"{prefix}:retrain:{name}:cooldown"


def lease_key(prefix: str, name: str) -> str:
    """The key naming the retrainer that currently works on ``name``."""
    return f"{prefix}:retrain:{name}:lease"


def request_retrain(
    client: redis.Redis,
    prefix: str,
    name: str,
    *,
    reason: str,
    by: str,
    cooldown_s: float | None = None,
    kind: str = "request",
    version: str | None = None,
) -> bool:
    """Ask the retrainer of ``name`` for a retrain; True if this call made the request.

    ``kind`` (``drift`` from a scorer, ``request`` from a person) labels the
    round in the retrainer's metrics; ``reason`` is free text for its log;
    ``version`` is the model version that drifted (a retrainer skips the request
    once another version is current).

    With ``cooldown_s`` the call is deduplicated: only the first caller within
    the cool-down makes a request.
    """
    if cooldown_s is not None:
        claimed = client.set(
            cooldown_key(prefix, name), by, nx=True, px=max(int(cooldown_s * 1000), 1)
        )
        if not claimed:
            return False
    fields = {"reason": reason, "by": by, "kind": kind, "at": int(time.time() * 1000)}
    body = json.dumps(fields if version is None else {**fields, "version": version})
    client.set(request_key(prefix, name), body)
    return True


def restore_request(client: redis.Redis, prefix: str, name: str, request: dict[str, Any]) -> bool:
    """Put back a request taken for a round that did not finish, unless a newer one is
    pending; True if it was put back."""
    return bool(client.set(request_key(prefix, name), json.dumps(request), nx=True))


def take_request(client: redis.Redis, prefix: str, name: str) -> dict[str, Any] | None:
    """The pending request of ``name``, removed atomically; ``None`` if there is none."""
    raw = client.register_script(TAKE_LUA)(keys=[request_key(prefix, name)])
    if raw is None:
        return None
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    return body if isinstance(body, dict) else {"reason": "request", "by": "unknown"}


class Lease:
    """A lease with expiry: at most one active retrainer per model name.

    ``acquire`` takes the lease when it is free or renews it when this owner
    holds it; a holder that dies loses it after ``ttl_s``.
    """

    def __init__(self, client: redis.Redis, key: str, owner: str, ttl_s: float) -> None:
        self.key, self.owner, self.ttl_ms = key, owner, max(int(ttl_s * 1000), 1)
        self._acquire = client.register_script(LEASE_LUA)
        self._release = client.register_script(RELEASE_LUA)

    def acquire(self) -> bool:
        """Take or renew the lease; False while another owner holds it."""
        return bool(self._acquire(keys=[self.key], args=[self.owner, self.ttl_ms]))

    def release(self) -> None:
        """Give the lease up if this owner holds it."""
        self._release(keys=[self.key], args=[self.owner])
