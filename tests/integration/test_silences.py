"""``seismo silence add|list|remove`` against the real Redis, and what the app reads."""

from __future__ import annotations

import json

import pytest

from seismo.stream.incidents.silences import SilenceCache, add_silence, list_silences, silences_key
from tests.pipes import run_seismo

pytestmark = pytest.mark.redis


def test_the_cli_adds_lists_and_removes_windows(redis_url, redis_client, redis_key_prefix):
    prefix = redis_key_prefix.rstrip(":")
    common = ["--redis-url", redis_url, "--redis-prefix", prefix]
    added = run_seismo("silence", "add", "--device", "pump-*", "--reason", "seal swap",
                       "--duration", "2h", *common, timeout=60)  # fmt: skip
    assert added.returncode == 0, added.stderr
    silence_id = added.stdout.split()[0]
    listed = run_seismo("silence", "list", "--json", *common, timeout=60)
    windows = json.loads(listed.stdout)
    assert [(w["id"], w["pattern"], w["reason"]) for w in windows] == [
        (silence_id, "pump-*", "seal swap")]  # fmt: skip
    assert windows[0]["ends_at"] - windows[0]["starts_at"] == 7_200_000
    cache = SilenceCache(lambda: list_silences(redis_client, prefix))
    now = windows[0]["starts_at"] + 1
    assert cache.reason_for("pump-4", now) == "seal swap" and cache.reason_for("fan-1", now) is None
    assert run_seismo("silence", "remove", silence_id, *common, timeout=60).returncode == 0
    assert list_silences(redis_client, prefix) == []
    again = run_seismo("silence", "remove", silence_id, *common, timeout=60)
    assert again.returncode == 1 and "no silence with id" in again.stderr
    bad = run_seismo("silence", "add", "--device", "x", "--reason", "r", "--duration", "soon",
                     *common, timeout=60)  # fmt: skip
    assert bad.returncode == 1 and bad.stderr.strip().startswith("seismo: error: --duration")


def test_expired_windows_are_dropped_and_redis_loss_keeps_the_last_known(
    redis_client, redis_key_prefix
):
    prefix = redis_key_prefix.rstrip(":")
    add_silence(redis_client, prefix, "old", "done", 1, now_ms=0)
    kept = add_silence(redis_client, prefix, "fan-*", "swap", 3600)
    assert [s.id for s in list_silences(redis_client, prefix)] == [kept.id]
    assert redis_client.hlen(silences_key(prefix)) == 1, "the expired one was deleted"

    calls = []

    def read():
        calls.append(1)
        if len(calls) > 1:
            import redis

            raise redis.ConnectionError("gone")
        return list_silences(redis_client, prefix)

    clock = [0.0]
    cache = SilenceCache(read, ttl_s=5, clock=lambda: clock[0])
    assert cache.reason_for("fan-9", kept.starts_at + 1) == "swap"
    clock[0] = 10.0  # due again; Redis now fails
    assert cache.reason_for("fan-9", kept.starts_at + 1) == "swap" and len(calls) == 2
