"""Static checks of the container files: docker-compose.yml, deploy/Dockerfile,
deploy/prometheus/prometheus.yml and .dockerignore.

No Docker engine runs in CI, so nothing here builds or starts a container. The
files are read and checked against the repository and against seismo itself:
every ``seismo`` command in the compose file is parsed by the real CLI (unknown
or missing flags fail), the scorer's effective settings (flags, then the
image's and the service's ``SEISMO_*`` variables, then defaults) are loaded with
``load_settings``, and its topics and metrics port are compared with what
``init`` creates and what Prometheus scrapes.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from models.artifact import CONFIG_FILE
from stream import cli
from stream.settings import ScorerSettings, load_settings

try:  # the click that typer runs on: newer typers vendor their own copy
    from typer._click import exceptions as click_errors
except ImportError:
    from click import exceptions as click_errors

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
DOCKERIGNORE = ROOT / ".dockerignore"

REQUIRED_SERVICES = {
    "kafka", "redis", "init", "trainer", "publish", "scorer", "retrainer", "prometheus"
}
# Bind mounts the user provides (documented in docker-compose.yml), not in the repo.
USER_PROVIDED = {"./data"}
SEISMO = typer.main.get_command(cli.app)  # the real CLI as a click group
SHELLS = {"/bin/sh", "sh", "/bin/bash", "bash"}
SEPARATORS = {";", "&&", "||", "|", "&", "(", ")"}


# --- readers --------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


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


@pytest.fixture(scope="module")
def stages() -> list[list[tuple[str, str]]]:
    return dockerfile_stages(DOCKERFILE.read_text())


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


def as_argv(value: str | list[Any] | None) -> list[str]:
    """A compose ``command``/``entrypoint``: compose splits a string like a shell."""
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


def invocations(service: dict[str, Any], program: str) -> list[list[str]]:
    """Every ``program ...`` argv the service runs, from its entrypoint and command.

    No entrypoint on a service built from deploy/Dockerfile means the image's
    ``ENTRYPOINT ["seismo"]``; a shell entrypoint runs the one-string command.
    """
    entrypoint = as_argv(service.get("entrypoint"))
    command = as_argv(service.get("command"))
    if not entrypoint:
        assert "build" in service, "only the seismo image's entrypoint is known here"
        argvs = [["seismo", *command]]
    else:
        assert entrypoint[0] in SHELLS and entrypoint[-1] == "-c", entrypoint
        assert len(command) == 1, "a `sh -c` command must be a list of one script"
        argvs = shell_commands(command[0])
    found = []
    for argv in argvs:
        for i, token in enumerate(argv):
            if token == program or token.endswith("/" + program):
                found.append([program, *argv[i + 1 :]])
                break
    return found


def parse_seismo(argv: list[str]) -> Any:
    """Parse (never run) ``seismo CMD ...`` with the real CLI into a click context.

    Unknown, missing or ill-typed flags raise ``click_errors.UsageError``.
    """
    assert argv[0] == "seismo", argv
    name, *args = argv[1:]
    command = SEISMO.commands.get(name)
    assert command is not None, f"seismo has no command {name!r}"
    return command.make_context(name, args, resilient_parsing=False)


def only_invocation(service: dict[str, Any], program: str) -> list[str]:
    found = invocations(service, program)
    assert len(found) == 1, f"expected one {program} invocation, found {found}"
    return found[0]


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def scorer_settings(
    services: dict[str, dict[str, Any]], stages: list[list[tuple[str, str]]]
) -> ScorerSettings:
    """What the scorer container would run with: its flags, the image's and the
    service's environment, then defaults, exactly as ``seismo score`` loads them."""
    params = dict(parse_seismo(only_invocation(services["scorer"], "seismo")).params)
    assert params.pop("config") is None, "a --config file would need a mount and a check"
    params["kafka_config"] = cli.parse_pairs(params["kafka_config"])
    env = {**image_env(stages[-1]), **environment(services["scorer"])}
    return load_settings(params, env=env)


def init_topics(services: dict[str, dict[str, Any]]) -> dict[str, int]:
    """Topic -> partitions created by the ``init`` service."""
    topics = {}
    for argv in invocations(services["init"], "kafka-topics.sh"):
        assert "--create" in argv, argv
        topic = argv[argv.index("--topic") + 1]
        topics[topic] = int(argv[argv.index("--partitions") + 1])
    return topics


def mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
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


# --- compose: structure and paths -----------------------------------------------


def test_required_services_are_present(services: dict[str, dict[str, Any]]) -> None:
    assert REQUIRED_SERVICES <= services.keys()


def test_build_context_and_dockerfile_exist(services: dict[str, dict[str, Any]]) -> None:
    built = {name: s["build"] for name, s in services.items() if "build" in s}
    assert {"trainer", "scorer"} <= built.keys()
    for name, build in built.items():
        if isinstance(build, str):
            build = {"context": build}
        context = (ROOT / build["context"]).resolve()
        assert context.is_dir(), f"{name}: build context {context} missing"
        dockerfile = context / build.get("dockerfile", "Dockerfile")
        assert dockerfile.resolve() == DOCKERFILE, f"{name}: builds {dockerfile}"


