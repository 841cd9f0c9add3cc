"""``report.md`` and ``progress.png`` for a campaign, from the store alone.

Written at the end of every campaign and on demand (``python -m autoresearch.report DIR``), so a
person who wakes up to a finished — or a killed — campaign sees the same account: what was
tried, what the critic concluded, and how far the search got.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Optional

from autoresearch.result import FAILED_STATUSES as FAILED
from autoresearch.result import INTERRUPTED

log = logging.getLogger(__name__)


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _change(overrides: dict[str, Any]) -> str:
    return ", ".join(f"{k.split('.')[-1]}={v}" for k, v in sorted(overrides.items())) or "baseline"


def plot_progress(trials: list, path: Path, title: str) -> Optional[Path]:
    """val_bpb per trial in order, the running best, kept vs discarded, each kept change annotated."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [t for t in trials if t.kind in ("baseline", "hypothesis")]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(11, 5.5))
    xs, ys, best_x, best_y = [], [], [], []
    best = math.inf
    for i, t in enumerate(rows):
        v = t.metrics.get("val_bpb")
        if not _finite(v):
            ax.scatter([i], [ax.get_ylim()[1] if ys else 0], marker="x", color="0.6", zorder=2)
            continue
        kept = t.kind == "baseline" or t.decision in ("keep", "candidate")
        stopped = t.status == "early_stopped"
        ax.scatter([i], [v], s=36 if kept else 18, zorder=3,
                   color="tab:green" if kept else ("tab:orange" if stopped else "0.55"),
                   label=None)
        xs.append(i)
        ys.append(v)
        if t.status == "completed" and v < best:
            best = v
            if t.kind == "hypothesis":
                ax.annotate(_change(t.overrides)[:40], (i, v), textcoords="offset points", xytext=(4, -12),
                            fontsize=7, rotation=-20, color="tab:green")
        best_x.append(i)
        best_y.append(best)
    ax.step(best_x, best_y, where="post", color="tab:green", linewidth=1.5, label="running best")
    ax.scatter([], [], color="tab:green", label="kept / candidate")
    ax.scatter([], [], color="0.55", label="discarded")
    ax.scatter([], [], color="tab:orange", label="early-stopped (partial score)")
    ax.set_xlabel("trial (in order)")
    ax.set_ylabel("val_bpb (lower is better)")
    ax.set_title(title)
    finite = [y for y in ys if _finite(y)]
    if finite:
        lo, hi = min(finite), sorted(finite)[int(0.9 * (len(finite) - 1))]
        pad = max((hi - lo) * 0.15, 0.01)
        ax.set_ylim(lo - pad, hi + pad)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_report(campaign_dir: Path, store, name: str) -> Path:
    """Write ``report.md`` (+ ``progress.png``) into ``campaign_dir`` and return the report's path."""
    campaign_dir = Path(campaign_dir)
    campaign = store.campaign(name)
    if campaign is None:
        raise ValueError(f"no campaign named {name!r} in the store; check knowledge.db")
    cid = campaign.id
    trials = store.trials(cid)
    hypotheses = store.hypotheses(cid)
    findings = store.findings(cid)
    calls = store.agent_calls(cid)
    baseline = [t for t in trials if t.kind == "baseline" and t.status == "completed"]
    base_vals = [t.metrics["val_bpb"] for t in baseline if _finite(t.metrics.get("val_bpb"))]
    screened = [t for t in trials if t.kind == "hypothesis"]
    scored = [t for t in screened if t.status == "completed" and _finite(t.metrics.get("val_bpb"))]
    png = plot_progress(trials, campaign_dir / "progress.png", f"{name}: val_bpb per trial")

    lines = [f"# Campaign `{name}`", ""]
    if base_vals:
        mean = sum(base_vals) / len(base_vals)
        std = (sum((v - mean) ** 2 for v in base_vals) / (len(base_vals) - 1)) ** 0.5 if len(base_vals) > 1 else float("nan")
        lines.append(f"- Baseline val_bpb: **{base_vals[0]:.4f}** (mean {mean:.4f} over {len(base_vals)} seeds; "
                     f"noise floor σ = {std:.4f})")
    statuses: dict[str, int] = {}
    for t in trials:
        statuses[t.status] = statuses.get(t.status, 0) + 1
    refused = [h for h in hypotheses if h.status in ("refused", "flagged")]
    lines += [
        f"- Trials: {len(trials)} ({', '.join(f'{k} {v}' for k, v in sorted(statuses.items()))}); "
        f"hypotheses screened: {len(screened)}; proposals refused: {len(refused)}",
        f"- Agent calls: {len(calls)} (failed {sum(1 for c in calls if not c.ok)}, "
        f"cost ${sum(c.cost_usd or 0 for c in calls):.4f})",
        "",
    ]
    validated = [f for f in findings if f.status == "validated"]
    lines.append("## Verdict")
    lines.append("")
    if validated:
        best = max(validated, key=lambda f: f.effect)
        lines.append(f"**{len(validated)} validated discover{'y' if len(validated) == 1 else 'ies'}.** The strongest "
                     f"improves val_bpb by {best.effect:.4f} (95% CI [{best.ci_low:.4f}, {best.ci_high:.4f}]) over "
                     f"the configuration it was tested against.")
    elif scored and base_vals and min(t.metrics["val_bpb"] for t in scored) < base_vals[0]:
        lines.append("Nothing beat the baseline by more than the noise floor *and* survived multi-seed validation: "
                     "no discovery is claimed. Single-seed improvements below are screening results, not findings.")
    else:
        lines.append("No hypothesis beat the baseline. No discovery is claimed.")
    lines.append("")
    if findings:
        lines += ["## Findings (multi-seed, Benjamini–Hochberg across the campaign)", "",
                  "| hypothesis | change | status | effect (bpb) | 95% CI | p | q | seeds | test_bpb |",
                  "|---|---|---|---|---|---|---|---|---|"]
        hyp_by_id = {h.id: h for h in hypotheses}
        for f in sorted(findings, key=lambda f: -f.effect):
            h = hyp_by_id.get(f.hypothesis_id)
            change = _change(h.overrides) if h else "?"
            q = f"{f.q_value:.3g}" if f.q_value is not None else "—"
            test = f"{f.test_bpb:.4f}" if f.test_bpb is not None else "—"
            lines.append(f"| h{f.hypothesis_id} | {change} | **{f.status}** | {f.effect:+.4f} | "
                         f"[{f.ci_low:+.4f}, {f.ci_high:+.4f}] | {f.p_value:.3g} | {q} | {f.n} | {test} |")
            ablation = (f.details or {}).get("ablation")
            if ablation:
                parts = ", ".join(f"{k}: {v:+.4f}" for k, v in ablation.items())
                lines.append(f"|  | ablation (bpb lost without each key) | {parts} | | | | | | |")
        lines.append("")
    lines += ["## Leaderboard (screening runs, first seed)", "",
              "| trial | change | val_bpb | Δ vs baseline | status | decision | agent | rationale |",
              "|---|---|---|---|---|---|---|---|"]
    hyp_by_id = {h.id: h for h in hypotheses}
    for t in sorted(scored, key=lambda t: t.metrics["val_bpb"])[:25]:
        h = hyp_by_id.get(t.hypothesis_id)
        delta = t.metrics["val_bpb"] - base_vals[0] if base_vals else float("nan")
        rationale = (h.rationale if h else "").replace("|", "/").replace("\n", " ")[:90]
        lines.append(f"| [t{t.id:04d}]({Path(t.run_dir).relative_to(campaign_dir) if t.run_dir.startswith(str(campaign_dir)) else t.run_dir}) "
                     f"| {_change(t.overrides)} | {t.metrics['val_bpb']:.4f} | {delta:+.4f} | {t.status} | "
                     f"{t.decision or ''} | {h.agent if h else ''} | {rationale} |")
    stopped = [t for t in screened if t.status == "early_stopped"]
    failed = [t for t in trials if t.status in FAILED or t.status == INTERRUPTED]
    if stopped:
        saved = sum(1 - float(t.metrics.get("progress", 1) or 1) for t in stopped)
        lines += ["", f"## Early-stopped: {len(stopped)} trials (≈{saved:.1f} trial budgets saved)", ""]
        for t in stopped:
            lines.append(f"- t{t.id:04d} {_change(t.overrides)} at {100 * float(t.metrics.get('progress', 0)):.0f}%: {t.error or ''}")
    if failed:
        lines += ["", f"## Failed or interrupted: {len(failed)}", ""]
        for t in failed:
            first = (t.error or "").strip().splitlines()[:1]
            lines.append(f"- t{t.id:04d} {t.kind} {_change(t.overrides)}: {t.status} — {first[0] if first else ''}")
    if refused:
        lines += ["", f"## Refused proposals: {len(refused)}", ""]
        for h in refused[-20:]:
            lines.append(f"- {h.refusal_code}: {h.refusal_reason}")
    if png:
        lines += ["", "## Progress", "", "![progress](progress.png)"]
    lines += ["", f"Reproduce any trial: `python -m autoresearch.repro reproduce {campaign_dir}/trials/tNNNN`; "
              "promote one: `python -m autoresearch.repro promote ...` then `dvc repro`.", ""]
    path = campaign_dir / "report.md"
    path.write_text("\n".join(lines))
    log.info("wrote %s", path)
    return path
