"""The import graph of ``autoresearch/`` has no cycle: data flows one way through the packages.

Read from the source with ``ast`` (nothing is imported or run), counting every import — those inside
functions too, since a lazy import is still a dependency. Two levels are checked: between the
packages (``autoresearch.critic`` → ``autoresearch.store`` …) and between the modules of one
package (``critic/early_stopping.py`` → ``critic/learning_curve.py`` …). A failure names each
cycle and the lines that make it.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import autoresearch

ROOT = Path(autoresearch.__file__).parent


def _module_name(path: Path) -> str:
    parts = ["autoresearch", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1]) if parts[-1] == "__init__" else ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> list[tuple[str, int]]:
    """(imported autoresearch module, line) for every import statement in ``path``."""
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append((sub if sub in known else base, node.lineno))
    return [(target, line) for target, line in found if target.split(".")[0] == "autoresearch"]


def _unit(module: str) -> str:
    """The package a module belongs to: ``autoresearch.critic.stats`` → ``autoresearch.critic``.
    Modules directly under ``autoresearch/`` (``cli``, ``result``, ``__main__``) are units of their own."""
    parts = module.split(".")
    return ".".join(parts[:2])


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan), each a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
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
    return found


def _graph() -> tuple[dict[str, set[str]], dict[tuple[str, str], list[str]]]:
    modules = _modules()
    known = set(modules)
    edges: dict[str, set[str]] = defaultdict(set)
    where: dict[tuple[str, str], list[str]] = defaultdict(list)
    for name, path in modules.items():
        for target, line in _imports(name, path, known):
            if target != name and target in known:
                edges[name].add(target)
                where[(name, target)].append(f"{path.relative_to(ROOT.parent)}:{line}")
    return edges, where


def _describe(cycle: list[str], edges: dict[str, set[str]], where: dict, unit=lambda m: m) -> str:
    members = set(cycle)
    lines = [" ↔ ".join(cycle)]
    for (src, dst), places in sorted(where.items()):
        if unit(src) in members and unit(dst) in members and unit(src) != unit(dst):
            lines.append(f"    {src} → {dst}  ({places[0]})")
    return "\n".join(lines)


def package_cycles() -> list[str]:
    edges, where = _graph()
    units: dict[str, set[str]] = defaultdict(set)
    for src, targets in edges.items():
        for dst in targets:
            if _unit(src) != _unit(dst):
                units[_unit(src)].add(_unit(dst))
    return [_describe(c, edges, where, _unit) for c in _cycles(units)]


def module_cycles() -> list[str]:
    """Cycles among the modules of one package (imports that stay inside it)."""
    edges, where = _graph()
    inner = {src: {dst for dst in targets if _unit(dst) == _unit(src)} for src, targets in edges.items()}
    return [_describe(c, edges, where) for c in _cycles(inner)]


def test_the_walker_sees_a_cycle_when_there_is_one():
    """The detector itself: a two-node and a three-node cycle are found, a chain is not."""
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": {"c"}}) == []
    edges, _ = _graph()
    assert "autoresearch.campaign.loop" in edges and edges["autoresearch.campaign.loop"], "imports were read"


def test_no_import_cycle_between_packages():
    cycles = package_cycles()
    assert not cycles, "import cycles between packages:\n" + "\n".join(cycles)


def test_no_import_cycle_inside_a_package():
    cycles = module_cycles()
    assert not cycles, "import cycles between modules:\n" + "\n".join(cycles)
