"""The state file of ``seismo dev up``: which servers run where, and how to reach them.

``seismo dev up`` writes it once its broker and Redis answer and its topics
exist; ``seismo dev status`` reads it, ``seismo dev down`` stops what it names
and deletes it. It is JSON, written atomically. Its default place,
:func:`default_state_file`, is ``$XDG_RUNTIME_DIR/seismo/dev.json`` (a directory
the system empties at logout, as fits PIDs), else ``~/.cache/seismo/dev.json``.

Examples
--------
>>> state = DevState(
...     bootstrap_servers="127.0.0.1:40123", redis_url="redis://127.0.0.1:40124/0",
...     topics={"sensor-events": 4, "anomalies": 4}, servers=[], owner=None,
... )
>>> DevState.from_json(state.to_json()) == state
True
>>> print("\\n".join(state.exports()))
export SEISMO_BOOTSTRAP_SERVERS=127.0.0.1:40123
export SEISMO_REDIS_URL=redis://127.0.0.1:40124/0
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from seismo.stream.errors import ServiceError
from seismo.stream.local.detached import Detached

__all__ = ["DevState", "default_state_file", "export_lines"]

#: Version of the file's layout; a file of another version is refused, not misread.
FORMAT = 1
#: What an exported variable's name may be (``export_lines`` writes names unquoted).
_SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def default_state_file(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_RUNTIME_DIR/seismo/dev.json`` when that variable is set, else ``~/.cache/...``.

    >>> default_state_file({"XDG_RUNTIME_DIR": "/run/user/1000"})
    PosixPath('/run/user/1000/seismo/dev.json')
    >>> default_state_file({"HOME": "/home/ada"}).parts[-3:]
    ('.cache', 'seismo', 'dev.json')
    """
    env = os.environ if environ is None else environ
    runtime = env.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "seismo" / "dev.json"
    home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    return home / ".cache" / "seismo" / "dev.json"


def export_lines(variables: Mapping[str, str]) -> list[str]:
    """``export NAME=VALUE`` lines a POSIX shell can ``eval``, values quoted where needed.

    >>> export_lines({"SEISMO_INPUT_TOPIC": "my events", "SEISMO_ALERTS_TOPIC": "alerts"})
    ["export SEISMO_INPUT_TOPIC='my events'", 'export SEISMO_ALERTS_TOPIC=alerts']
    """
    bad = [name for name in variables if not _SHELL_NAME.fullmatch(name)]
    if bad:  # a name is written unquoted: eval would run whatever it held
        raise ValueError(f"not a shell variable name: {bad[0]!r}")
    return [f"export {name}={shlex.quote(value)}" for name, value in variables.items()]


@dataclass(frozen=True)
class DevState:
    """What ``seismo dev up`` started.

    Attributes
    ----------
    bootstrap_servers, redis_url : str
        Where the broker and Redis listen.
    topics : dict of str to int
        The topics created, with their partition counts.
    servers : list of Detached
        The broker and Redis processes.
    owner : Detached or None
        The ``seismo dev up`` process that stops them on Ctrl-C; ``None``
        with ``--detach`` (nothing owns them, ``seismo dev down`` stops them).
    settings : dict of str to str
        ``SEISMO_*`` variables to export besides the two addresses (topic
        names that differ from the scorer's defaults).
    """

    bootstrap_servers: str
    redis_url: str
    topics: dict[str, int]
    servers: list[Detached]
    owner: Detached | None
    settings: dict[str, str] = field(default_factory=dict)

    def environment(self) -> dict[str, str]:
        """The ``SEISMO_*`` variables that point seismo's commands at this stack."""
        return {"SEISMO_BOOTSTRAP_SERVERS": self.bootstrap_servers,
                "SEISMO_REDIS_URL": self.redis_url, **self.settings}  # fmt: skip

    def exports(self) -> list[str]:
        """:meth:`environment` as ``export`` lines."""
        return export_lines(self.environment())

    def to_json(self) -> str:
        """The file's content."""
        return json.dumps({"format": FORMAT, **asdict(self)}, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> DevState:
        """Read a file's content; raise ``ValueError`` (or ``KeyError``...) if it is not one."""
        data: dict[str, Any] = json.loads(text)
        if data.get("format") != FORMAT:
            raise ValueError(f"format {data.get('format')!r}, expected {FORMAT}")
        owner = data["owner"]
        state = cls(
            bootstrap_servers=str(data["bootstrap_servers"]), redis_url=str(data["redis_url"]),
            topics={str(k): int(v) for k, v in data["topics"].items()},
            servers=[Detached(**s) for s in data["servers"]],
            owner=None if owner is None else Detached(**owner),
            settings={str(k): str(v) for k, v in data.get("settings", {}).items()},
        )  # fmt: skip
        return state

    def write(self, path: Path) -> None:
        """Write the file atomically (a reader sees the old content or the new, whole).

        Raises
        ------
        ServiceError
            It cannot be written (one line).
        """
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(self.to_json())
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise ServiceError(f"cannot write the dev state file {path}: {exc}") from exc

    @classmethod
    def read(cls, path: Path) -> DevState:
        """Read the file.

        Raises
        ------
        ServiceError
            One line: no file (nothing was started, or it was stopped), or not a state file.
        """
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise ServiceError(
                f"no dev stack: {path} does not exist (start one with `seismo dev up`)"
            ) from None
        except OSError as exc:
            raise ServiceError(f"cannot read the dev state file {path}: {exc}") from exc
        try:
            return cls.from_json(text)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ServiceError(f"{path} is not a seismo dev state file ({exc})") from None