def test_every_mounted_repo_file_exists(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for source, target in mounts(service):
            if not is_bind(source):
                assert source in declared, f"{name}: named volume {source} not declared"
            elif source not in USER_PROVIDED:
                assert (ROOT / source).exists(), f"{name}: mounts missing {source}"


def test_compose_strings_have_no_accidental_interpolation(compose: dict[str, Any]) -> None:
    """Compose replaces ``$VAR`` itself; a shell variable must be written ``$$VAR``."""

    def strings(node: Any) -> list[str]:
        if isinstance(node, dict):
            return [s for v in node.values() for s in strings(v)]
        if isinstance(node, list):
            return [s for v in node for s in strings(v)]
        return [node] if isinstance(node, str) else []

    for text in strings(compose):
        assert not re.search(r"\$(?![{$])", text.replace("$$", "")), text


def test_dependencies_wait_for_health_and_jobs(services: dict[str, dict[str, Any]]) -> None:
    for name in ("kafka", "redis"):
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    assert services["init"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    wanted = {
        "init": "service_completed_successfully",
        "publish": "service_completed_successfully",
        "redis": "service_healthy",
    }
    for service in ("scorer", "retrainer"):
        depends = services[service]["depends_on"]
        for name, condition in wanted.items():
            assert depends[name]["condition"] == condition, (service, name)
    assert services["publish"]["depends_on"]["trainer"]["condition"] == (
        "service_completed_successfully"
    )


def test_kafka_listeners_are_consistent(services: dict[str, dict[str, Any]]) -> None:
    env = environment(services["kafka"])
    protocols = dict(p.split(":") for p in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    listeners = {item.split("://")[0] for item in env["KAFKA_LISTENERS"].split(",")}
    advertised = dict(item.split("://") for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    assert listeners <= protocols.keys()
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] in listeners - advertised.keys()
    assert advertised.keys() <= listeners
    assert advertised[env["KAFKA_INTER_BROKER_LISTENER_NAME"]] == "kafka:9092"
    # KRaft formats storage with CLUSTER_ID: a base64url UUID (16 bytes).
    assert len(base64.urlsafe_b64decode(env["CLUSTER_ID"] + "==")) == 16


# --- compose: the seismo commands -------------------------------------------------


@pytest.mark.parametrize(
    ("service", "command"),
    [("trainer", "train"), ("scorer", "score"), ("retrainer", "retrain"), ("publish", "models")],
)
def test_seismo_commands_parse_with_the_real_cli(
    services: dict[str, dict[str, Any]], service: str, command: str
) -> None:
    argv = only_invocation(services[service], "seismo")
    assert argv[1] == command
    try:
        parse_seismo(argv)
    except click_errors.UsageError as exc:
        pytest.fail(f"{service}: `{shlex.join(argv)}`: {exc.format_message()}")


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["seismo", "score", "--no-such-flag"], "NoSuchOption"),
        (["seismo", "train", "--out", "/models/x"], "MissingParameter"),
        (["seismo", "score", "--max-batch", "many"], "BadParameter"),
    ],
)
def test_the_cli_check_rejects_bad_commands(argv: list[str], error: str) -> None:
    with pytest.raises(getattr(click_errors, error)):
        parse_seismo(argv)


def test_trainer_writes_what_is_published_to_the_store_the_scorer_and_retrainer_use(
    services: dict[str, dict[str, Any]], stages: list[list[tuple[str, str]]]
) -> None:
    trainer = services["trainer"]
    out = parse_seismo(only_invocation(trainer, "seismo")).params["out"]
    # Train only when the artifact is missing: the check looks for its config file.
    assert f"{out}/{CONFIG_FILE}" in as_argv(trainer["command"])[0]
    publish = only_invocation(services["publish"], "seismo")
    assert publish[:3] == ["seismo", "models", "publish"]
    published = SEISMO.commands["models"].commands["publish"].make_context("publish", publish[3:])
    assert Path(published.params["model"]) == Path(out)
    store = published.params["store"]
    assert scorer_settings(services, stages).model_store == store
    retrain = parse_seismo(only_invocation(services["retrainer"], "seismo")).params
    assert retrain["model_store"] == store
    volume = {target: source for source, target in mounts(trainer)}["/models"]
    for service in ("publish", "scorer", "retrainer"):
        assert (volume, "/models") in mounts(services[service]), service


def test_scorer_topics_are_created_by_init(
    services: dict[str, dict[str, Any]], stages: list[list[tuple[str, str]]]
) -> None:
    settings = scorer_settings(services, stages)
    topics = init_topics(services)
    used = {settings.input_topic, settings.alerts_topic, settings.dlq_topic}
    assert settings.scores_topic is not None
    assert used | {settings.scores_topic} <= topics.keys()
    assert settings.bootstrap_servers == "kafka:9092"
    replicas = services["scorer"].get("deploy", {}).get("replicas", 1)
    assert topics[settings.input_topic] >= replicas, "some scorers would get no partition"


