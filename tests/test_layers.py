"""The layer map (SPEC §4, docs/architecture.md) enforced on every import in ``power_loop/``.

Every ``import`` / ``from ... import`` is collected with :mod:`ast` — at module level, inside functions
and under ``if TYPE_CHECKING:`` — and checked three ways:

* **direction**: a package may import only packages of a *lower* layer (never up, never sideways);
* **privacy**: never another package's private module (``power_loop.events._payloads``), only its
  public ``__init__``;
* **cycles**: the runtime imports (everything but ``TYPE_CHECKING`` blocks) between modules form no
  cycle, also inside one package and also through in-function imports.

The checker functions are tested on planted bad code first, so a walker that silently finds nothing
cannot pass.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = "power_loop"
PACKAGE_DIR = Path(__file__).resolve().parent.parent / ROOT

#: Top-level unit (package or module directly under ``power_loop/``) → layer. Imports point down only.
#: ``power_loop/__init__.py`` itself is the facade above every layer.
LAYERS: dict[str, int] = {
    "errors": 0,
    "_lazy": 0,
    "base": 1,
    "llm": 2,
    "store": 2,
    "hooks": 2,
    "events": 2,
    "tools": 3,
    "structured": 3,
    "context": 4,
    "loop": 5,
    "agents": 6,
    "workflow": 7,
    "testing": 7,
    "contrib": 8,
    "cli": 9,
}
FACADE_LAYER = 10
#: Modules that together form one unit: the command line (its offline demo runs on ``testing``).
UNIT_ALIASES: dict[str, str] = {
    "__main__": "cli",
    "_cli_sessions": "cli",
    "_cli_inspect": "cli",
    "_demo": "cli",
}


@dataclass(frozen=True)
class Edge:
    """One import: ``source`` module imports ``target`` module at ``path:line``."""

    source: str
    target: str
    path: str
    line: int
    runtime: bool  # False under ``if TYPE_CHECKING:``

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


# ------------------------------------------------------------------------------------------ walker


def module_of(path: Path, root: Path = PACKAGE_DIR) -> tuple[str, bool]:
    """``(dotted module name, is_package)`` of a file under ``root``."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def all_modules(root: Path = PACKAGE_DIR) -> dict[str, Path]:
    return {module_of(p, root)[0]: p for p in sorted(root.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, type_only: bool = False) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import node with whether it sits in the body of an ``if TYPE_CHECKING:``."""
    for child in ast.iter_child_nodes(tree):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child, type_only
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for stmt in child.body:
                yield from _imports(ast.Module(body=[stmt], type_ignores=[]), True)
            for stmt in child.orelse:
                yield from _imports(ast.Module(body=[stmt], type_ignores=[]), type_only)
        else:
            yield from _imports(child, type_only)


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".") if is_package else module.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def collect_edges(source: str, module: str, is_package: bool, known: Iterable[str], path: str) -> list[Edge]:
    """The ``power_loop`` imports of one module's source (``from X import y`` counts as importing
    module ``X.y`` when that is a module, else ``X``)."""
    modules = set(known)
    edges: list[Edge] = []
    for node, type_only in _imports(ast.parse(source)):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = _resolve(node, module, is_package)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                targets.append(sub if sub in modules else base)
        for target in dict.fromkeys(targets):
            if target == ROOT or target.startswith(ROOT + "."):
                edges.append(Edge(module, target, path, node.lineno, runtime=not type_only))
    return edges


@functools.cache
def package_edges(root: Path = PACKAGE_DIR) -> list[Edge]:
    modules = all_modules(root)
    edges: list[Edge] = []
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        rel = str(path.relative_to(root.parent))
        edges += collect_edges(path.read_text(encoding="utf-8"), name, is_package, modules, rel)
    return edges


# ------------------------------------------------------------------------------------------- rules


def unit_of(module: str) -> str:
    """The top-level unit of a module: ``power_loop.tools._registry`` → ``tools``; the root → ``""``."""
    parts = module.split(".")
    unit = parts[1] if len(parts) > 1 else ""
    return UNIT_ALIASES.get(unit, unit)


def layer_of(unit: str) -> int:
    if unit == "":
        return FACADE_LAYER
    if unit not in LAYERS:
        raise KeyError(f"power_loop.{unit} has no layer: add it to LAYERS and docs/architecture.md")
    return LAYERS[unit]


def _private_part(module: str) -> str | None:
    """The first private component below the top-level unit (``_payloads`` of ``power_loop.events._payloads``)."""
    for part in module.split(".")[2:]:
        if part.startswith("_") and not (part.startswith("__") and part.endswith("__")):
            return part
    return None


def edge_problems(edges: Iterable[Edge]) -> list[tuple[str, str]]:
    """``(kind, message)`` for every edge breaking the direction or privacy rule; kinds are ``up``,
    ``sideways`` and ``private``."""
    found: list[tuple[str, str]] = []
    for edge in edges:
        src, dst = unit_of(edge.source), unit_of(edge.target)
        if src == dst:
            continue
        label = f"{edge.where}: {edge.source} -> {edge.target}"
        src_layer, dst_layer = layer_of(src), layer_of(dst)
        if dst_layer > src_layer:
            found.append(("up", f"{label} points up (layer {src_layer} -> {dst_layer})"))
        elif dst_layer == src_layer:
            found.append(("sideways", f"{label} points sideways (both layer {src_layer})"))
        if _private_part(edge.target):
            found.append(("private", f"{label} reaches into a private module of another package"))
    return found


def import_cycles(edges: Iterable[Edge]) -> list[list[Edge]]:
    """The cycles among runtime imports: one cycle (as its edges) per strongly connected component."""
    graph: dict[str, dict[str, Edge]] = {}
    for edge in edges:
        if edge.runtime and edge.source != edge.target:
            graph.setdefault(edge.source, {}).setdefault(edge.target, edge)
        elif edge.runtime:
            return [[edge]]
    components = _strongly_connected(graph)
    return [_cycle_in(component, graph) for component in components if len(component) > 1]


def _strongly_connected(graph: dict[str, dict[str, Edge]]) -> list[set[str]]:
    """Tarjan's algorithm, iterative (no recursion limit on long chains)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph.get(start, {}))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component: set[str] = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    found.append(component)
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph.get(child, {})))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def _cycle_in(component: set[str], graph: dict[str, dict[str, Edge]]) -> list[Edge]:
    """One concrete cycle inside a strongly connected component (breadth-first back to the start)."""
    start = min(component)
    parents: dict[str, Edge] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for target, edge in sorted(graph.get(node, {}).items()):
                if target not in component:
                    continue
                if target == start:
                    path = [edge]
                    while path[0].source != start:
                        path.insert(0, parents[path[0].source])
                    return path
                if target not in parents:
                    parents[target] = edge
                    following.append(target)
        frontier = following
    raise AssertionError(f"no cycle found in component {sorted(component)}")  # pragma: no cover


