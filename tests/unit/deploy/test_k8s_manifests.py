"""Static checks of the Kubernetes example, deploy/k8s.

No cluster (and no kubectl) runs in CI: the manifests are parsed as YAML and
checked against seismo itself. Every container's ``seismo`` command, list-form
or in a shell script, is parsed by the real CLI; the scorer's and the
retrainer's settings are loaded from the ConfigMap and the Secret exactly as
the processes would load them from their environment (a misspelt or invalid
``SEISMO_*`` value fails); probes, ports and KEDA's scaler are compared with
those settings.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_support import (
    DOCKERFILE,
    K8S,
    SETTINGS_ENV,
    as_argv,
    entrypoint_of,
    load_yaml_documents,
    parse_seismo,
    program_calls,
    read_stages,
    run_argvs,
    settings_of,
)

from seismo.stream.io.kafka import CONSUMER_DEFAULTS

API_VERSIONS = {
    "ConfigMap": "v1",
    "Secret": "v1",
    "Deployment": "apps/v1",
    "Job": "batch/v1",
    "ScaledObject": "keda.sh/v1alpha1",
    "TriggerAuthentication": "keda.sh/v1alpha1",
}
KUSTOMIZATION = K8S / "kustomization.yaml"
#: KEDA's kafka scaler's names for librdkafka's sasl.mechanism.
KEDA_SASL = {"PLAIN": "plaintext", "SCRAM-SHA-256": "scram_sha256", "SCRAM-SHA-512": "scram_sha512"}


@cache
def manifests() -> list[dict[str, Any]]:
    """Every document of deploy/k8s (read once; not to be modified)."""
    files = sorted(p for p in K8S.glob("*.yaml") if p != KUSTOMIZATION)
    return [doc for path in files for doc in load_yaml_documents(path)]


def of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in manifests() if doc["kind"] == kind}


def pod_env(pod: dict[str, Any], container: dict[str, Any]) -> dict[str, str]:
    """The container's environment: its envFrom ConfigMaps and Secrets, then env."""
    config_maps, secrets = of_kind("ConfigMap"), of_kind("Secret")
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env |= config_maps[source["configMapRef"]["name"]]["data"]
        else:
            env |= secrets[source["secretRef"]["name"]]["stringData"]
    for item in container.get("env", []):
        assert "value" in item, "only plain env values are read here"
        env[item["name"]] = item["value"]
    return env


def workloads() -> list[tuple[str, dict[str, Any]]]:
    """``(name, pod spec)`` of every Deployment and Job."""
    docs = [*of_kind("Deployment").items(), *of_kind("Job").items()]
    return [(name, doc["spec"]["template"]["spec"]) for name, doc in docs]


def containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod["containers"]]


def expand(argv: list[str], env: dict[str, str]) -> list[str]:
    """Shell variables ``$X``/``${X}`` replaced from the container's environment."""

    def value(match: re.Match[str]) -> str:
        assert match[1] in env, f"${match[1]} is not set in the container"
        return env[match[1]]

    return [re.sub(r"\$\{?(\w+)\}?", value, token) for token in argv]


def seismo_calls(pod: dict[str, Any], container: dict[str, Any]) -> list[list[str]]:
    """Every ``seismo ...`` argv a container runs (image ENTRYPOINT when no command)."""
    assert container["image"].split("/")[-1].split(":")[0] == "seismo", container["image"]
    entrypoint = as_argv(container.get("command")) or entrypoint_of(DOCKERFILE)
    argvs = run_argvs(entrypoint, as_argv(container.get("args")))
    env = pod_env(pod, container)
    return [expand(argv, env) for argv in program_calls(argvs, "seismo")]


def all_calls() -> list[tuple[str, str, list[str]]]:
    return [
        (name, container["name"], argv)
        for name, pod in workloads()
        for container in containers(pod)
        for argv in seismo_calls(pod, container)
    ]


