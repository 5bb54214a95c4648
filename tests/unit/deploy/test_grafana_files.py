"""Static checks of Grafana's provisioning (deploy/grafana) and its compose service.

No Grafana runs in CI: the provisioning files are parsed, their paths are
matched with the compose mounts, and every metric and label the dashboard's
PromQL uses is looked up in what the scorer and the retrainer really export
(the metric objects of stream/io/metrics.py, with prometheus_client's suffixes).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from deploy_support import GRAFANA, ROOT, exported_metrics, load_compose, mounts
from prometheus_client import generate_latest

from seismo.stream.io.metrics import RetrainerMetrics, ScorerMetrics

DATASOURCES = GRAFANA / "provisioning" / "datasources"
PROVIDERS = GRAFANA / "provisioning" / "dashboards"
DASHBOARDS = GRAFANA / "dashboards"
#: Labels Prometheus adds to every scraped sample.
TARGET_LABELS = {"job", "instance"}
PROMQL_WORDS = {
    "sum", "avg", "min", "max", "count", "rate", "irate", "increase", "histogram_quantile",
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "topk", "bottomk", "quantile", "abs", "clamp_min", "clamp_max", "delta", "deriv",
    "label_replace", "vector", "scalar", "time", "offset", "bool",
}  # fmt: skip


@pytest.fixture(scope="module")
def grafana() -> dict[str, Any]:
    return load_compose()["services"]["grafana"]


def mounted(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> repository path of each bind mount."""
    return {
        target: (ROOT / source).resolve() for source, target in mounts(service) if source[0] == "."
    }


def in_container(service: dict[str, Any], path: str) -> Path:
    """The repository file a container path of the service maps to."""
    for target, source in sorted(mounted(service).items(), key=lambda kv: -len(kv[0])):
        if path == target or path.startswith(target.rstrip("/") + "/"):
            return source / Path(path).relative_to(target)
    raise AssertionError(f"{path} is not under a bind mount")


def datasources() -> list[dict[str, Any]]:
    out = []
    for path in sorted(DATASOURCES.glob("*.y*ml")):
        config = yaml.safe_load(path.read_text())
        assert config["apiVersion"] == 1, path
        out += config["datasources"]
    return out


def dashboards() -> list[tuple[Path, dict[str, Any]]]:
    return [(path, json.loads(path.read_text())) for path in sorted(DASHBOARDS.glob("*.json"))]


