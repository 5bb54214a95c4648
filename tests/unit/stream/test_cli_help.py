"""``seismo --help`` and every command's help: no type noise, text as written, the
settings' real defaults, and ``seismo --version``."""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

from seismo import __version__
from seismo.stream.cli.app import app
from seismo.stream.config.settings import ScorerSettings

RUNNER = CliRunner()
TYPE_NOISE = re.compile(r"<(bool|str|int|float|path|list\[str\])>")


def help_of(*command: str) -> str:
    done = RUNNER.invoke(app, [*command, "--help"], env={"COLUMNS": "100"})
    assert done.exit_code == 0, done.output
    return done.output


def unwrapped(text: str) -> str:
    """Help as one line: click wraps long lines, also after a hyphen."""
    return re.sub(r"(\w)- (\w)", r"\1-\2", " ".join(text.split()))


def every_command() -> list[tuple[str, ...]]:
    root = typer.main.get_command(app)
    out: list[tuple[str, ...]] = []

    def walk(group, path: tuple[str, ...]) -> None:
        for name, sub in group.commands.items():
            out.append((*path, name))
            if hasattr(sub, "commands"):
                walk(sub, (*path, name))

    walk(root, ())
    return out


def test_version_prints_the_installed_version():
    done = RUNNER.invoke(app, ["--version"])
    assert done.exit_code == 0 and done.output == f"seismo {__version__}\n"


@pytest.mark.parametrize("command", every_command(), ids=" ".join)
def test_no_option_or_argument_shows_a_type(command):
    text = help_of(*command)
    assert not TYPE_NOISE.search(text), text
    assert "{" not in text.splitlines()[0], text  # usage as click writes it: TOPIC, not {TOPIC}


def test_an_argument_reads_as_its_name_in_usage_and_help():
    text = help_of("tail")
    assert text.startswith("Usage: seismo tail [OPTIONS] TOPIC\n")
    assert re.search(r"^  TOPIC  Topic to read", text, re.M), text


def test_score_help_keeps_brackets_and_shows_the_settings_defaults():
    text = unwrapped(help_of("score"))
    assert "Model artifact directory [env SEISMO_MODEL]." in text
    assert " ." not in text.replace("...", "")
    fields = ScorerSettings.model_fields
    assert f"--linger-ms INTEGER Longest wait for a batch to fill (ms). [default: " \
           f"{fields['linger_ms'].default}]" in text
    assert f"[default: {fields['input_topic'].default}]" in text
    assert "[default: no-learn-anomalies]" in text
    assert "--scores-topic TEXT Optional per-event scores topic. --dlq-topic" in text  # none


@pytest.mark.parametrize("command", ["score", "evaluate", "retrain", "incidents", "notify"])
def test_no_help_shows_a_default_a_setting_does_not_have(command):
    """Settings with a default factory (``kafka_config``) or none at all (``model_store``
    of retrain) showed ``[default: PydanticUndefined]``."""
    assert "Undefined" not in help_of(command)


def test_evaluate_help_shows_the_scorers_streaming_defaults():
    text = unwrapped(help_of("evaluate"))
    assert "--streaming" in text
    assert f"[default: {ScorerSettings.model_fields['min_samples'].default}]" in text


def test_bracketed_help_of_other_commands_survives():
    text = unwrapped(help_of("benchmark-odds"))
    assert "[default $SEISMO_DATA/odds]" in text and "[default: all 14 sets]" in text


def test_an_option_that_takes_a_value_says_what_kind_and_a_flag_says_nothing():
    """A stranger's finding: ``--events`` and ``--prefetch`` looked alike in help, so
    nothing said which one takes a value."""
    text = unwrapped(help_of("score"))
    for shown in ("--model PATH ", "--max-batch INTEGER ", "--k FLOAT ", "--group-id TEXT ",
                  "--prefetch / --no-prefetch Consume"):  # fmt: skip
        assert shown in text, shown
    assert not TYPE_NOISE.search(text)