def service_container(command: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """``(Deployment, pod spec, container)`` of the one container running ``seismo command``."""
    found = []
    for doc in of_kind("Deployment").values():
        pod = doc["spec"]["template"]["spec"]
        for container in pod["containers"]:
            if any(argv[1] == command for argv in seismo_calls(pod, container)):
                found.append((doc, pod, container))
    assert len(found) == 1, f"expected one Deployment running seismo {command}"
    return found[0]


def settings_for(command: str) -> Any:
    _doc, pod, container = service_container(command)
    (argv,) = seismo_calls(pod, container)
    return settings_of(argv, pod_env(pod, container))


# --- parsing and references -------------------------------------------------------------


def test_manifests_parse_and_are_listed_in_the_kustomization() -> None:
    kustomization = yaml.safe_load(KUSTOMIZATION.read_text())
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {KUSTOMIZATION.name}
    names = set()
    for doc in manifests():
        assert API_VERSIONS[doc["kind"]] == doc["apiVersion"], doc["kind"]
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", doc["metadata"]["name"])
        key = (doc["kind"], doc["metadata"]["name"])
        assert key not in names, f"{key} defined twice"
        names.add(key)
    images = {c["image"] for _name, pod in workloads() for c in containers(pod)}
    (image,) = images
    (override,) = kustomization["images"]
    assert image.rsplit(":", 1)[0] == override["name"]


def test_config_map_and_secret_hold_strings_and_real_settings() -> None:
    for kind, key in (("ConfigMap", "data"), ("Secret", "stringData")):
        for name, doc in of_kind(kind).items():
            values = doc[key]
            assert all(isinstance(v, str) for v in values.values()), (kind, name)
            seismo = {k for k in values if k.startswith("SEISMO_")}
            assert seismo <= SETTINGS_ENV, f"{kind} {name}: not settings: {seismo - SETTINGS_ENV}"
    # The example carries no secret: every password-like value is a placeholder.
    secrets = of_kind("Secret")
    kafka = json.loads(secrets["seismo-secrets"]["stringData"]["SEISMO_KAFKA_CONFIG"])
    assert kafka["sasl.password"] == "CHANGE-ME"
    assert ":CHANGE-ME@" in secrets["seismo-secrets"]["stringData"]["SEISMO_REDIS_URL"]
    assert secrets["seismo-keda-kafka"]["stringData"]["password"] == "CHANGE-ME"


def test_env_sources_exist() -> None:
    config_maps, secrets = of_kind("ConfigMap"), of_kind("Secret")
    for name, pod in workloads():
        for container in containers(pod):
            assert container.get("envFrom"), f"{name}/{container['name']} has no settings"
            for source in container["envFrom"]:
                ref = source.get("configMapRef") or source["secretRef"]
                pool = config_maps if "configMapRef" in source else secrets
                assert ref["name"] in pool, (name, ref)


def test_every_seismo_command_parses_with_the_real_cli() -> None:
    found = all_calls()
    assert sorted((n, c, a[1]) for n, c, a in found) == sorted(
        [
            ("seismo-bootstrap", "bootstrap", "models"),  # list: already a version?
            ("seismo-bootstrap", "bootstrap", "simulate"),
            ("seismo-bootstrap", "bootstrap", "train"),
            ("seismo-bootstrap", "bootstrap", "models"),  # publish
            ("seismo-scorer", "wait-for-model", "models"),
            ("seismo-scorer", "scorer", "score"),
            ("seismo-retrainer", "wait-for-model", "models"),
            ("seismo-retrainer", "retrainer", "retrain"),
        ]
    )
    for _name, _container, argv in found:
        parse_seismo(argv)  # a UsageError fails the test


def test_scorer_and_retrainer_settings_load_from_the_environment() -> None:
    score, retrain = settings_for("score"), settings_for("retrain")
    assert score.model_store and score.model_store == retrain.model_store
    assert score.model_name == retrain.model_name
    assert score.kafka_config and score.kafka_config == retrain.kafka_config
    assert retrain.input_topic == score.input_topic
    assert score.redis_url.get_secret_value() == retrain.redis_url.get_secret_value()


def test_registry_commands_use_the_configured_store_and_name() -> None:
    score = settings_for("score")
    by_command: dict[str, list[dict[str, Any]]] = {}
    for _name, _container, argv in all_calls():
        key = " ".join(argv[1:3]) if argv[1] == "models" else argv[1]
        by_command.setdefault(key, []).append(dict(parse_seismo(argv).params))
    for params in by_command["models list"] + by_command["models publish"]:
        assert params["store"] == score.model_store
    for params in by_command["models list"] + by_command["train"]:
        assert params["name"] == score.model_name
    (train,) = by_command["train"]
    (publish,) = by_command["models publish"]
    (simulate,) = by_command["simulate"]
    assert publish["model"] == train["out"] and simulate["write_normal"] == train["data"]


def test_wait_and_bootstrap_scripts_look_for_a_current_version() -> None:
    """``seismo models list`` marks the current version with ``*``: the scripts grep it."""
    from seismo.stream.registry.commands import format_versions
    from seismo.stream.registry.model_registry import VersionInfo

    lines = format_versions([VersionInfo("v2", "", True), VersionInfo("v1", "", False)])
    for _name, pod in workloads():
        for container in containers(pod):
            script = " ".join(as_argv(container.get("args")))
            if "models list" in script:
                (pattern,) = re.findall(r"grep -q '([^']*)'", script)
                assert [bool(re.search(pattern, line)) for line in lines] == [True, False]


# --- pods: probes, ports, volumes, security ---------------------------------------------


@pytest.mark.parametrize("command", ["score", "retrain"])
def test_probes_and_ports_match_the_metrics_endpoint(command: str) -> None:
    doc, pod, container = service_container(command)
    settings = settings_for(command)
    assert settings.metrics_port and settings.metrics_host == "0.0.0.0"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": settings.metrics_port}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        spec = container[probe]
        check = spec.get("httpGet") or spec["tcpSocket"]
        assert check["port"] in {"metrics", settings.metrics_port}, probe
        if "httpGet" in spec:
            # both serve /metrics and /health (seismo.stream.io.health)
            assert spec["httpGet"]["path"] in {"/metrics", "/health"}, probe
    annotations = doc["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(settings.metrics_port)


@pytest.mark.parametrize("command", ["score", "retrain"])
def test_model_cache_is_on_a_writable_volume(command: str) -> None:
    _doc, pod, container = service_container(command)
    cache = settings_for(command).model_cache_dir
    assert cache is not None, "with a URL store the cache must be placed explicitly"
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    holder = [path for path in mounts if Path(cache).is_relative_to(path)]
    assert holder and "emptyDir" in volumes[mounts[holder[0]]], cache


def test_pods_run_as_the_images_user() -> None:
    user = dict(read_stages(DOCKERFILE)[-1])["USER"].split(":")[0]
    for name, pod in workloads():
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is True and str(security["runAsUser"]) == user, name
        for container in containers(pod):
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]


def test_scorers_stop_gracefully_and_the_retrainer_is_single() -> None:
    scorer, _pod, _container = service_container("score")
    grace = scorer["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > settings_for("score").flush_timeout_s
    retrainer, _pod, _container = service_container("retrain")
    assert retrainer["spec"]["replicas"] == 1
    assert retrainer["spec"]["strategy"]["type"] == "Recreate"
    for doc in of_kind("Deployment").values():
        selector = doc["spec"]["selector"]["matchLabels"]
        assert selector.items() <= doc["spec"]["template"]["metadata"]["labels"].items()
    (job,) = of_kind("Job").values()
    assert job["spec"]["template"]["spec"]["restartPolicy"] in {"Never", "OnFailure"}


# --- autoscaling ----------------------------------------------------------------------


def test_keda_scales_the_scorer_deployment_on_its_groups_lag() -> None:
    scorer, _pod, _container = service_container("score")
    settings = settings_for("score")
    (scaled,) = of_kind("ScaledObject").values()
    target = scaled["spec"]["scaleTargetRef"]
    assert target.get("kind", "Deployment") == "Deployment"
    assert target["name"] == scorer["metadata"]["name"]
    assert "replicas" not in scorer["spec"], "KEDA owns the scorers' replica count"
    assert 1 <= scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"]
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "kafka"
    meta = trigger["metadata"]
    assert all(isinstance(v, str) for v in meta.values()), "trigger metadata are strings"
    assert meta["bootstrapServers"] == settings.bootstrap_servers
    assert meta["consumerGroup"] == settings.group_id
    assert meta["topic"] == settings.input_topic
    assert meta["offsetResetPolicy"] == CONSUMER_DEFAULTS["auto.offset.reset"]
    assert int(meta["lagThreshold"]) > 0


def test_keda_authentication_matches_the_kafka_config() -> None:
    (scaled,) = of_kind("ScaledObject").values()
    (trigger,) = scaled["spec"]["triggers"]
    auth = of_kind("TriggerAuthentication")[trigger["authenticationRef"]["name"]]
    secrets = of_kind("Secret")
    params = {}
    for ref in auth["spec"]["secretTargetRef"]:
        params[ref["parameter"]] = secrets[ref["name"]]["stringData"][ref["key"]]
    kafka = settings_for("score").kafka_config
    assert params["sasl"] == KEDA_SASL[kafka["sasl.mechanism"]]
    assert params["username"] == kafka["sasl.username"]
    assert params["password"] == kafka["sasl.password"]
    tls = kafka.get("security.protocol", "PLAINTEXT") in {"SSL", "SASL_SSL"}
    assert params["tls"] == ("enable" if tls else "disable")


def test_an_object_store_url_needs_its_fsspec_package_in_the_image() -> None:
    store = settings_for("score").model_store
    scheme = store.split("://")[0] if "://" in store else "file"
    package = {"s3": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs"}
    if scheme in package:
        readme = (K8S.parent / "README.md").read_text()
        assert f"EXTRA_PACKAGES={package[scheme]}" in readme
        assert f"EXTRA_PACKAGES={package[scheme]}" in KUSTOMIZATION.read_text()
