"""Readers shared by the static checks of the container and deployment files.

No Docker engine and no Kubernetes cluster run in CI: these helpers read
docker-compose.yml, the Dockerfiles and the manifests, find the ``seismo``
commands in them (list-form commands and shell scripts alike) and parse those
with the real CLI, so that an unknown, missing or ill-typed flag fails a test.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import typer
import yaml
from prometheus_client.metrics import MetricWrapperBase

from seismo.stream.cli import app as cli
from seismo.stream.config.loader import load_retrain_settings, load_settings
from seismo.stream.config.retrain_settings import RetrainSettings
from seismo.stream.config.settings import ScorerSettings
from seismo.stream.io.metrics import RetrainerMetrics, ScorerMetrics

# The click that typer runs on (newer typers vendor their own copy); re-exported.
try:
    from typer._click import exceptions as click_errors  # noqa: F401
except ImportError:
    from click import exceptions as click_errors  # type: ignore[no-redef]  # noqa: F401

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = ROOT / "docker-compose.yml"
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERFILE_CUDA = DEPLOY / "Dockerfile.cuda"
DOCKERFILES = (DOCKERFILE, DOCKERFILE_CUDA)
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
GRAFANA = DEPLOY / "grafana"
K8S = DEPLOY / "k8s"
DOCKERIGNORE = ROOT / ".dockerignore"

SEISMO = typer.main.get_command(cli.app)  # the real CLI as a click group
SHELLS = {"/bin/sh", "sh", "/bin/bash", "bash"}
SEPARATORS = {";", "&&", "||", "|", "&", "(", ")"}
#: Settings fields of every long-running seismo process, by their env variable.
SETTINGS_ENV = {
    f"SEISMO_{name.upper()}"
    for cls in (ScorerSettings, RetrainSettings)
    for name in cls.model_fields
}


# --- compose interpolation ---------------------------------------------------------

_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?-)(?P<default>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's variable substitution: ``$$``, ``$VAR``, ``${VAR}``, ``${VAR:-d}``, ``${VAR-d}``.

    >>> interpolate("a $$X ${N:-2} ${M-3} ${E:-4} ${E-5}", {"E": ""})
    'a $X 2 3 4 '
    """

    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["named"]
        value = env.get(name)
        if match["op"] == ":-" and not value:
            return match["default"]
        if match["op"] == "-" and value is None:
            return match["default"]
        return value or ""

    out = _INTERPOLATION.sub(replace, text)
    leftover = re.sub(r"\$\$", "", _INTERPOLATION.sub("", text))
    assert "${" not in leftover, f"unsupported interpolation in {leftover!r}"
    return out


def load_compose(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """docker-compose.yml as ``docker compose`` reads it, with ``env`` (default: none set)."""
    return yaml.safe_load(interpolate(COMPOSE.read_text(), env or {}))


# --- Dockerfiles -------------------------------------------------------------------


def dockerfile_stages(text: str) -> list[list[tuple[str, str]]]:
    """Instructions ``(KEYWORD, arguments)`` of each build stage, continuations joined."""
    stages: list[list[tuple[str, str]]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        pending = ""
        if keyword.upper() == "FROM":
            stages.append([])
        stages[-1].append((keyword.upper(), " ".join(args.split())))
    return stages


def read_stages(path: Path) -> list[list[tuple[str, str]]]:
    return dockerfile_stages(path.read_text())


def image_env(stage: list[tuple[str, str]]) -> dict[str, str]:
    """The ``ENV`` variables (``KEY=VALUE`` form) a stage sets."""
    env: dict[str, str] = {}
    for keyword, args in stage:
        if keyword == "ENV":
            for pair in shlex.split(args):
                key, sep, value = pair.partition("=")
                assert sep, f"ENV {args!r}: use the KEY=VALUE form"
                env[key] = value
    return env


def build_args(stage: list[tuple[str, str]]) -> dict[str, str]:
    """The ``ARG`` defaults a stage declares (``ARG X`` without one: empty)."""
    out = {}
    for keyword, args in stage:
        if keyword == "ARG":
            key, _, value = args.partition("=")
            out[key] = shlex.split(value)[0] if value else ""
    return out


def expand_args(text: str, args: Mapping[str, str]) -> str:
    """``${X}``, ``$X`` and ``${X:+word}`` of build args, as the RUN shell would see them."""

    def plus(match: re.Match[str]) -> str:
        return match[2] if args.get(match[1]) else ""

    text = re.sub(r"\$\{(\w+):\+((?:[^{}]|\{[^}]*\})*)\}", plus, text)
    return re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m[1], m[0]), text)


def entrypoint_of(dockerfile: Path) -> list[str]:
    """The final stage's ENTRYPOINT (exec form)."""
    import json

    final = dict(read_stages(dockerfile)[-1])
    return json.loads(final["ENTRYPOINT"])


# --- commands ------------------------------------------------------------------------


def as_argv(value: str | list[Any] | None) -> list[str]:
    """A compose/k8s command: compose splits a string like a shell."""
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def shell_commands(script: str) -> list[list[str]]:
    """The simple commands of a shell script (lines, ``;``, ``&&``, ``|``... split)."""
    commands: list[list[str]] = []
    for line in script.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        current: list[str] = []
        for token in lexer:
            if token in SEPARATORS:
                commands.append(current)
                current = []
            else:
                current.append(token)
        commands.append(current)
    return [c for c in commands if c]


