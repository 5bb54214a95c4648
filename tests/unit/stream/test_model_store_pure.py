"""The pure rules of the model registry (:mod:`seismo.stream.registry.model_versions`)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seismo.stream.errors import ConfigError, RegistryError
from seismo.stream.registry.model_versions import (
    StoredVersion,
    check_component,
    choose_prune,
    current_key,
    events_channel,
    history_key,
    newest_first,
    parse_history,
    rollback_target,
)


def test_keys_share_one_namespace_per_name() -> None:
    assert current_key("k-1:", "pumps") == "k-1::model:pumps:current"
    assert history_key("seismo", "pumps") == "seismo:model:pumps:history"
    assert events_channel("seismo", "fans") == "seismo:model:fans:events"


@pytest.mark.parametrize("bad", ["", ".", "..", ".hidden", "a/b", "a b", "x" * 201, "é"])
def test_unsafe_names_are_refused_in_one_line(bad: str) -> None:
    with pytest.raises(RegistryError) as info:
        check_component(bad, "version")
    assert "\n" not in str(info.value)


def test_parse_history_decodes_and_drops_repeats() -> None:
    assert parse_history([b"v2", b"v1", b"v2", "", b"v0"]) == ["v2", "v1", "v0"]
    assert parse_history([]) == []


def test_rollback_target_is_the_version_after_current() -> None:
    assert rollback_target(["v3", "v2", "v1"], "v3") == "v2"
    assert rollback_target(["v3", "v2", "v1"], "v2") == "v1"


@pytest.mark.parametrize(
    ("history", "current", "reason"),
    [
        ([], None, "no current version"),
        (["v1"], "v1", "oldest"),
        (["v2", "v1"], "v9", "not in the history"),
    ],
)
def test_rollback_target_refuses(history: list[str], current: str | None, reason: str) -> None:
    with pytest.raises(RegistryError, match=reason):
        rollback_target(history, current)


def test_newest_first_orders_by_arrival_then_creation() -> None:
    versions = [
        StoredVersion("old", "2026-01-01T00:00:00+00:00", 1),
        StoredVersion("tie-a", "2026-01-01T00:00:00+00:00", 7),
        StoredVersion("tie-b", "2026-02-01T00:00:00+00:00", 7),
        StoredVersion("new", "2025-01-01T00:00:00+00:00", 9),
    ]
    assert [v.version for v in newest_first(versions)] == ["new", "tie-b", "tie-a", "old"]


def test_choose_prune_keeps_the_newest_and_the_current() -> None:
    newest = ["v5", "v4", "v3", "v2", "v1"]
    assert choose_prune(newest, 2, [None]) == ["v3", "v2", "v1"]
    assert choose_prune(newest, 2, ["v1"]) == ["v3", "v2"]
    assert choose_prune(newest, 5, ["v5"]) == []
    with pytest.raises(ConfigError):
        choose_prune(newest, 0, [])


@given(
    n=st.integers(0, 12),
    keep=st.integers(1, 15),
    protected=st.lists(st.integers(0, 14), max_size=3),
)
def test_choose_prune_properties(n: int, keep: int, protected: list[int]) -> None:
    newest = [f"v{i}" for i in range(n)]
    spared = [f"v{i}" for i in protected]
    doomed = choose_prune(newest, keep, spared)
    survivors = [v for v in newest if v not in doomed]
    assert not set(doomed) & set(spared)
    assert newest[:keep] == survivors[: min(keep, n)]
    assert len(survivors) <= keep + len(set(spared))
    assert doomed == [v for v in newest if v in doomed]  # order of newest kept
