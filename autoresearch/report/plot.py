"""``progress.png``: where each trial landed against the baseline band, and every learning curve.

Left: one point per baseline or screening run in the order they ran — filled for a final score,
hollow for a partial one (stopped by the critic) — over the baseline's mean ± σ band; the
incumbent is a step line that moves only when a discovery is validated (at the mean of its fresh
validation seeds), never with a lucky seed. Right: val_bpb against budget progress for every run,
so a stopped run is seen where it stood when it was stopped.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

from autoresearch.report.read import CampaignRecord

KEPT, STOPPED, DISCARDED, BASELINE = "tab:green", "tab:orange", "0.45", "0.25"


def load_pyplot():
    """``matplotlib.pyplot`` on the file-only Agg backend (~1.4 s to import the first time)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_progress(record: CampaignRecord, path: Path) -> Optional[Path]:
    plt = load_pyplot()

    rows = [t for t in record.trials if t.kind in ("baseline", "hypothesis")]
    curves = record.curves
    if not rows:
        return None
    fig, (ax, axc) = plt.subplots(1, 2, figsize=(14, 5.5), gridspec_kw={"width_ratios": [3, 2]})
    band = record.baseline
    finals = [t.val_bpb for t in rows if t.finished]
    lo = min(finals + [band.mean - 2 * (band.std if math.isfinite(band.std) else 0)]) if finals else None
    hi = max(finals + [band.mean + 2 * (band.std if math.isfinite(band.std) else 0)]) if finals else None

    if band.values:
        std = band.std if math.isfinite(band.std) else 0.0
        ax.axhspan(band.mean - std, band.mean + std, color="0.85", zorder=0, label=f"baseline mean ± σ ({len(band.values)} seeds)")
        ax.axhline(band.mean, color="0.6", linewidth=0.8, zorder=1)
    # The incumbent: the baseline's mean, then each validated discovery's mean over its fresh seeds.
    steps_x, steps_y = [0], [band.mean if band.values else math.nan]
    for f in sorted(record.validated, key=lambda f: f.id):
        after = next((i for i, t in enumerate(rows) if f.screening_trial is not None and t.id > f.screening_trial), len(rows))
        candidate = f.details.get("candidate") or []
        level = sum(candidate) / len(candidate) if candidate else math.nan
        steps_x.append(after - 0.5)
        steps_y.append(level)
        ax.annotate(_short(f.overrides), (after - 0.5, level), textcoords="offset points", xytext=(-4, -12),
                    fontsize=8, color=KEPT, ha="right")  # to the left of the step: the panel's edge is near
    steps_x.append(len(rows) - 0.5)
    steps_y.append(steps_y[-1])
    ax.step(steps_x, steps_y, where="post", color=KEPT, linewidth=1.8, label="incumbent (moves on validation only)")

    top = None
    if hi is not None:
        pad = max((hi - lo) * 0.15, 0.01)
        top = hi + pad
        ax.set_ylim(lo - pad, top)
    for i, t in enumerate(rows):
        if t.val_bpb is None:
            ax.scatter([i], [top if top is not None else 0], marker="x", color="tab:red", zorder=3)
            continue
        colour = BASELINE if t.kind == "baseline" else (KEPT if t.decision in ("keep", "candidate") else
                                                          (STOPPED if t.partial else DISCARDED))
        y = t.val_bpb
        if top is not None and y > top:  # a partial score far above the band: pinned to the top edge
            ax.scatter([i], [top], marker="^", facecolors="none", edgecolors=colour, zorder=3)
            ax.annotate(f"{100 * t.progress:.0f}%", (i, top), textcoords="offset points", xytext=(0, -11),
                        fontsize=6, ha="center", color=colour)
            continue
        if t.partial:
            ax.scatter([i], [y], s=30, facecolors="none", edgecolors=colour, zorder=3)
        elif t.kind == "baseline":
            ax.scatter([i], [y], s=30, marker="s", color=colour, zorder=3)
        else:
            ax.scatter([i], [y], s=36, color=colour, zorder=3)
    ax.scatter([], [], color=BASELINE, marker="s", label="baseline seeds")
    ax.scatter([], [], color=KEPT, label="candidate / kept")
    ax.scatter([], [], color=DISCARDED, label="finished, discarded")
    ax.scatter([], [], facecolors="none", edgecolors=STOPPED, label="stopped early (partial score)")
    ax.scatter([], [], color="tab:red", marker="x", label="failed")
    ax.set_xticks(range(len(rows)), [t.label for t in rows], rotation=90, fontsize=6)
    ax.set_xlabel("baseline and screening runs, in order")
    ax.set_ylabel("val_bpb (lower is better)")
    ax.set_title(f"{record.name}: each run against the baseline band")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=4, fontsize=7, frameon=False)

    for t in rows:
        curve = curves.get(t.id) or []
        if not curve:
            continue
        xs, ys = zip(*curve)
        if t.kind == "baseline":
            axc.plot(xs, ys, color=BASELINE, linewidth=1.0, alpha=0.8)
        elif t.decision in ("keep", "candidate"):
            axc.plot(xs, ys, color=KEPT, linewidth=1.6)
        else:
            axc.plot(xs, ys, color=STOPPED if t.partial else DISCARDED, linewidth=0.8, alpha=0.7)
            if t.partial:
                axc.scatter([xs[-1]], [ys[-1]], s=14, facecolors="none", edgecolors=STOPPED)
    late = sorted(y for c in curves.values() for p, y in c if p >= 0.2)
    if late:  # the first evaluations sit far above the rest; the interesting part is below them
        top_c = late[-1] if late[-1] < 1.5 * late[len(late) // 2] else late[int(0.95 * (len(late) - 1))]
        axc.set_ylim(late[0] - 0.05 * (top_c - late[0] + 0.01), top_c + 0.1 * (top_c - late[0] + 0.01))
    axc.set_xlabel("progress (fraction of the trial budget)")
    axc.set_ylabel("val_bpb")
    axc.set_title("learning curves (grey: baseline, green: candidates)", fontsize=10)
    axc.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _short(overrides: dict) -> str:
    text = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in sorted(overrides.items()))
    return text if len(text) <= 40 else text[:39] + "…"
