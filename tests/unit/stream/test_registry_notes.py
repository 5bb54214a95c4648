"""The notes of ``seismo models publish|promote|rollback`` (pure, no services)."""

from __future__ import annotations

import logging

import pytest

from seismo.stream.registry.commands import _channels, swap_note


def test_a_note_names_a_reordering_and_a_change_of_windows() -> None:
    reordered = swap_note("pumps", "v1", ["a", "b"], "v2", ["b", "a"])
    assert reordered is not None and reordered.startswith(
        "scorers serving pumps version v1 will not swap to v2: it names its channels b, a "
        "where the version in use names a, b; to serve it, restart them on it once the "
        "producers send values in its order"
    )
    spaced = swap_note("pumps", "v1", ["a@t-2", "a@t-1", "a@t-0"], "v2",
                       ["a@t-12", "a@t-6", "a@t-0"])  # fmt: skip
    assert spaced == (
        "scorers serving pumps version v1 will not swap to v2: it scores windows of 3 "
        "readings 6 apart, the version in use 3 readings 1 apart; restart the scorers with "
        "--window 3 --window-step 6 to serve it"
    )
    assert swap_note("pumps", "v1", ["a", "b"], "v2", ["f0", "f1"]) is None  # width alone
    assert swap_note("pumps", None, None, "v2", ["a"]) is None  # the first version


class _Unreadable:
    def channels(self, name: str, version: str) -> list[str] | None:
        raise ConnectionError("the store did not answer")


def test_a_note_that_cannot_be_made_never_fails_the_command(caplog) -> None:
    """The pointer has moved (or will): an error while reading a version's channels for
    the note is a WARNING, never the command's exit status (a reviewer's finding)."""
    with caplog.at_level(logging.WARNING, logger="seismo.stream.registry.commands"):
        assert _channels(_Unreadable(), "pumps", "v1") is None  # type: ignore[arg-type]
    assert "cannot read the channels of pumps version v1 to compare them" in caplog.text
    assert _channels(_Unreadable(), "pumps", None) is None  # type: ignore[arg-type]


@pytest.mark.parametrize("names", [["a@t-1", "a@t-0"], ["f0", "f1"]])
def test_no_note_when_nothing_changes(names: list[str]) -> None:
    assert swap_note("pumps", "v1", names, "v2", list(names)) is None
