"""The import graph of gan_bench stays a tree of floors: the builder of ``_target_`` nodes is the ground floor, and the
config, models, optimizers, the game and the stabilisers import one another in one direction only.

Read with ``ast`` from the sources (nothing is imported): every ``import`` counts, at module level or inside a
function, but those under ``if TYPE_CHECKING:`` (annotations only, never run)."""
from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "gan_bench"
GROUND = {"gan_bench.registry", "gan_bench.errors"}  # all that gan_bench.build may import of gan_bench
LAYERED = ("gan_bench.config", "gan_bench.models", "gan_bench.optim", "gan_bench.game", "gan_bench.stabilizers")


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(tree: ast.Module) -> set[int]:
    """The ids of the import nodes inside ``if TYPE_CHECKING:`` blocks."""
    ids = set()
    for node in ast.walk(tree):
        test = node.test if isinstance(node, ast.If) else None
        if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING" or \
                isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING":
            ids |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return ids


def _imports(path: Path, modules: set[str]) -> dict[str, int]:
    """The gan_bench modules the file at ``path`` imports, each with the line of its first import there
    (``from P import m`` of a submodule m is an import of P.m, as ``import P.m`` is)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    skip = _type_checking_only(tree)
    found: dict[str, int] = {}
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            source = ".".join([*base, *([node.module] if node.module else [])])
            targets = [f"{source}.{a.name}" if f"{source}.{a.name}" in modules else source for a in node.names]
        else:
            continue
        for target in targets:
            if target in modules and target != name:
                found[target] = min(found.get(target, node.lineno), node.lineno)
    return found


def import_graph(package: Path = PACKAGE) -> dict[str, dict[str, int]]:
    """Module -> the gan_bench modules it imports (-> the line)."""
    paths = sorted(package.rglob("*.py"))
    modules = {_module_name(p) for p in paths}
    return {_module_name(p): _imports(p, modules) for p in paths}


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _layered(module: str) -> bool:
    return any(module == top or module.startswith(top + ".") for top in LAYERED)


def test_the_builder_stands_on_the_ground_floor():
    imported = set(import_graph()["gan_bench.build"])
    assert imported <= GROUND, f"gan_bench/build.py imports {sorted(imported - GROUND)}"


def test_no_import_cycle_among_config_models_optimizers_game_and_stabilizers():
    graph = import_graph()
    circles = [c for c in cycles(graph) if any(_layered(m) for m in c)]
    ties = [f"{a} -> {b} (line {graph[a][b]})" for c in circles for a in c for b in sorted(graph[a]) if b in c]
    assert not circles, f"import circles {circles}, through: {'; '.join(ties)}"


def test_the_graph_reads_module_and_function_level_imports():
    """The reader sees what the two tests above rely on: a function's import, a relative one, a submodule by name."""
    graph = import_graph()
    assert "gan_bench.metrics.registry" in graph["gan_bench.config"]  # inside metric_names()
    assert "gan_bench.build" in graph["gan_bench.optim"]  # from ..build import instantiate
    assert "gan_bench.models.spectral_norm" in graph["gan_bench.models.ensemble"]  # from gan_bench.models import m
    assert "gan_bench.game" not in graph["gan_bench.stabilizers.feature_matching"]  # under TYPE_CHECKING only
