"""No import cycle among lib's modules or subpackages, counting imports inside TYPE_CHECKING and functions.

import-linter's layers contract (pyproject.toml) keeps the subpackages in order; this test also catches a
cycle inside one subpackage, and one hidden in a function or behind TYPE_CHECKING, which layers cannot see.
"""

from __future__ import annotations

import ast
from pathlib import Path

LIB = Path(__file__).resolve().parents[3] / "lib"


def _module(path: Path) -> str:
    parts = path.relative_to(LIB.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph() -> dict[str, set[str]]:
    files = {_module(p): p for p in LIB.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module:
                base = node.module
                if node.level:
                    package = name.split(".") if is_package else name.split(".")[:-1]
                    base = ".".join(package[: len(package) - node.level + 1] + [node.module])
                submodules = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in files]
                # `from lib.api import bodies` inside lib.api names a sibling module: its own package is
                # already being imported, so only the sibling counts.
                own_package = name.startswith(base + ".") and len(submodules) == len(node.names)
                targets += [*([] if own_package else [base]), *(f"{base}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                targets += [alias.name for alias in node.names]
            # A package's __init__ imports its modules (it lists their public names), so a module that
            # imports the package depends on all of them: those edges count too.
            graph[name] |= {t for t in targets if t in files and t != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        top = stack.pop()
                        on_stack.discard(top)
                        component.append(top)
                        if top == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def _subpackage(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_no_cycle_between_modules() -> None:
    assert _cycles(_graph()) == []


def test_no_cycle_between_subpackages() -> None:
    packages: dict[str, set[str]] = {}
    for module, imported in _graph().items():
        packages.setdefault(_subpackage(module), set()).update(
            _subpackage(t) for t in imported if _subpackage(t) != _subpackage(module))
    for targets in packages.values():
        targets &= packages.keys()
    assert _cycles(packages) == []


def test_the_checker_sees_a_cycle_hidden_in_a_function() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
