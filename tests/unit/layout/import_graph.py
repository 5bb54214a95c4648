"""The import graph of the seismo package, read from the source with :mod:`ast`.

Every import counts, at module level or inside a function: an import hidden in
a function is still a dependency, and a cycle through one is still a cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
#: The repository folders mapped into the ``seismo`` package.
FOLDERS = {"seismo.stream": ROOT / "stream", "seismo.models": ROOT / "models"}


@dataclass(frozen=True)
class Import:
    """One import statement of a module: what it names, and whether at module level."""

    target: str
    top_level: bool


def modules() -> dict[str, Path]:
    """Every module of the package: dotted name -> file."""
    found = {"seismo": ROOT / "seismo" / "__init__.py"}
    for package, folder in FOLDERS.items():
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


def imports_of(path: Path, name: str, is_package: bool) -> Iterator[Import]:
    """The absolute names imported by one module (``from a import b`` gives ``a.b``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(node) for node in tree.body}
    here = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(alias.name, id(node) in top)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = here.rsplit(".", node.level - 1)[0] if node.level > 1 else here
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                yield Import(f"{base}.{alias.name}", id(node) in top)
                yield Import(base, id(node) in top)


def graph(top_level_only: bool = False) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (external imports by their top name)."""
    known = modules()
    edges: dict[str, set[str]] = {}
    for name, path in known.items():
        targets: set[str] = set()
        for imp in imports_of(path, name, path.name == "__init__.py"):
            if top_level_only and not imp.top_level:
                continue
            if imp.target in known:
                targets.add(imp.target)
            elif not imp.target.startswith("seismo"):
                targets.add(imp.target.split(".")[0])
        targets.discard(name)
        edges[name] = targets
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in edges:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(found)


def reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    """Everything ``start`` imports, directly or through the package's modules."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        for w in edges.get(todo.pop(), ()):
            if w not in seen:
                seen.add(w)
                todo.append(w)
    return seen
