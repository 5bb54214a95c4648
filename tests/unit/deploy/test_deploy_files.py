"""Static checks of the container files: docker-compose.yml, deploy/Dockerfile,
deploy/Dockerfile.cuda, deploy/prometheus/prometheus.yml and .dockerignore.

No Docker engine runs in CI, so nothing here builds or starts a container. The
files are read and checked against the repository and against seismo itself:
every ``seismo`` command in the compose file, list-form or inside a shell
script, is parsed by the real CLI (unknown or missing flags fail); the
trainer's script is run by ``/bin/sh`` with a stand-in ``seismo`` to check
which training it picks; the scorers' and the retrainer's effective settings
(flags, then the image's and the service's ``SEISMO_*`` variables, then
defaults) are loaded as the CLI loads them, and their topics and metrics ports
are compared with what ``init`` creates and what Prometheus scrapes.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_support import (
    COMPOSE,
    DOCKERFILE,
    DOCKERFILE_CUDA,
    DOCKERFILES,
    DOCKERIGNORE,
    PROMETHEUS,
    ROOT,
    as_argv,
    build_args,
    click_errors,
    container_env,
    environment,
    expand_args,
    image_env,
    interpolate,
    invocations,
    is_bind,
    load_compose,
    mounts,
    only_invocation,
    parse_seismo,
    prometheus_targets,
    read_stages,
    service_dockerfile,
    settings_of,
)

from seismo.models.artifact import CONFIG_FILE
from seismo.stream.config.retrain_settings import RetrainSettings
from seismo.stream.config.settings import ScorerSettings
from seismo.stream.scoring.codec import decode_event
from seismo.stream.sim.command import write_normal_csv
from seismo.stream.sim.simulation import Simulation, SimulationConfig

REQUIRED_SERVICES = {
    "kafka", "redis", "init", "simulator", "trainer", "publish", "scorer", "scorer-gpu",
    "retrainer", "prometheus", "grafana",
}  # fmt: skip
# Bind mounts the user provides (documented in docker-compose.yml), not in the repo.
USER_PROVIDED = {"./data"}
SCORERS = ("scorer", "scorer-gpu")
LONG_RUNNING = {"score", "retrain", "simulate"}

COMPOSE_DATA = load_compose()
#: Every (service, argv) of a seismo command in the compose file.
SEISMO_CALLS = [
    (name, argv)
    for name, service in COMPOSE_DATA["services"].items()
    for argv in invocations(service, "seismo")
]


# --- readers --------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def service_settings(service: dict[str, Any]) -> Any:
    """What the service's ``seismo score``/``retrain`` would run with in its container."""
    return settings_of(only_invocation(service, "seismo"), container_env(service))


def init_topics(services: dict[str, dict[str, Any]]) -> dict[str, int]:
    """Topic -> partitions created by the ``init`` service."""
    topics = {}
    for argv in invocations(services["init"], "kafka-topics.sh"):
        assert "--create" in argv, argv
        topic = argv[argv.index("--topic") + 1]
        topics[topic] = int(argv[argv.index("--partitions") + 1])
    return topics


def calls(service: str, command: str) -> list[list[str]]:
    return [argv for name, argv in SEISMO_CALLS if name == service and argv[1] == command]


def replicas(service: dict[str, Any]) -> int:
    return int(service.get("deploy", {}).get("replicas", 1))


# --- compose: structure and paths -----------------------------------------------


def test_required_services_are_present(services: dict[str, dict[str, Any]]) -> None:
    assert REQUIRED_SERVICES <= services.keys()


def test_build_context_and_dockerfile_exist(services: dict[str, dict[str, Any]]) -> None:
    built = {name: s for name, s in services.items() if "build" in s}
    assert {"trainer", "simulator", "scorer", "scorer-gpu", "retrainer"} <= built.keys()
    for name, service in built.items():
        build = service["build"]
        context = (ROOT / (build if isinstance(build, str) else build["context"])).resolve()
        assert context == ROOT, f"{name}: build context {context} is not the repository"
        expected = DOCKERFILE_CUDA if name == "scorer-gpu" else DOCKERFILE
        assert service_dockerfile(service) == expected, f"{name}: builds {service['build']}"
    # One tag per Dockerfile: two Dockerfiles must not build the same image name.
    tags = {service["image"]: service_dockerfile(service) for service in built.values()}
    assert len(set(tags.values())) == len(tags) == 2, tags