def program_calls(argvs: list[list[str]], program: str) -> list[list[str]]:
    """``[program, args...]`` wherever ``program`` is a word of a command (after
    ``if``, ``exec``, ``until``...)."""
    found = []
    for argv in argvs:
        for i, token in enumerate(argv):
            if token == program or token.endswith("/" + program):
                found.append([program, *argv[i + 1 :]])
                break
    return found


def run_argvs(entrypoint: list[str], command: list[str]) -> list[list[str]]:
    """What a container runs: one argv, or each simple command of a ``sh -c`` script."""
    if entrypoint and entrypoint[0] in SHELLS:
        assert entrypoint[-1] == "-c", entrypoint
        assert len(command) == 1, "a `sh -c` command must be a list of one script"
        return shell_commands(command[0])
    return [[*entrypoint, *command]]


def service_dockerfile(service: Mapping[str, Any]) -> Path:
    build = service["build"]
    if isinstance(build, str):
        build = {"context": build}
    return ((ROOT / build["context"]) / build.get("dockerfile", "Dockerfile")).resolve()


def invocations(service: Mapping[str, Any], program: str) -> list[list[str]]:
    """Every ``program ...`` argv a compose service runs, from its entrypoint and command.

    No entrypoint on a service built from one of deploy/'s Dockerfiles means that
    image's ``ENTRYPOINT``; a shell entrypoint runs the one-string command. Of an
    image from elsewhere (kafka, redis...) only the ``command`` is known.
    """
    entrypoint = as_argv(service.get("entrypoint"))
    command = as_argv(service.get("command"))
    if not entrypoint and "build" in service:
        entrypoint = entrypoint_of(service_dockerfile(service))
    return program_calls(run_argvs(entrypoint, command), program)


def only_invocation(service: Mapping[str, Any], program: str) -> list[str]:
    found = invocations(service, program)
    assert len(found) == 1, f"expected one {program} invocation, found {found}"
    return found[0]


def parse_seismo(argv: list[str]) -> Any:
    """Parse (never run) ``seismo CMD [SUB] ...`` with the real CLI into a click context.

    Unknown, missing or ill-typed flags raise ``click_errors.UsageError``.
    """
    assert argv[0] == "seismo", argv
    group: Any = SEISMO
    args = argv[1:]
    while True:
        name, *args = args
        command = group.commands.get(name)
        assert command is not None, f"seismo has no command {name!r} ({shlex.join(argv)})"
        if not hasattr(command, "commands"):
            return command.make_context(name, args, resilient_parsing=False)
        group = command


def settings_of(argv: list[str], env: Mapping[str, str]) -> Any:
    """The settings ``seismo score``/``seismo retrain`` would run with: flags, then
    ``env``, then defaults, loaded exactly as the CLI loads them: a
    :class:`ScorerSettings` or a :class:`RetrainSettings`."""
    params = dict(parse_seismo(argv).params)
    assert params.pop("config") is None, "a --config file would need a mount and a check"
    params.pop("once", None)
    params["kafka_config"] = cli.parse_pairs(params["kafka_config"])
    loader = {"score": load_settings, "retrain": load_retrain_settings}[argv[1]]
    return loader(params, env=env)


# --- compose services ------------------------------------------------------------------


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def container_env(service: Mapping[str, Any]) -> dict[str, str]:
    """The image's ``ENV`` and the service's ``environment`` (which wins)."""
    base = image_env(read_stages(service_dockerfile(service))[-1]) if "build" in service else {}
    return {**base, **environment(service)}


def mounts(service: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(source, target)`` of each volume entry, short or long syntax."""
    out = []
    for entry in service.get("volumes", []):
        if isinstance(entry, dict):
            out.append((entry["source"], entry["target"]))
        else:
            source, target, *_ = entry.split(":")
            out.append((source, target))
    return out


def is_bind(source: str) -> bool:
    return source.startswith((".", "/", "~"))


def prometheus_targets(config: Mapping[str, Any]) -> set[tuple[str, int]]:
    """``(host, port)`` of every static or DNS-discovered scrape target."""
    targets = set()
    for job in config["scrape_configs"]:
        for dns in job.get("dns_sd_configs", []):
            targets |= {(name, int(dns["port"])) for name in dns["names"]}
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, _, port = target.rpartition(":")
                targets.add((host, int(port)))
    return targets


# --- metrics ---------------------------------------------------------------------------

_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
}


def exported_metrics() -> dict[str, set[str]]:
    """Every sample name the scorer and the retrainer export -> its label names.

    From the metric objects of :class:`ScorerMetrics` and :class:`RetrainerMetrics`,
    with the suffixes prometheus_client adds (``_total`` of a counter, ``_bucket``
    and ``le`` of a histogram...).
    """
    out: dict[str, set[str]] = {}
    for holder in (ScorerMetrics(), RetrainerMetrics()):
        for metric in vars(holder).values():
            if not isinstance(metric, MetricWrapperBase):
                continue
            kind = str(metric._type)
            for suffix in _SUFFIXES[kind]:
                labels = set(metric._labelnames)
                if suffix == "_bucket":
                    labels.add("le")
                out.setdefault(metric._name + suffix, set()).update(labels)
    return out


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