def describe_cycle(cycle: list[Edge]) -> str:
    return " -> ".join(f"{e.source} ({e.where})" for e in cycle) + f" -> {cycle[0].source}"


# -------------------------------------------------------------------------- the checker is checked

_KNOWN = {"power_loop.tools", "power_loop.tools._registry", "power_loop.loop", "power_loop.events"}


def _planted(source: str, module: str = "power_loop.llm._planted") -> list[Edge]:
    return collect_edges(source, module, False, _KNOWN | {module}, "planted.py")


def test_the_walker_finds_imports_everywhere() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "import json\n"
        "if TYPE_CHECKING:\n"
        "    from ..loop import StatefulAgentLoop\n"
        "def f():\n"
        "    from ..tools._registry import ToolRegistry\n"
        "    import power_loop.events\n"
        "class C:\n"
        "    def g(self):\n"
        "        from ..tools import _registry\n"
    )
    edges = _planted(source)
    assert [(e.target, e.line, e.runtime) for e in edges] == [
        ("power_loop.loop", 4, False),
        ("power_loop.tools._registry", 6, True),
        ("power_loop.events", 7, True),
        ("power_loop.tools._registry", 10, True),
    ]
    kinds = [kind for kind, _ in edge_problems(edges)]
    assert kinds == ["up", "up", "private", "sideways", "up", "private"]
    assert "planted.py:4" in edge_problems(edges)[0][1]


def test_the_rules_accept_downward_public_imports() -> None:
    edges = _planted("from ..events import AgentEvent\n", module="power_loop.loop._planted")
    assert edges and edge_problems(edges) == []
    edges = _planted("from . import _registry\n", module="power_loop.tools._planted")
    assert edges[0].target == "power_loop.tools._registry" and edge_problems(edges) == []


def test_the_cycle_finder_finds_planted_cycles() -> None:
    def edge(a: str, b: str, runtime: bool = True) -> Edge:
        return Edge(f"power_loop.{a}", f"power_loop.{b}", f"{a}.py", 1, runtime)

    cycles = import_cycles([edge("x.a", "x.b"), edge("x.b", "x.c"), edge("x.c", "x.a"), edge("x.c", "y")])
    assert len(cycles) == 1 and [e.source for e in cycles[0]] == [
        "power_loop.x.a",
        "power_loop.x.b",
        "power_loop.x.c",
    ]
    assert describe_cycle(cycles[0]).endswith("-> power_loop.x.a")
    assert import_cycles([edge("x.a", "x.b"), edge("x.b", "x.a", runtime=False)]) == []


# ----------------------------------------------------------------------------- the package itself


def test_every_top_level_unit_has_a_layer() -> None:
    units = {unit_of(name) for name in all_modules()} - {""}
    assert sorted(units - set(LAYERS)) == []


def test_the_layer_map_comment_in_the_package_agrees() -> None:
    rows = dict(re.findall(r"^#\s+(\d+)\s+(.*)$", (PACKAGE_DIR / "__init__.py").read_text(), re.MULTILINE))
    for unit, layer in [*LAYERS.items(), ("power_loop", FACADE_LAYER)]:
        shown = "__main__" if unit == "cli" else unit
        assert re.search(rf"(^|\s){re.escape(shown)}\b", rows.get(str(layer), "")), (unit, layer)


def test_imports_point_down_and_only_into_public_modules() -> None:
    problems = [message for _, message in edge_problems(package_edges())]
    assert problems == [], "\n" + "\n".join(problems)


def test_no_import_cycles() -> None:
    cycles = [describe_cycle(c) for c in import_cycles(package_edges())]
    assert cycles == [], "\n" + "\n".join(cycles)
