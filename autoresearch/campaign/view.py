"""A live terminal view of a campaign (rich): the trials in flight and the leaderboard.

On a terminal it redraws in place; elsewhere (CI, a log file, nohup) it stays silent and the
campaign's log lines tell the same story.
"""

from __future__ import annotations

import sys
from typing import Any, Optional

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text


class CampaignView:
    def __init__(self, name: str, max_trials: int, *, interactive: Optional[bool] = None):
        self.name = name
        self.max_trials = max_trials
        self.interactive = sys.stdout.isatty() if interactive is None else interactive
        # label → (overrides, last curve row) of each trial in flight (one per worker)
        self.running: dict[str, tuple[str, dict[str, Any]]] = {}
        self.finished: list[tuple[str, str, float, str]] = []
        self.refusals = 0
        self._live: Optional[Live] = None

    def __enter__(self) -> "CampaignView":
        if self.interactive:
            self._live = Live(self._render(), console=Console(), refresh_per_second=2, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._live is not None:
            self._live.update(self._render())
            self._live.__exit__(*exc)
            self._live = None

    def start_trial(self, label: str, overrides: str) -> None:
        self.running[label] = (overrides, {})
        self._refresh()

    def progress(self, label: str, row: dict[str, Any]) -> None:
        overrides, last = self.running.get(label, ("", {}))
        self.running[label] = (overrides, {**last, **row})
        self._refresh()

    def end_trial(self, label: str, result) -> None:
        overrides, _ = self.running.pop(label, ("", {}))
        self.finished.append((label, overrides, result.val_bpb, result.status))
        self._refresh()

    def refused(self, reason: str) -> None:
        self.refusals += 1
        self._refresh()

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._render())

    def _render(self) -> Group:
        head = Text(f"campaign {self.name}: {len(self.finished)} trials finished, {self.refusals} proposals refused",
                    style="bold")
        parts: list[Any] = [head]
        for label, (overrides, row) in self.running.items():
            parts.append(Text(
                f"▶ {label}  {overrides}  progress {100 * row.get('progress', 0):.0f}%  "
                f"loss {row.get('train_loss', float('nan')):.3f}  val_bpb {row.get('val_bpb', float('nan')):.4f}"))
        table = Table(title="leaderboard", show_lines=False)
        for col in ("trial", "change", "val_bpb", "status"):
            table.add_column(col)
        scored = sorted((f for f in self.finished if f[2] == f[2]), key=lambda f: f[2])[:8]
        for label, overrides, bpb, status in scored:
            table.add_row(label, overrides[:60], f"{bpb:.4f}", status)
        parts.append(table)
        return Group(*parts)
