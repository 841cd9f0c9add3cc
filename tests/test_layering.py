"""Issue 15: the arrows this branch removed stay removed. A static walk of every ``import`` in
``autoresearch/`` (function-level ones included: a lazy import is still a dependency)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

import autoresearch

PACKAGE = Path(autoresearch.__file__).resolve().parent


def _room(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "autoresearch" and len(parts) > 1 else None


def _graph() -> dict[str, set[str]]:
    """room → rooms it imports (a room is a top-level package or module of autoresearch)."""
    edges: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        here = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else [])
            for name in names:
                room = _room(name)
                if room and room != here:
                    edges[here].add(room)
    assert "experiment" in edges and "campaign" in edges, f"no imports found under {PACKAGE}"
    return edges


def _reaches(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_safety_is_a_leaf():
    assert _graph().get("safety", set()) == set()


@pytest.mark.parametrize("low, high", [("experiment", "repro"), ("provenance", "repro"), ("provenance", "experiment"),
                                       ("store", "knowledge")])
def test_a_low_room_never_reaches_a_high_one(low, high):
    graph = _graph()
    assert high not in _reaches(graph, low), f"{low} imports (through {sorted(graph[low])}) {high}, which imports {low}"
