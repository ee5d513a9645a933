"""The package's shape: no import cycles between its modules, and no module too long to read."""

from __future__ import annotations

import ast
from pathlib import Path

import dualagent

PACKAGE = Path(dualagent.__file__).parent
MAX_LINES = 750

# Modules other engineers are splitting now (issue 11); remove a name once its module is split.
BEING_SPLIT = {
    "dualagent.batch.runner",
    "dualagent.call.simulate",
    "dualagent.realtime.local.session",
}


# The cycle through the package's own __init__: simulate imports __version__ from it.
def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _top_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports that run when the module is imported: not in functions or classes, nor under
    ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.If) and not _is_type_checking(node):
            pending += node.body + node.orelse
        elif isinstance(node, ast.Try):
            pending += node.body + node.orelse + node.finalbody
            pending += [stmt for handler in node.handlers for stmt in handler.body]
    return found


def _imported_modules(name: str, path: Path) -> set[str]:
    """The package's modules that ``name`` imports at its top level."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    targets: set[str] = set()
    for node in _top_level_imports(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names}
            continue
        base = node.module or ""
        if node.level:
            prefix = package[: len(package) - node.level + 1]
            base = ".".join(prefix + ([base] if base else []))
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            targets.add(submodule if submodule in MODULES else base)
    return {t for t in targets if t in MODULES and t != name}


def import_graph() -> dict[str, set[str]]:
    return {name: _imported_modules(name, path) for name, path in MODULES.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that import each other, directly or through others (Tarjan's SCCs)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

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
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_the_graph_sees_the_imports_we_know() -> None:
    graph = import_graph()
    assert "dualagent.evaluation.checks" in graph["dualagent.evaluation.outcome"]
    assert "dualagent.bank" in graph["dualagent.evaluation.bank_checks"]
    assert "dualagent.evaluation.bank_checks" in graph["dualagent.evaluation.checks"]
    assert "dualagent.text" in graph["dualagent.realtime.local.brains.language"]
    # Under TYPE_CHECKING only: the check language does not need scenarios to run.
    assert "dualagent.scenarios" not in graph["dualagent.evaluation.checks"]


def test_cycles_are_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


def test_scenarios_and_evaluation_do_not_import_each_other() -> None:
    graph = import_graph()
    evaluation = {name for name in graph if name.startswith("dualagent.evaluation.")}
    assert not any("dualagent.scenarios" in graph[name] for name in evaluation)


def test_no_module_is_too_long() -> None:
    lengths = {
        name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in MODULES.items()
    }
    offenders = {name: n for name, n in sorted(lengths.items()) if n > MAX_LINES}
    assert offenders == {}, f"modules over {MAX_LINES} lines: {offenders}"
