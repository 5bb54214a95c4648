"""The settings reference (``docs/settings.md``), written from the settings classes.

One source for every setting: the pydantic ``Field`` (default, description)
and the command's flags. ``python -m seismo.stream.cli.reference
docs/settings.md`` rewrites the tables between the ``settings:begin`` and
``settings:end`` markers; a test checks that the file is current and that
every flag of a command is one of its settings.

>>> from pydantic import Field
>>> from pydantic_settings import BaseSettings
>>> class Demo(BaseSettings):
...     linger_ms: int = Field(50, description="Longest wait for a batch (ms).")
>>> print(settings_table(Demo, {"linger_ms": ["--linger-ms"]}))
| Setting | Flag | Environment variable | Default | Meaning |
| --- | --- | --- | --- | --- |
| `linger_ms` | `--linger-ms` | `SEISMO_LINGER_MS` | `50` | Longest wait for a batch (ms). |
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

from seismo.stream.config.base import ENV_PREFIX

BEGIN, END = "<!-- settings:begin -->", "<!-- settings:end -->"


def shown_default(value: Any) -> str:
    """A default as the table shows it.

    >>> shown_default(None), shown_default(0.5), shown_default({}), shown_default(True)
    ('none', '`0.5`', '`{}`', '`true`')
    """
    if value is None:
        return "none"
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, bool):
        value = str(value).lower()
    elif isinstance(value, Path):
        value = str(value)
    elif isinstance(value, dict | list | tuple):
        value = str(value).replace("'", '"')
    return f"`{value}`"


def settings_table(cls: type[BaseSettings], flags: Mapping[str, Sequence[str]]) -> str:
    """A markdown table of ``cls``'s fields: flags, environment variable, default, meaning."""
    rows = ["| Setting | Flag | Environment variable | Default | Meaning |",
            "| --- | --- | --- | --- | --- |"]  # fmt: skip
    for name, field in cls.model_fields.items():
        if field.default is not PydanticUndefined:
            default = shown_default(field.default)
        elif field.default_factory is not None:
            default = shown_default(field.default_factory())  # type: ignore[call-arg]
        else:
            default = "required"
        flag = ", ".join(f"`{f}`" for f in flags.get(name, ())) or "(config file, env)"
        meaning = (field.description or "").replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `{name}` | {flag} | `{ENV_PREFIX}{name.upper()}` | {default} | {meaning} |")
    return "\n".join(rows)


def command_flags(command: Any) -> dict[str, list[str]]:
    """A click command's options by parameter name: ``{"linger_ms": ["--linger-ms"]}``."""
    out: dict[str, list[str]] = {}
    for param in command.params:
        opts = [*param.opts, *param.secondary_opts]
        if param.name and any(o.startswith("-") for o in opts):
            out[param.name] = [o for o in opts if o.startswith("-")]
    return out


def reference() -> str:
    """Every command's settings table, as ``docs/settings.md`` holds them."""
    import typer

    from seismo.stream.cli.app import app
    from seismo.stream.config.loader import SETTINGS_CLASSES

    group = typer.main.get_command(app)
    commands = dict(zip(("score", "retrain", "incidents", "notify"), SETTINGS_CLASSES, strict=True))
    parts = []
    for name, cls in commands.items():
        flags = command_flags(group.commands[name])  # type: ignore[attr-defined]
        parts.append(f"### `seismo {name}` ({cls.__name__})\n\n{settings_table(cls, flags)}")
    return "\n\n".join(parts)


def rewrite(text: str, tables: str) -> str:
    """``text`` with the block between the markers replaced by ``tables``.

    >>> rewrite("a\\n<!-- settings:begin -->\\nold\\n<!-- settings:end -->\\nb", "new")
    'a\\n<!-- settings:begin -->\\nnew\\n<!-- settings:end -->\\nb'
    """
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise ValueError(f"no {BEGIN} ... {END} block")
    return pattern.sub(lambda _m: f"{BEGIN}\n{tables}\n{END}", text, count=1)


def main(argv: Sequence[str]) -> None:
    """Rewrite the settings tables of the markdown file ``argv[0]``."""
    path = Path(argv[0])
    path.write_text(rewrite(path.read_text(), reference()))


if __name__ == "__main__":
    main(sys.argv[1:])
