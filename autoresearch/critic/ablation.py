"""Ablation graph: which of a discovery's changed keys carries its effect?

A validated discovery often changes several keys at once. Leave-one-out ablations (re-run the
discovery without one key) attribute the effect, but keys are not independent: ``model.rope_base``
means nothing once ``model.pos_encoding`` is reverted from ``rope``. The search space's
``depends_on`` edges form a DAG; removing a parent therefore removes every override key below it
(its children, grandchildren, ... — following edges through keys the discovery did not change,
too), and the ablation of a parent measures the whole group.

Attribution is additive over that DAG. Given each ablation's *drop* — the discovery's effect
minus the effect measured without the removed group — a key's attributed effect is its group's
drop minus what its descendants were attributed, computed children first. In a tree that is
"the group's drop minus its children's groups' drops"; the attributed effects of a group always
sum to its drop.
"""

from __future__ import annotations

import graphlib
import heapq
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping


@dataclass(frozen=True, kw_only=True)
class Ablation:
    """One leave-one-out run: the discovery's overrides without the ``removed`` keys."""

    removed: tuple[str, ...]  # the key itself first, then its override descendants (parents first)
    overrides: dict[str, Any]

    @property
    def key(self) -> str:
        return self.removed[0]


class AblationGraph:
    """The DAG of ``depends_on`` edges, seen from one discovery's override ``keys``."""

    def __init__(self, edges: Iterable[tuple[str, str]], keys: Iterable[str]):
        self.edges = [(str(p), str(c)) for p, c in edges]
        self.keys = set(keys)
        self._children: dict[str, list[str]] = {}
        for parent, child in self.edges:
            self._children.setdefault(parent, []).append(child)
        self._order = self._topological(self.keys | {n for e in self.edges for n in e})
        self.attributed: dict[str, float] = {}

    # ------------------------------------------------------------------ structure
    def _topological(self, nodes: set[str]) -> list[str]:
        """Parents before children; ties in name order, so schedules are reproducible."""
        graph: dict[str, set[str]] = {n: set() for n in nodes}
        for p, c in self.edges:
            graph[c].add(p)
        sorter = graphlib.TopologicalSorter(graph)
        try:
            sorter.prepare()
        except graphlib.CycleError as err:
            stuck = sorted(set(err.args[1]))
            raise ValueError(f"depends_on edges form a cycle through {stuck}; fix the search space") from None
        ready: list[str] = []
        order: list[str] = []
        while sorter.is_active():
            for node in sorter.get_ready():
                heapq.heappush(ready, node)
            node = heapq.heappop(ready)
            order.append(node)
            sorter.done(node)
        return order

    def descendants(self, key: str) -> set[str]:
        """Every node reachable from ``key`` along ``depends_on`` edges (keys or not)."""
        seen: set[str] = set()
        stack = list(self._children.get(key, []))
        while stack:
            node = stack.pop()
            if node not in seen:
                seen.add(node)
                stack.extend(self._children.get(node, []))
        return seen

    def group(self, key: str) -> tuple[str, ...]:
        """``key`` and its override descendants, in topological order: what removing ``key`` removes."""
        below = self.descendants(key) & self.keys
        return (key, *(n for n in self._order if n in below))

    # ------------------------------------------------------------------ schedule
    def leave_one_out(self, overrides: Mapping[str, Any]) -> list[Ablation]:
        """One ablation per override key, parents first; each drops the key's whole group."""
        unknown = set(overrides) - self.keys
        if unknown:
            raise ValueError(f"overrides name keys the graph was not built with: {sorted(unknown)}")
        ablations = []
        for key in (n for n in self._order if n in overrides):
            removed = self.group(key)
            ablations.append(
                Ablation(removed=removed, overrides={k: v for k, v in overrides.items() if k not in removed})
            )
        return ablations

    # ------------------------------------------------------------------ attribution
    def attribute(self, effects: Mapping[str | tuple[str, ...], float]) -> dict[str, float]:
        """Attributed effect (bpb) per key from each ablation's drop (see the module docstring).

        ``effects`` maps an ablation — by its key or by its ``removed`` tuple — to its drop: the
        discovery's effect minus the effect of the ablated configuration. Keys without a
        measured ablation get nan, and so does every key whose descendants include one.
        """
        drops: dict[str, float] = {}
        for k, v in effects.items():
            key = k[0] if isinstance(k, tuple) else k
            if key not in self.keys:
                raise ValueError(f"effect given for {key!r}, which is not one of the discovery's keys")
            drops[key] = float(v)
        out: dict[str, float] = {}
        for key in reversed([n for n in self._order if n in self.keys]):
            below = self.group(key)[1:]
            own = drops.get(key, math.nan) - sum(out[d] for d in below)
            out[key] = own
        self.attributed = {k: out[k] for k in self._order if k in out}
        return dict(self.attributed)

    # ------------------------------------------------------------------ drawing
    def draw(self, path: Path, attributed: Mapping[str, float] | None = None, *, title: str = "") -> Path:
        """Draw the discovery's keys (and nodes linking them) as a layered DAG to a PNG.

        Nodes are labelled with ``attributed`` effects, by default those of the last ``attribute``.
        """
        labels = dict(self.attributed if attributed is None else attributed)
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        nodes = self._linking_nodes()
        depth: dict[str, int] = {}
        for n in self._order:
            if n in nodes:
                depth[n] = max((depth[p] + 1 for p, c in self.edges if c == n and p in depth), default=0)
        layers: dict[int, list[str]] = {}
        for n, d in depth.items():
            layers.setdefault(d, []).append(n)
        pos = {}
        for d, members in layers.items():
            for i, n in enumerate(members):
                pos[n] = (i - (len(members) - 1) / 2.0, -float(d))
        width = max(len(m) for m in layers.values()) if layers else 1
        fig = Figure(figsize=(max(4.0, 2.8 * width), max(2.5, 1.6 * len(layers))), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        for p, c in self.edges:
            if p in pos and c in pos:
                ax.annotate("", xy=pos[c], xytext=pos[p],
                            arrowprops=dict(arrowstyle="-|>", color="0.4", shrinkA=22, shrinkB=22))
        for n, (x, y) in pos.items():
            value = labels.get(n)
            label = n if value is None else f"{n}\n{value:+.4f} bpb" if math.isfinite(value) else f"{n}\n(no ablation)"
            face = "#cfe8cf" if n in self.keys else "#eeeeee"
            ax.text(x, y, label, ha="center", va="center", fontsize=9,
                    bbox=dict(boxstyle="round,pad=0.5", fc=face, ec="0.3"))
        xs = [x for x, _ in pos.values()] or [0.0]
        ys = [y for _, y in pos.values()] or [0.0]
        ax.set_xlim(min(xs) - 0.8, max(xs) + 0.8)
        ax.set_ylim(min(ys) - 0.6, max(ys) + 0.6)
        ax.axis("off")
        if title:
            ax.set_title(title)
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
        return path

    def _linking_nodes(self) -> set[str]:
        """The keys plus every node on an edge path from one key to another."""
        nodes = set(self.keys)
        for key in self.keys:
            for node in self.descendants(key):
                if node not in self.keys and self.descendants(node) & self.keys:
                    nodes.add(node)
        return nodes
