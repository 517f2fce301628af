"""The package's layering, read from its source: which module may import which.

The data flows one way (load, route, describe, run, assemble, emit), and the faces sit
on top of the core: nothing in ``core/`` reaches up to the command line or to what a
person sees, there are no import cycles (lazy imports inside functions count: they are
cycles at run time), only ``core/runner.py`` starts processes, and only ``show/`` draws
with rich.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import orchestrator

PACKAGE = Path(orchestrator.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _imports(tree: ast.AST) -> Iterator[str]:
    """Every module an AST imports at run time (TYPE_CHECKING blocks left out)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            yield from (name for child in node.orelse for name in _imports(child))
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            # ``from orchestrator.core import routing`` imports the module routing too.
            yield from (f"{node.module}.{alias.name}" for alias in node.names)
        yield from _imports(node)


def _graph() -> dict[str, set[str]]:
    sources = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in sources.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        graph[name] = {
            imported
            for imported in _imports(tree)
            if imported in sources and imported not in (name, "orchestrator")
        }
    return graph


GRAPH = _graph()


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_the_package() -> None:
    # A reader that found nothing would pass every rule below.
    assert "orchestrator.core.pipeline" in GRAPH
    assert "orchestrator.core.runner" in set().union(*GRAPH.values())
    assert "orchestrator.pointers" in GRAPH["orchestrator.core.routing"]


def test_there_are_no_import_cycles() -> None:
    assert _cycles(GRAPH) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


UP = ("orchestrator.cli", "orchestrator.commands", "orchestrator.show", "orchestrator.emit")


@pytest.mark.parametrize(
    "layer", ["orchestrator.core", "orchestrator.rumprun", "orchestrator.schemas"]
)
def test_the_core_does_not_import_the_faces(layer: str) -> None:
    offenders = {
        (name, target)
        for name, targets in GRAPH.items()
        if name.startswith(layer)
        for target in targets
        if target.startswith(UP)
    }
    assert offenders == set()


def test_nothing_imports_the_command_line() -> None:
    offenders = {
        name
        for name, targets in GRAPH.items()
        if "orchestrator.cli" in targets and name != "orchestrator.__main__"
    }
    assert offenders == set()


def _importers_of(prefix: str) -> set[str]:
    found = set()
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(n == prefix or n.startswith(prefix + ".") for n in names):
                found.add(_module_name(path))
    return found


def test_only_the_runner_starts_processes() -> None:
    assert _importers_of("subprocess") == {"orchestrator.core.runner"}


def test_only_show_draws_with_rich() -> None:
    assert _importers_of("rich")
    assert {m for m in _importers_of("rich") if not m.startswith("orchestrator.show.")} == set()


QUIET = ("orchestrator.core", "orchestrator.rumprun", "orchestrator.schemas", "orchestrator.review")


def test_the_core_never_writes_to_a_terminal_itself() -> None:
    # Notes and warnings reach stderr through the callbacks the commands pass in.
    speakers = set()
    for path in PACKAGE.rglob("*.py"):
        if not _module_name(path).startswith(QUIET):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in {"stderr", "stdout"}
                and getattr(node.value, "id", "") == "sys"
            ):
                speakers.add(_module_name(path))
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "print":
                speakers.add(_module_name(path))
    assert speakers == set()