def test_every_mounted_repo_file_exists(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for source, _target in mounts(service):
            if not is_bind(source):
                assert source in declared, f"{name}: named volume {source} not declared"
            elif source not in USER_PROVIDED:
                assert (ROOT / source).exists(), f"{name}: mounts missing {source}"


def test_compose_strings_have_no_accidental_interpolation() -> None:
    """Compose replaces ``$VAR`` itself; a shell variable must be written ``$$VAR``,
    and a compose variable must have a default: plain ``docker compose up`` sets none."""

    def strings(node: Any) -> list[str]:
        if isinstance(node, dict):
            return [s for v in node.values() for s in strings(v)]
        if isinstance(node, list):
            return [s for v in node for s in strings(v)]
        return [node] if isinstance(node, str) else []

    for text in strings(yaml.safe_load(COMPOSE.read_text())):
        bare = text.replace("$$", "")
        assert not re.search(r"\$(?!\{)", bare), text
        for variable in re.findall(r"\$\{([^}]*)\}", bare):
            assert re.fullmatch(r"[A-Z_]+:-[^}]+", variable), f"${{{variable}}} needs a default"


def test_interpolation_reads_the_environment() -> None:
    """SCORER_REPLICAS=0 leaves only the GPU scorers; the defaults give two CPU ones."""
    assert replicas(load_compose()["services"]["scorer"]) == 2
    assert replicas(load_compose()["services"]["scorer-gpu"]) == 1
    env = {"SCORER_REPLICAS": "0", "SCORER_GPU_REPLICAS": "2"}
    assert replicas(load_compose(env)["services"]["scorer"]) == 0
    assert replicas(load_compose(env)["services"]["scorer-gpu"]) == 2
    assert interpolate("echo $$HOME ${X:-a}", {"X": "b"}) == "echo $HOME b"


def test_dependencies_wait_for_health_and_jobs(services: dict[str, dict[str, Any]]) -> None:
    for name in ("kafka", "redis"):
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    assert services["init"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    wanted = {
        "init": "service_completed_successfully",
        "publish": "service_completed_successfully",
        "redis": "service_healthy",
        "kafka": "service_healthy",
    }
    for service in ("scorer", "scorer-gpu", "retrainer"):
        depends = services[service]["depends_on"]
        for name, condition in wanted.items():
            assert depends[name]["condition"] == condition, (service, name)
    assert services["publish"]["depends_on"]["trainer"]["condition"] == (
        "service_completed_successfully"
    )
    # The simulator writes to topics that only init creates (no auto-creation).
    assert services["simulator"]["depends_on"]["init"]["condition"] == (
        "service_completed_successfully"
    )
    assert environment(services["kafka"])["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert "prometheus" in services["grafana"]["depends_on"]


def test_long_running_services_restart(services: dict[str, dict[str, Any]]) -> None:
    for name, argv in SEISMO_CALLS:
        if argv[1] in LONG_RUNNING and not parse_seismo(argv).params.get("write_normal"):
            assert services[name].get("restart") == "unless-stopped", name
    for name in ("kafka", "redis", "prometheus", "grafana"):
        assert services[name].get("restart") == "unless-stopped", name
    for job in ("init", "trainer", "publish"):
        assert "restart" not in services[job], f"{job} is a one-off job"


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


def test_every_seismo_command_is_found() -> None:
    """The finder sees the list-form commands and those inside the shell scripts."""
    found = sorted((name, argv[1]) for name, argv in SEISMO_CALLS)
    assert found == sorted(
        [
            ("simulator", "simulate"),
            ("trainer", "train"),  # ./data/train.npz
            ("trainer", "train"),  # ./data/train.csv
            ("trainer", "simulate"),  # --write-normal
            ("trainer", "train"),  # the simulated normal readings
            ("publish", "models"),
            ("scorer", "score"),
            ("scorer-gpu", "score"),
            ("retrainer", "retrain"),
            ("incidents", "incidents"),
        ]
    )


@pytest.mark.parametrize(
    ("service", "argv"), SEISMO_CALLS, ids=[f"{s}-{a[1]}" for s, a in SEISMO_CALLS]
)
def test_seismo_commands_parse_with_the_real_cli(service: str, argv: list[str]) -> None:
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
        (["seismo", "simulate", "--device", "20"], "NoSuchOption"),
        (["seismo", "models", "publish", "--model", "/m"], "MissingParameter"),
    ],
)
def test_the_cli_check_rejects_bad_commands(argv: list[str], error: str) -> None:
    with pytest.raises(getattr(click_errors, error)):
        parse_seismo(argv)


def test_trainer_writes_what_is_published_to_the_store_the_scorers_and_retrainer_use(
    services: dict[str, dict[str, Any]],
) -> None:
    trainer = services["trainer"]
    trainings = [parse_seismo(argv).params for argv in calls("trainer", "train")]
    outs = {params["out"] for params in trainings}
    assert len(outs) == 1, f"every training must write the same artifact: {outs}"
    out = outs.pop()
    # Train only when the artifact is missing: the check looks for its config file.
    assert f"{out}/{CONFIG_FILE}" in as_argv(trainer["command"])[0]
    publish = only_invocation(services["publish"], "seismo")
    assert publish[:3] == ["seismo", "models", "publish"]
    published = parse_seismo(publish).params
    assert Path(published["model"]) == Path(out)
    store = published["store"]
    for name in (*SCORERS, "retrainer"):
        settings = service_settings(services[name])
        assert settings.model_store == store, name
        # The scorers and the retrainer serve the name the trainer gives the model.
        assert {params["name"] for params in trainings} == {settings.model_name}, name
    volume = {target: source for source, target in mounts(trainer)}["/models"]
    for service in ("publish", *SCORERS, "retrainer"):
        assert (volume, "/models") in mounts(services[service]), service


def run_trainer_script(
    services: dict[str, dict[str, Any]], tmp_path: Path, fail: str = ""
) -> tuple[int, list[list[str]]]:
    """Run the trainer's script with /sh, /models and /data under ``tmp_path`` and a
    stand-in ``seismo`` that logs its arguments; the return code and the calls."""
    script = as_argv(services["trainer"]["command"])[0]
    script = re.sub(r"(?<![\w.])/(models|data)\b", lambda m: f"{tmp_path}/{m[1]}", script)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / "calls.log"
    fake = bin_dir / "seismo"
    fake.write_text(
        f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{log}"\nif [ "$1" = "{fail}" ]; then exit 3; fi\n'
    )
    fake.chmod(0o755)
    entrypoint = as_argv(services["trainer"]["entrypoint"])
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        [*entrypoint, script], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    lines = log.read_text().splitlines() if log.exists() else []
    return done.returncode, [["seismo", *shlex.split(line)] for line in lines]


def test_trainer_script_trains_on_simulated_data_when_no_file_is_given(
    services: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "data").mkdir()
    rc, ran = run_trainer_script(services, tmp_path)
    assert rc == 0
    assert [argv[1] for argv in ran] == ["simulate", "train"]
    simulate, train = (parse_seismo(argv).params for argv in ran)
    assert simulate["write_normal"] == train["data"]
    assert str(train["data"]).startswith(str(tmp_path / "models"))
    assert train["arch"] == "dense" and train["hidden"] == "16,2" and train["epochs"] == 40


@pytest.mark.parametrize(
    ("provided", "used"),
    [
        ({"train.npz"}, "train.npz"),
        ({"train.csv"}, "train.csv"),
        ({"train.npz", "train.csv"}, "train.npz"),
    ],
)
def test_trainer_script_prefers_the_users_data(
    services: dict[str, dict[str, Any]], tmp_path: Path, provided: set[str], used: str
) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "data").mkdir()
    for name in provided:
        (tmp_path / "data" / name).write_text("x")
    rc, ran = run_trainer_script(services, tmp_path)
    assert rc == 0
    assert len(ran) == 1 and ran[0][1] == "train", ran
    assert parse_seismo(ran[0]).params["data"] == tmp_path / "data" / used


