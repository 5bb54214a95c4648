"""``seismo benchmark-nab`` refuses bad rule settings in one line, before any work."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from seismo.stream.cli.app import app
from seismo.stream.errors import ConfigError


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--level-clip", "-1", "level_clip must be >= 0"),
    ("--level-tolerance", "-1", "level_tolerance >= 0"),
    ("--k", "0", "k must be positive"),
])  # fmt: skip
def test_a_bad_rule_setting_is_one_error_before_any_work(tmp_path, flag, value, message):
    result = CliRunner().invoke(app, ["benchmark-nab", "--data-dir", str(tmp_path / "none"),
                                      "--results-dir", str(tmp_path / "out"), flag, value])
    assert isinstance(result.exception, ConfigError), result.output
    assert message in str(result.exception)
    assert not (tmp_path / "out").exists()