def targets(dashboard: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """``(panel, target)`` of every query, rows' nested panels included."""
    out = []
    for panel in dashboard["panels"]:
        for inner in [panel, *panel.get("panels", [])]:
            out += [(inner, target) for target in inner.get("targets", [])]
    return out


def strip_strings(expr: str) -> str:
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (label names in ``{}``/``by ()`` and
    function names left out)."""
    bare = re.sub(r"\{[^}]*\}", "", strip_strings(expr))
    bare = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", bare)
    bare = re.sub(r"\[[^\]]*\]", "", bare)
    words = set(re.findall(r"(?<![\w$])[a-zA-Z_:][\w:]*", bare))
    return {w for w in words if w not in PROMQL_WORDS and not w.startswith("__")}


def label_names(expr: str, legend: str) -> set[str]:
    """Label names a query groups by, matches on, or shows in its legend."""
    clean = strip_strings(expr)
    labels = set()
    for group in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", clean):
        labels |= {name.strip() for name in group.split(",") if name.strip()}
    for matchers in re.findall(r"\{([^}]*)\}", clean):
        labels |= set(re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", matchers))
    labels |= set(re.findall(r"\{\{\s*(\w+)\s*\}\}", legend))
    return labels


def unknown_names(expr: str, legend: str = "") -> list[str]:
    """What a query uses that seismo does not export: metrics, then labels."""
    catalogue = exported_metrics()
    names = metric_names(expr)
    problems = sorted(n for n in names if n not in catalogue)
    allowed = set(TARGET_LABELS).union(*(catalogue.get(n, set()) for n in names))
    problems += sorted(f"label {label}" for label in label_names(expr, legend) - allowed)
    return problems


# --- the names the dashboard uses exist ----------------------------------------------


def test_the_catalogue_is_what_prometheus_client_exports() -> None:
    scorer, retrainer = ScorerMetrics(), RetrainerMetrics()
    scorer.set_model("seismo", "v1")
    retrainer.set_model("seismo", "v1")
    retrainer.attempted.labels("schedule").inc()
    retrainer.rejected.labels("alert_rate").inc()
    retrainer.skipped.labels("no_new_events").inc()
    sampled = set()
    for holder in (scorer, retrainer):
        text = generate_latest(holder.registry).decode()
        sampled |= {line.split("{")[0].split()[0] for line in text.splitlines() if line[:1] != "#"}
    assert sampled == exported_metrics().keys()


@pytest.mark.parametrize(
    ("expr", "legend", "problems"),
    [
        ("sum(rate(seismo_events_scored_total[1m]))", "", []),
        ("sum(rate(seismo_events_scored[1m]))", "", ["seismo_events_scored"]),
        ("seismo_consumer_lag", "", ["seismo_consumer_lag"]),
        ("max by (version) (seismo_model_info)", "{{version}}", []),
        ("max by (device) (seismo_model_info)", "", ["label device"]),
        ('seismo_threshold{instance="a"}', "{{pod}}", ["label pod"]),
        ("sum by (le) (rate(seismo_alerts_total[1m]))", "", ["label le"]),
    ],
)
def test_the_name_check_rejects_what_seismo_does_not_export(
    expr: str, legend: str, problems: list[str]
) -> None:
    assert unknown_names(expr, legend) == problems


def test_every_dashboard_query_uses_exported_metrics_and_labels() -> None:
    found = dashboards()
    assert found, "no dashboard under deploy/grafana/dashboards"
    for path, dashboard in found:
        queries = targets(dashboard)
        assert queries, f"{path.name}: no query"
        for panel, target in queries:
            expr = target["expr"]
            assert metric_names(expr), f"{panel['title']}: no metric in {expr!r}"
            problems = unknown_names(expr, target.get("legendFormat", ""))
            assert not problems, f"{path.name} / {panel['title']}: {problems} in {expr!r}"


def test_queries_are_well_formed() -> None:
    for _path, dashboard in dashboards():
        for panel, target in targets(dashboard):
            expr = strip_strings(target["expr"])
            for opening, closing in ("()", "[]", "{}"):
                depth = 0
                for char in expr:
                    depth += (char == opening) - (char == closing)
                    assert depth >= 0, (panel["title"], expr)
                assert depth == 0, (panel["title"], expr)
            # Range functions take a range vector; a counter is only read through them.
            for call in re.finditer(r"\b(rate|irate|increase)\(([^()]*)\)", expr):
                assert re.search(r"\[[^\]]+\]", call[2]), (panel["title"], expr)
            for name in metric_names(expr):
                if name.endswith(("_total", "_bucket")):
                    assert re.search(rf"\b(rate|irate|increase)\({name}\b", expr), expr
            if "_bucket" in expr:
                assert re.search(r"histogram_quantile\(0?\.\d+, sum by \([^)]*\ble\b", expr), expr


def test_dashboard_has_the_issue_panels() -> None:
    """events/s, lag, alerts/s, threshold, batch latency and the model version."""
    (_path, dashboard), *_ = dashboards()
    by_title = {
        panel["title"]: [t["expr"] for t in panel["targets"]] for panel in dashboard["panels"]
    }

    def panel_with(pattern: str) -> str:
        titles = [t for t, exprs in by_title.items() if any(re.search(pattern, e) for e in exprs)]
        assert titles, f"no panel queries {pattern}"
        return titles[0]

    panel_with(r"rate\(seismo_events_scored_total\[")
    panel_with(r"rate\(seismo_alerts_total\[")
    panel_with(r"^seismo_threshold$")
    panel_with(
        r"histogram_quantile\(0\.99, sum by \(le\) \(rate\(seismo_batch_latency_seconds_bucket"
    )
    model = panel_with(r"seismo_model_info")
    (legend,) = [
        t["legendFormat"] for p in dashboard["panels"] if p["title"] == model for t in p["targets"]
    ]
    assert "{{version}}" in legend
    lag = [p for p in dashboard["panels"] if "lag" in p["title"].lower()]
    assert len(lag) == 1 and "no kafka consumer-lag metric" in lag[0]["description"].lower()
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"


# --- provisioning and the compose service ---------------------------------------------


def test_datasource_is_the_compose_prometheus() -> None:
    (source,) = datasources()
    assert source["type"] == "prometheus" and source["access"] == "proxy"
    assert source["isDefault"] is True
    url = urlsplit(source["url"])
    services = load_compose()["services"]
    assert url.hostname in services and url.hostname == "prometheus"
    assert f"127.0.0.1:{url.port}:{url.port}" in services["prometheus"]["ports"]


def test_dashboards_refer_to_the_provisioned_datasource() -> None:
    uids = {source["uid"] for source in datasources()}
    seen = set()
    for path, dashboard in dashboards():
        assert dashboard["uid"] not in seen, f"{path.name}: duplicate uid"
        seen.add(dashboard["uid"])
        for panel, target in targets(dashboard):
            for ref in (panel["datasource"], target["datasource"]):
                assert ref["type"] == "prometheus" and ref["uid"] in uids, (path.name, panel)


def test_grafana_mounts_what_its_provisioning_reads(grafana: dict[str, Any]) -> None:
    mounted_dirs = mounted(grafana)
    assert mounted_dirs["/etc/grafana/provisioning/datasources"] == DATASOURCES.resolve()
    assert mounted_dirs["/etc/grafana/provisioning/dashboards"] == PROVIDERS.resolve()
    providers = [
        p
        for f in sorted(PROVIDERS.glob("*.y*ml"))
        for p in yaml.safe_load(f.read_text())["providers"]
    ]
    assert providers
    for provider in providers:
        assert provider["type"] == "file"
        folder = in_container(grafana, provider["options"]["path"])
        assert folder.resolve() == DASHBOARDS.resolve() and list(folder.glob("*.json"))
    env = grafana["environment"]
    home = in_container(grafana, env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    assert home.is_file() and json.loads(home.read_text())["panels"]


def test_grafana_is_on_localhost_3000_with_anonymous_viewers(grafana: dict[str, Any]) -> None:
    assert grafana["image"].startswith("grafana/grafana:")
    assert grafana["ports"] == ["127.0.0.1:3000:3000"]
    env = grafana["environment"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer", "anonymous visitors only view"
    # admin / admin without GRAFANA_ADMIN_PASSWORD (documented: change it after logging in).
    assert env["GF_SECURITY_ADMIN_PASSWORD"] == "admin"
    changed = load_compose({"GRAFANA_ADMIN_PASSWORD": "s3cret"})["services"]["grafana"]
    assert changed["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == "s3cret"
    assert any(target == "/var/lib/grafana" for _source, target in mounts(grafana))