def test_prometheus_scrapes_the_scorer_metrics_port(
    services: dict[str, dict[str, Any]], stages: list[list[tuple[str, str]]]
) -> None:
    settings = scorer_settings(services, stages)
    assert settings.metrics_host == "0.0.0.0"
    config = yaml.safe_load(PROMETHEUS.read_text())
    jobs = config["scrape_configs"]
    assert jobs and all(job.get("job_name") for job in jobs)
    targets = set()
    for job in jobs:
        for dns in job.get("dns_sd_configs", []):
            targets |= {(name, int(dns["port"])) for name in dns["names"]}
        for static in job.get("static_configs", []):
            targets |= {(t.rsplit(":", 1)[0], int(t.rsplit(":", 1)[1])) for t in static["targets"]}
    assert ("scorer", settings.metrics_port) in targets
    mounted = {target: source for source, target in mounts(services["prometheus"])}
    assert (ROOT / mounted["/etc/prometheus/prometheus.yml"]).resolve() == PROMETHEUS


def test_seismo_environment_names_are_settings(
    services: dict[str, dict[str, Any]], stages: list[list[tuple[str, str]]]
) -> None:
    """A misspelt SEISMO_* variable would be ignored silently: catch it here."""
    names = [k for stage in stages for k in image_env(stage)]
    names += [k for s in services.values() for k in environment(s)]
    fields = {f"SEISMO_{name.upper()}" for name in ScorerSettings.model_fields}
    assert {n for n in names if n.startswith("SEISMO_")} <= fields


# --- Dockerfile and .dockerignore ---------------------------------------------------


def test_dockerfile_runs_seismo_as_non_root(stages: list[list[tuple[str, str]]]) -> None:
    assert len(stages) >= 2, "multi-stage build expected"
    assert all(stage[0][1].split()[0] == "python:3.11-slim" for stage in stages)
    final = dict(stages[-1])  # the last of each keyword
    user = final.get("USER", "root").split(":")[0]
    assert user not in {"root", "0"}
    assert json.loads(final["ENTRYPOINT"]) == ["seismo"]
    default_port = ScorerSettings.model_fields["metrics_port"].default
    assert str(default_port) in final["EXPOSE"].split()
    assert image_env(stages[-1])["SEISMO_METRICS_HOST"] == "0.0.0.0"


def test_dockerfile_installs_cpu_torch_before_seismo(stages: list[list[tuple[str, str]]]) -> None:
    runs = [args for stage in stages for keyword, args in stage if keyword == "RUN"]
    torch = next(i for i, r in enumerate(runs) if "torch" in r)
    project = next(i for i, r in enumerate(runs) if re.search(r"pip install \.(\s|$)", r))
    assert "--index-url https://download.pytorch.org/whl/cpu" in runs[torch]
    assert torch < project


def dockerignore_excludes(path: str, patterns: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker's rule: the last pattern matching the path or a parent decides."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for negated, pattern in patterns:
        if any(pattern.match(p) for p in prefixes):
            excluded = not negated
    return excluded


def dockerignore_patterns(text: str) -> list[tuple[bool, re.Pattern[str]]]:
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        glob = line.lstrip("!").strip("/")
        regex = re.escape(glob).replace(r"\*\*/", "(?:.*/)?").replace(r"\*\*", ".*")
        regex = regex.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        regex = re.sub(r"\\\[(.*?)\\\]", r"[\1]", regex)
        out.append((negated, re.compile(regex + r"\Z")))
    return out


def test_dockerignore_keeps_what_the_build_copies(stages: list[list[tuple[str, str]]]) -> None:
    patterns = dockerignore_patterns(DOCKERIGNORE.read_text())
    copies = [a for s in stages for k, a in s if k == "COPY" and not a.startswith("--from")]
    sources = [src for args in copies for src in args.split()[:-1]]
    assert {"pyproject.toml", "README.md", "stream", "models"} <= set(sources)
    for source in sources:
        path = ROOT / source
        files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
        for file in files:
            rel = file.relative_to(ROOT).as_posix()
            if "__pycache__" not in rel:
                assert not dockerignore_excludes(rel, patterns), rel
    for unwanted in (
        ".git/HEAD",
        "tests/conftest.py",
        "data/train.npz",
        "artifacts/model/config.json",
        "seismo.egg-info/PKG-INFO",
        "stream/__pycache__/cli.cpython-311.pyc",
        ".hypothesis/examples/x",
    ):
        assert dockerignore_excludes(unwanted, patterns), unwanted


def _validate_compose(path: Path) -> subprocess.CompletedProcess[str]:
    """Validate a compose file against the compose specification's JSON schema."""
    command = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec"]
    return subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [*command, str(path)], capture_output=True, text=True, timeout=120, check=False
    )


def test_compose_file_follows_the_compose_specification(tmp_path: Path) -> None:
    done = _validate_compose(COMPOSE)
    assert done.returncode == 0, done.stdout + done.stderr
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE.read_text().replace("depends_on:", "depend_on:", 1))
    assert _validate_compose(broken).returncode != 0, "the schema check accepts a misspelt key"
