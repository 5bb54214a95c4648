"""The package's architecture, kept so by tests: one import name, no cycle, pure rules.

The graph is read from the source (:mod:`tests.unit.layout.import_graph`),
imports inside functions included, so a dependency cannot hide in one.
"""

from __future__ import annotations

import ast

import pytest

from tests.unit.layout.import_graph import FOLDERS, ROOT, cycles, graph, modules, reachable

#: Modules of pure logic: no broker, no Redis, nothing but numbers and bytes.
PURE = [
    *(f"seismo.stream.scoring.{m}" for m in (
        "codec", "fast_decode", "f32_codec", "threshold", "alerts", "devices.rule", "stats",
        "window_buffer", "drift", "scorable", "dead_letters",
    )),
    "seismo.stream.registry.model_versions",
    "seismo.stream.incidents.state",
    "seismo.stream.offline.tail_format",
    "seismo.stream.local.dev_state",
    "seismo.models.columns",
]  # fmt: skip
#: What the scoring runtime must never depend on.
NOT_FOR_SCORING = ("seismo.stream.bench", "seismo.stream.demo", "seismo.stream.sim",
                   "seismo.stream.cli")  # fmt: skip
MAX_MODULES = 15


def test_the_import_graph_has_no_cycle() -> None:
    assert cycles(graph()) == []


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_reach_neither_kafka_nor_redis(module: str) -> None:
    assert module in modules(), f"{module} was moved or renamed: update PURE"
    reached = reachable(graph(), module)
    assert not reached & {"confluent_kafka", "redis", "faust", "aiokafka"}, sorted(reached)


def test_scoring_imports_nothing_from_bench_demo_sim_or_the_cli() -> None:
    edges = graph()
    scoring = [m for m in edges if m.startswith("seismo.stream.scoring")]
    assert len(scoring) > 5
    for module in scoring:
        bad = sorted(m for m in reachable(edges, module) if m.startswith(NOT_FOR_SCORING))
        assert not bad, f"{module} reaches {bad}"


def test_models_never_reach_the_streaming_half() -> None:
    edges = graph()
    for module in (m for m in edges if m.startswith("seismo.models")):
        reached = reachable(edges, module)
        assert not [m for m in reached if m.startswith("seismo.stream")], module
        assert not reached & {"confluent_kafka", "redis"}, module


def test_no_folder_holds_more_than_15_modules_and_each_says_what_it_owns() -> None:
    for folder in FOLDERS.values():
        for package in [folder, *(p for p in folder.rglob("*") if p.is_dir())]:
            if package.name == "__pycache__":
                continue
            init = package / "__init__.py"
            assert init.is_file(), f"{package} is not a package"
            assert ast.get_docstring(ast.parse(init.read_text())), f"{init} has no docstring"
            count = len([p for p in package.glob("*.py") if p.name != "__init__.py"])
            assert count <= MAX_MODULES, f"{package.relative_to(ROOT)} holds {count} modules"


def test_one_import_name_maps_the_repository_folders() -> None:
    for name, folder in FOLDERS.items():
        link = ROOT / "seismo" / name.split(".")[1]
        assert link.is_symlink() and link.resolve() == folder.resolve(), link
    source = "\n".join(p.read_text() for p in modules().values())
    tree_imports = [
        node.module or "" for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom) and not node.level
    ]  # fmt: skip
    assert not [m for m in tree_imports if m.split(".")[0] in ("stream", "models")]


def test_every_module_is_reached_under_the_seismo_name() -> None:
    import importlib

    for name in modules():
        if name.endswith("__main__"):
            continue
        module = importlib.import_module(name)
        assert module.__name__ == name
