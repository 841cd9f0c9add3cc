"""``results.tsv``: autoresearch's five columns, plus the budget share each score was taken at.

``commit val_bpb memory_gb status description progress``: ``commit`` is the trial id (``t0012``),
``status`` is ``keep``/``discard`` from the campaign's decision, ``stopped`` for a run the critic
stopped early — its val_bpb is a *partial* score, taken at ``progress`` < 1 of the budget, and
must not be compared with final ones — ``crash`` for crashed, timed-out, diverged and
interrupted runs (val_bpb and memory read 0, as in autoresearch), and ``cancelled`` (val_bpb 0)
for a run an idle worker started early that its job then did not need. Running trials are left out.
"""

from __future__ import annotations

from pathlib import Path

from autoresearch.report.read import CampaignRecord
from autoresearch.safety import terminal_text

COLUMNS = ("commit", "val_bpb", "memory_gb", "status", "description", "progress")


def write_results_tsv(record: CampaignRecord, path: Path) -> Path:
    lines = ["\t".join(COLUMNS)]
    for t in record.trials:
        if t.status == "running":
            continue
        if t.cancelled:
            status, bpb, memory, progress = "cancelled", 0.0, 0.0, t.progress
        elif t.failed or t.val_bpb is None:
            status, bpb, memory, progress = "crash", 0.0, 0.0, t.progress
        else:
            status = "stopped" if t.partial else ("keep" if t.decision == "keep" else "discard")
            bpb, memory, progress = t.val_bpb, t.peak_memory_mb / 1024.0, t.progress
        lines.append(f"{t.label}\t{bpb:.6f}\t{memory:.1f}\t{status}\t{_describe(t)}\t{progress:.2f}")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(out)  # atomic: a reader never sees half a file
    return out


def _describe(t) -> str:
    text = t.rationale or ", ".join(f"{k}={v}" for k, v in sorted(t.overrides.items())) or t.kind
    if t.kind not in ("baseline", "hypothesis"):
        text = f"[{t.kind} seed {t.seed}] {text}"
    # one line, no tabs (the format is tab-separated), escape sequences visible (people cat it)
    return terminal_text(" ".join(text.split()), keep_tabs=False, limit=300)
