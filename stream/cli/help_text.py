"""Help that says what each option does: no type noise, the real defaults, text as written.

Typer's default help renders every option's help as Rich markup (so
``[env SEISMO_MODEL]`` vanished, leaving "Model artifact directory .") and
shows a type beside each option (``<bool>`` even on a flag). :class:`SeismoGroup`
turns both off for every command and subcommand: help text is printed as
written, and an option shows its name, what it takes (``INTEGER``, ``PATH``...;
nothing for a flag, see :func:`placeholder`), its help and its default.

The options of a command with a settings class (``score``, ``retrain``...)
default to ``None`` so that the settings decide (flag, then environment,
then config file, then the setting's own default). :class:`SettingsCommand`
shows that last default in the help, read from the settings ``Field`` when
the help is asked for (the settings classes are not imported otherwise).
"""

from __future__ import annotations

from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import SecretStr
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption


def plain_help(command: Any) -> None:
    """Help text as written, without a type column, for ``command`` and all below it."""
    if hasattr(command, "rich_markup_mode"):
        command.rich_markup_mode = None
    for param in command.params:
        if isinstance(param, TyperOption) and param.metavar is None:
            param.metavar = placeholder(param)
        elif isinstance(param, TyperArgument):
            _plain_argument(param)
    for sub in getattr(command, "commands", {}).values():
        plain_help(sub)


def placeholder(option: Any) -> str:
    """What an option takes, as its help shows it: nothing for a flag, else the kind of
    value its annotation declares (see :func:`kind_of`).
    """
    if option.is_flag or option.count:
        return ""
    descriptor = getattr(option, "type_descriptor", None)  # typer 0.2x keeps the annotation
    if descriptor is not None:
        return kind_of(getattr(descriptor, "annotation", str))
    click_type = getattr(option, "type", None)  # earlier typer: a click option
    choices = getattr(click_type, "choices", None)
    if choices:
        return _choices(choices)
    name = str(getattr(click_type, "name", "text")).upper()
    return {"INTEGER RANGE": "INTEGER", "FLOAT RANGE": "FLOAT"}.get(name, name)


def kind_of(annotation: Any) -> str:
    """``INTEGER``, ``FLOAT``, ``PATH``, the choices of a ``Literal``, else ``TEXT``.

    >>> from pathlib import Path
    >>> from typing import Literal
    >>> [kind_of(a) for a in (int, float | None, Path | None, Literal["a", "b"], list[str], str)]
    ['INTEGER', 'FLOAT', 'PATH', '[a|b]', 'TEXT', 'TEXT']
    """
    if get_origin(annotation) is Literal:
        return _choices(get_args(annotation))
    inner = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) in (Union, UnionType) and len(inner) == 1:
        return kind_of(inner[0])
    return {int: "INTEGER", float: "FLOAT", Path: "PATH"}.get(annotation, "TEXT")


def _choices(values: Any) -> str:
    """``[a|b]``: the values an option takes, as click shows a choice."""
    return "[" + "|".join(str(v) for v in values) + "]"


def _plain_argument(param: Any) -> None:
    """``TOPIC`` in usage and help, as click writes it.

    Typer writes ``{TOPIC}`` in the usage line and ``TOPIC <str>`` in the help.
    """
    if param.metavar is None and param.name:
        param.metavar = param.name.upper()
    name = param.metavar or ""
    param.display_type_rich = lambda ctx: ""
    param.get_usage_pieces = lambda ctx: [name if param.required else f"[{name}]"]


class SeismoGroup(TyperGroup):
    """The ``seismo`` group: every command's help plain (see :func:`plain_help`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        plain_help(self)


def shown(value: Any) -> str | None:
    """A setting's default as help shows it; ``None`` when there is nothing to show.

    >>> shown(50), shown(None), shown({}), shown(SecretStr("redis://r:6379/0"))
    ('50', None, None, 'redis://r:6379/0')
    """
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if value is None or value == {} or value == [] or value == "":
        return None
    return str(value)


def settings_class(command: str) -> Any:
    """The settings class whose defaults ``command``'s ``None`` options stand for."""
    from seismo.stream.config.incident_settings import IncidentSettings, NotifySettings
    from seismo.stream.config.retrain_settings import RetrainSettings
    from seismo.stream.config.settings import ScorerSettings

    return {
        "score": ScorerSettings, "evaluate": ScorerSettings, "retrain": RetrainSettings,
        "incidents": IncidentSettings, "notify": NotifySettings,
    }.get(command)  # fmt: skip


def show_setting_defaults(command: Any, cls: Any) -> None:
    """Append ``[default: X]`` to the help of each option left to a setting of ``cls``."""
    fields = getattr(cls, "model_fields", {})
    for param in command.params:
        field = fields.get(param.name)
        if not isinstance(param, TyperOption) or param.default is not None or field is None:
            continue
        if field.is_required():  # no default to show (the setting must be given)
            continue
        value = shown(field.get_default(call_default_factory=True))
        if value is None or "[default" in (param.help or ""):
            continue
        if isinstance(field.default, bool) and param.secondary_opts:  # a flag pair
            value = (param.opts if field.default else param.secondary_opts)[0].lstrip("-")
        param.help = f"{param.help or ''}  [default: {value}]"


class SettingsCommand(TyperCommand):
    """A command whose ``None`` options show their setting's default in ``--help``."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        cls = settings_class(self.name or "")
        if cls is not None:
            show_setting_defaults(self, cls)
        super().format_help(ctx, formatter)