def test_trainer_script_keeps_an_existing_artifact_and_stops_on_failure(
    services: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    (tmp_path / "models" / "current").mkdir(parents=True)
    (tmp_path / "models" / "current" / CONFIG_FILE).write_text("{}")
    assert run_trainer_script(services, tmp_path) == (0, [])
    (tmp_path / "models" / "current" / CONFIG_FILE).unlink()
    rc, ran = run_trainer_script(services, tmp_path, fail="simulate")
    assert rc != 0, "a failed simulation must fail the trainer (and so `publish`)"
    assert [argv[1] for argv in ran] == ["simulate"]


def simulation_config(params: dict[str, Any]) -> SimulationConfig:
    return SimulationConfig(
        devices=params["devices"], day_ticks=params["day_ticks"], seed=params["seed"],
        drift_at_tick=params["drift_at"],
    )  # fmt: skip


def test_simulator_streams_the_fleet_the_trainer_learns(
    services: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    (streaming,) = (parse_seismo(argv).params for argv in calls("simulator", "simulate"))
    (warmup,) = (parse_seismo(argv).params for argv in calls("trainer", "simulate"))
    assert streaming["write_normal"] is None, "the simulator service publishes to Kafka"
    assert warmup["write_normal"] is not None
    assert streaming["devices"] == 20 and streaming["rate"] == 200
    assert streaming["duration"] == 0, "the simulator runs until stopped"
    for option in ("devices", "seed", "day_ticks", "drift_at"):
        assert streaming[option] == warmup[option], option
    trained = [parse_seismo(a).params for a in calls("trainer", "train")]
    assert warmup["write_normal"] in {params["data"] for params in trained}
    # The trained model's width (the CSV's columns) fits the simulator's events.
    csv = tmp_path / "warmup.csv"
    write_normal_csv(simulation_config(warmup), csv, days=0.01)
    n_features = len(csv.read_text().splitlines()[0].split(","))
    settings = service_settings(services["scorer"])
    tick = Simulation(simulation_config(streaming)).tick(ts_ms=1_700_000_000_000)
    assert len(tick.events) == streaming["devices"]
    for _key, value in tick.events:
        decode_event(value, n_features, settings.max_message_bytes)
    with pytest.raises(ValueError):
        decode_event(tick.events[0][1], n_features + 1, settings.max_message_bytes)


def test_topics_are_created_by_init(services: dict[str, dict[str, Any]]) -> None:
    topics = init_topics(services)
    assert topics["sensor-labels"] == 1
    total_scorers = 0
    for name in SCORERS:
        settings = service_settings(services[name])
        assert settings.scores_topic is not None
        used = {settings.input_topic, settings.alerts_topic, settings.dlq_topic}
        assert used | {settings.scores_topic} <= topics.keys(), name
        assert settings.bootstrap_servers == "kafka:9092"
        total_scorers += replicas(services[name])
    assert topics[settings.input_topic] >= total_scorers, "some scorers would get no partition"
    retrain = service_settings(services["retrainer"])
    assert retrain.input_topic == settings.input_topic
    (simulate,) = (parse_seismo(argv).params for argv in calls("simulator", "simulate"))
    assert simulate["topic"] == settings.input_topic
    assert simulate["labels_topic"] in topics
    assert simulate["bootstrap_servers"] == settings.bootstrap_servers


def test_gpu_profile_adds_gpu_scorers_to_the_same_group(
    services: dict[str, dict[str, Any]],
) -> None:
    cpu, gpu = services["scorer"], services["scorer-gpu"]
    assert "profiles" not in cpu, "plain `docker compose up` must run the CPU scorers"
    assert gpu["profiles"] == ["gpu"]
    # Only the scorer-gpu service may be in a profile: the rest always runs.
    assert [name for name, s in services.items() if "profiles" in s] == ["scorer-gpu"]
    cpu_settings, gpu_settings = service_settings(cpu), service_settings(gpu)
    assert cpu_settings.device == "cpu" and gpu_settings.device == "cuda"
    differ = {
        key
        for key, value in cpu_settings.redacted().items()
        if gpu_settings.redacted()[key] != value
    }
    assert differ == {"device"}, "same group, topics, store and Redis apart from the device"
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert int(device["count"]) >= 1
    assert mounts(gpu) == mounts(cpu) and gpu["stop_grace_period"] == cpu["stop_grace_period"]


def test_stop_grace_period_outlasts_the_flush(services: dict[str, dict[str, Any]]) -> None:
    for name in SCORERS:
        grace = int(services[name]["stop_grace_period"].removesuffix("s"))
        assert grace > service_settings(services[name]).flush_timeout_s, name


def test_prometheus_scrapes_every_seismo_metrics_endpoint(
    services: dict[str, dict[str, Any]],
) -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    jobs = config["scrape_configs"]
    assert jobs and all(job.get("job_name") for job in jobs)
    targets = prometheus_targets(config)
    exposed = set()
    for name, argv in SEISMO_CALLS:
        if argv[1] not in {"score", "retrain"}:
            continue  # simulate, train and models have no metrics endpoint
        settings = settings_of(argv, container_env(services[name]))
        assert settings.metrics_port, f"{name}: metrics off"
        assert settings.metrics_host == "0.0.0.0", f"{name}: Prometheus could not reach it"
        exposed.add((name, settings.metrics_port))
    assert exposed == {("scorer", 9464), ("scorer-gpu", 9464), ("retrainer", 9465)}
    assert exposed <= targets
    assert {host for host, _port in targets} <= services.keys(), "a target is no service"
    mounted = {target: source for source, target in mounts(services["prometheus"])}
    assert (ROOT / mounted["/etc/prometheus/prometheus.yml"]).resolve() == PROMETHEUS


def test_seismo_environment_names_are_settings(services: dict[str, dict[str, Any]]) -> None:
    """A misspelt SEISMO_* variable would be ignored silently: catch it here."""
    fields = {
        "score": {f"SEISMO_{n.upper()}" for n in ScorerSettings.model_fields},
        "retrain": {f"SEISMO_{n.upper()}" for n in RetrainSettings.model_fields},
    }
    for dockerfile in DOCKERFILES:
        names = {k for stage in read_stages(dockerfile) for k in image_env(stage)}
        assert {n for n in names if n.startswith("SEISMO_")} <= fields["score"] & fields[
            "retrain"
        ], dockerfile
    for name, service in services.items():
        names = {n for n in environment(service) if n.startswith("SEISMO_")}
        if not names:
            continue
        commands = {argv[1] for argv in invocations(service, "seismo")}
        assert commands and commands <= fields.keys(), f"{name}: SEISMO_* for {commands}?"
        for command in commands:
            assert names <= fields[command], (name, names - fields[command])


# --- Dockerfiles and .dockerignore ---------------------------------------------------


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_runs_seismo_as_non_root(dockerfile: Path) -> None:
    stages = read_stages(dockerfile)
    assert len(stages) >= 2, "multi-stage build expected"
    assert all(stage[0][1].split()[0] == "python:3.11-slim" for stage in stages)
    copies = [args for keyword, args in stages[-1] if keyword == "COPY"]
    assert copies and all(args.startswith("--from=") for args in copies), (
        "the runtime stage takes the built venv only"
    )
    final = dict(stages[-1])  # the last of each keyword
    user = final.get("USER", "root").split(":")[0]
    assert user not in {"root", "0"}
    assert json.loads(final["ENTRYPOINT"]) == ["seismo"]
    default_port = ScorerSettings.model_fields["metrics_port"].default
    assert str(default_port) in final["EXPOSE"].split()
    assert image_env(stages[-1])["SEISMO_METRICS_HOST"] == "0.0.0.0"


@pytest.mark.parametrize(
    ("dockerfile", "index"),
    [
        (DOCKERFILE, r"https://download\.pytorch\.org/whl/cpu"),
        (DOCKERFILE_CUDA, r"https://download\.pytorch\.org/whl/cu\d{3}"),
    ],
    ids=["cpu", "cuda"],
)
def test_dockerfile_installs_its_torch_before_seismo(dockerfile: Path, index: str) -> None:
    stages = read_stages(dockerfile)
    build = stages[0]
    args = build_args(build)
    runs = [expand_args(a, args) for keyword, a in build if keyword == "RUN"]
    torch = next(i for i, r in enumerate(runs) if "torch" in r)
    project = next(i for i, r in enumerate(runs) if re.search(r"pip install \.(\s|$)", r))
    used = re.search(r"--index-url \"?(\S+?)\"?\s", runs[torch])
    assert used and re.fullmatch(index, used[1]), runs[torch]
    assert torch < project
    assert args.get("EXTRA_PACKAGES", None) == "", "EXTRA_PACKAGES: empty by default"
    raw = [a for keyword, a in build if keyword == "RUN"][project]
    assert "${EXTRA_PACKAGES}" in raw


def test_cuda_image_asks_the_runtime_for_the_driver() -> None:
    env = image_env(read_stages(DOCKERFILE_CUDA)[-1])
    assert "compute" in env["NVIDIA_DRIVER_CAPABILITIES"].split(",")
    assert env["SEISMO_DEVICE"] == "cuda"
    assert "SEISMO_DEVICE" not in image_env(read_stages(DOCKERFILE)[-1])


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


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerignore_keeps_what_the_build_copies(dockerfile: Path) -> None:
    patterns = dockerignore_patterns(DOCKERIGNORE.read_text())
    stages = read_stages(dockerfile)
    copies = [a for s in stages for k, a in s if k == "COPY" and not a.startswith("--from")]
    sources = [src for args in copies for src in args.split()[:-1]]
    assert {"pyproject.toml", "README.md", "stream", "models", "seismo"} <= set(sources)
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
        "deploy/k8s/secret.yaml",
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
    interpolated = tmp_path / "interpolated.yml"
    interpolated.write_text(interpolate(COMPOSE.read_text(), {}))
    done = _validate_compose(interpolated)
    assert done.returncode == 0, done.stdout + done.stderr
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE.read_text().replace("depends_on:", "depend_on:", 1))
    assert _validate_compose(broken).returncode != 0, "the schema check accepts a misspelt key"
