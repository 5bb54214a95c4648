"""One source for every setting: each flag is a setting, and docs/settings.md is current."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from seismo.stream.cli.app import app
from seismo.stream.cli.reference import command_flags, reference, rewrite
from seismo.stream.config.loader import SETTINGS_CLASSES

DOC = Path(__file__).resolve().parents[3] / "docs" / "settings.md"
#: Options of a command that are not settings: the config file itself, one-shot modes.
NOT_SETTINGS = {"config", "once"}
COMMANDS = dict(zip(("score", "retrain", "incidents", "notify"), SETTINGS_CLASSES, strict=True))


@pytest.mark.parametrize("name", COMMANDS)
def test_every_flag_is_a_setting_and_every_setting_has_a_flag(name: str) -> None:
    flags = command_flags(typer.main.get_command(app).commands[name])  # type: ignore[attr-defined]
    fields = set(COMMANDS[name].model_fields)
    assert set(flags) - NOT_SETTINGS - fields == set(), "flags that are no setting"
    assert fields - set(flags) == set(), "settings without a flag"


def test_the_settings_reference_is_current() -> None:
    text = DOC.read_text()
    assert rewrite(text, reference()) == text, (
        "docs/settings.md is stale: python -m seismo.stream.cli.reference docs/settings.md"
    )
