"""A live terminal view of a campaign (rich): the trial in flight and the leaderboard.

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
        self.current: Optional[str] = None
        self.current_overrides = ""
        self.last_row: dict[str, Any] = {}
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
        self.current, self.current_overrides, self.last_row = label, overrides, {}
        self._refresh()

    def progress(self, row: dict[str, Any]) -> None:
        self.last_row = {**self.last_row, **row}
        self._refresh()

    def end_trial(self, label: str, result) -> None:
        self.finished.append((label, self.current_overrides, result.val_bpb, result.status))
        self.current = None
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
        if self.current:
            row = self.last_row
            parts.append(Text(
                f"▶ {self.current}  {self.current_overrides}  progress {100 * row.get('progress', 0):.0f}%  "
                f"loss {row.get('train_loss', float('nan')):.3f}  val_bpb {row.get('val_bpb', float('nan')):.4f}"))
        table = Table(title="leaderboard", show_lines=False)
        for col in ("trial", "change", "val_bpb", "status"):
            table.add_column(col)
        scored = sorted((f for f in self.finished if f[2] == f[2]), key=lambda f: f[2])[:8]
        for label, overrides, bpb, status in scored:
            table.add_row(label, overrides[:60], f"{bpb:.4f}", status)
        parts.append(table)
        return Group(*parts)
