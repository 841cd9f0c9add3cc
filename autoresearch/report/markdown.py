"""``report.md``: the campaign told to a person who was asleep while it ran.

Order: the verdict first (what was found, how sure, how to reproduce it), then the evidence
(baseline band, findings, what each key did), then every trial. Everything that came from an
agent, a file or a crashed process — rationales, refusal reasons, error tails, even override
values — goes through ``autoresearch.safety``'s Markdown escaping, so it can neither render as
HTML nor forge a heading or a table row.
"""

from __future__ import annotations

import math
import shlex
from pathlib import Path
from typing import Any, Optional

from autoresearch.report.read import SIGMAS, CampaignRecord, FindingView, TrialView
from autoresearch.result import CANCELLED_PREFIX
from autoresearch.safety import markdown_code, markdown_inline, safe_name

REFUSALS_SHOWN = 20


def render(record: CampaignRecord, *, plot: Optional[Path]) -> str:
    lines = [f"# Campaign {_md(record.name)}", ""]
    if record.description:
        lines += [f"> {_md(record.description)}", ""]
    lines += _summary(record)
    lines += _verdict(record)
    lines += _baseline(record)
    lines += _findings(record)
    lines += _lessons(record)
    lines += _leaderboard(record)
    lines += _stopped(record)
    lines += _all_trials(record)
    lines += _failed(record)
    lines += _cancelled(record)
    lines += _refusals(record)
    if plot is not None:
        lines += ["## Progress", "", f"![progress]({plot.name})", "",
                  "Each point is one trial's final score (filled) or the partial score where the critic stopped "
                  "it (hollow, at the progress it reached — not comparable with final scores); the grey band "
                  "is the baseline's mean ± σ over seeds; the green steps are the incumbent, which moves only "
                  "when a discovery is validated. The right panel shows every learning curve.", ""]
    lines += [f"Reproduce any trial: `python -m autoresearch.repro reproduce {_shell(record.campaign_dir)}/trials/tNNNN`.", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------- sections
def _summary(r: CampaignRecord) -> list[str]:
    statuses: dict[str, int] = {}
    for t in r.trials:
        statuses[t.outcome] = statuses.get(t.outcome, 0) + 1
    kinds: dict[str, int] = {}
    for t in r.trials:
        kinds[t.kind] = kinds.get(t.kind, 0) + 1
    lines = [
        f"- Search space: {_md(Path(r.search_space).stem)}; trials: {len(r.trials)} "
        f"({', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))}); "
        f"outcomes: {', '.join(f'{k} {v}' for k, v in sorted(statuses.items()))}",
        f"- Proposals refused by the gate: {len(r.refusals)}; agent calls: {r.agent_calls} "
        f"(failed {r.agent_failures}, cost ${r.agent_cost_usd:.4f})",
    ]
    for event in r.agent_events:
        lines.append(f"- **An agent fell back** at {_md(event)}")
    return lines + [""]


def _verdict(r: CampaignRecord) -> list[str]:
    lines = ["## Verdict", ""]
    validated = r.validated
    if validated:
        lines.append(f"**{len(validated)} validated discover{'y' if len(validated) == 1 else 'ies'}** "
                     f"(multi-seed, Benjamini–Hochberg across the {len(r.findings)} tested):")
        lines.append("")
        for f in sorted(validated, key=lambda f: -f.effect):
            when = f"; proposal → verdict {_duration(f.seconds_to_verdict)}" if f.seconds_to_verdict is not None else ""
            test = f"; hidden test split {f.test_bpb:.4f} bpb" if f.test_bpb is not None else ""
            scale = "".join(f"; at ×{_md(r.get('factor'))} the model: {_md(r.get('verdict', '?'))}"
                            for r in f.details.get("scale") or [])
            lines.append(f"- h{f.hypothesis_id}: {_change(f.overrides)} improves val_bpb by **{f.effect:.4f}** bpb "
                         f"({_ci(f)}, q = {_num(f.q_value)}, {f.n} seeds{test}{scale}{when})")
    else:
        tested = len(r.findings)
        finished = [t for t in r.screened if t.finished]
        better = [t for t in finished if math.isfinite(r.baseline.mean) and t.val_bpb < r.baseline.mean]
        lines.append("**No discovery is claimed.** " + (
            f"{tested} hypothes{'is' if tested == 1 else 'es'} reached multi-seed validation and none held up. "
            if tested else "No hypothesis beat the baseline by more than the noise floor on its screening run. ")
            + f"{len(r.screened)} screened, {len(finished)} ran their whole budget"
            + (f", {len(better)} of them scored below the baseline's mean on one seed — screening results, not findings."
               if better else "."))
    return lines + [""]


def _screening_rule(margin: float) -> str:
    if margin > 0:
        return (f"A screening run must beat the incumbent by more than {margin:g}σ before it is re-run on fresh "
                "seeds (`critic.screening_margin`).")
    return "Any screening run that beats the incumbent is re-run on fresh seeds (`critic.screening_margin: 0`)."


def _baseline(r: CampaignRecord) -> list[str]:
    band = r.baseline
    if not band.values:
        return ["## Baseline", "", "The baseline has not finished a run yet.", ""]
    spread = f"σ = {band.std:.4f}" if math.isfinite(band.std) else "σ unknown (one seed)"
    return ["## Baseline", "",
            f"val_bpb **{band.mean:.4f} ± {band.std:.4f}** (mean ± σ over {len(band.values)} seeds: "
            f"{', '.join(f'{v:.4f}' for v in band.values)}; {spread}). {_screening_rule(r.screening_margin)} "
            f"Differences within {SIGMAS:g}σ are read as noise below.",
            ""]


def _findings(r: CampaignRecord) -> list[str]:
    if not r.findings:
        return []
    level = r.findings[0].ci_level
    lines = ["## Findings (fresh seeds, paired with the incumbent; Benjamini–Hochberg across the campaign)", "",
             f"| hypothesis | change | verdict | effect (bpb) | {100 * level:.0f}% CI | p | q | seeds | test_bpb | proposal → verdict |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for f in sorted(r.findings, key=lambda f: -f.effect):
        lines.append(f"| h{f.hypothesis_id} | {_change(f.overrides)} | **{f.status}** | {f.effect:+.4f} | "
                     f"[{f.ci_low:+.4f}, {f.ci_high:+.4f}] | {_num(f.p_value)} | {_num(f.q_value)} | {f.n} | "
                     f"{_bpb(f.test_bpb)} | {_duration(f.seconds_to_verdict)} |")
    lines.append("")
    lines.append("Effect = incumbent − candidate (positive: the change is better). p is one-sided; the interval is "
                 "two-sided at the level shown, so its lower end is the one-sided bound the verdict uses.")
    lines.append("")
    for f in r.validated:
        lines += _discovery(r, f)
    return lines


def _discovery(r: CampaignRecord, f: FindingView) -> list[str]:
    d = f.details
    lines = [f"### h{f.hypothesis_id}: {_change(f.overrides)}", ""]
    seeds, cand, ref = d.get("seeds") or [], d.get("candidate") or [], d.get("reference") or []
    if seeds and len(cand) == len(ref) == len(seeds):
        against = f"h{d['against']}" if d.get("against") else "the baseline"
        lines.append(f"- Per seed, candidate vs {against}: " + ", ".join(
            f"{s}: {c:.4f} vs {b:.4f}" for s, c, b in zip(seeds, cand, ref)))
    if d.get("reason"):
        lines.append(f"- Note: {_md(d['reason'])}")
    ablation = d.get("ablation")
    if ablation:
        lines.append("- Ablation (bpb lost when the key is removed, along the dependency graph): " + ", ".join(
            f"{_md(k)} {_num(v, '+.4f')}" for k, v in ablation.items()))
    for rung in d.get("scale") or []:
        model = ", ".join(f"{str(k).split('.')[-1]}={v}" for k, v in (rung.get("model") or {}).items())
        lines.append(f"- Scale check at ×{_md(rung.get('factor', '?'))} the model ({_md(model)}): " + _scale_text(rung))
    if f.test_bpb is not None:
        lines.append(f"- Hidden test split (scored once, never used to select): {f.test_bpb:.4f} bpb")
    if f.seconds_to_verdict is not None:
        lines.append(f"- Time to insight: {_duration(f.seconds_to_verdict)} from proposal to verdict")
    name = safe_name(f"{r.name}_h{f.hypothesis_id}")
    lines += ["", "Reproduce it (from the repository root):", "",
              "```bash",
              f"python -m autoresearch.repro promote {_shell(r.campaign_dir)} {name} --finding {f.id}",
              "dvc repro && dvc metrics show",
              "```", ""]
    return lines


def _scale_text(rung: dict[str, Any]) -> str:
    """One rung of the scale ladder: the paired effect at that size and whether the finding carries over."""
    if rung.get("verdict") == "failed" or "effect" not in rung:
        return f"not measured ({_md(rung.get('reason') or 'no result')})"
    n = len(rung.get("candidate") or [])
    return (f"effect {_num(rung['effect'], '+.4f')} bpb, CI [{_num(rung.get('ci_low'), '+.4f')}, "
            f"{_num(rung.get('ci_high'), '+.4f')}] over {n} paired seeds: **{_md(rung.get('verdict', '?'))}**")


def _lessons(r: CampaignRecord) -> list[str]:
    if not r.lessons:
        return []
    lines = ["## What this campaign learned", "",
             f"Per value an agent tried: *helped* — part of a validated finding, and removing it cost more than "
             "σ wherever the finding was ablated (*hurt* where removing it gained more than σ in every one); "
             "otherwise only screening runs that changed that key alone count: "
             f"*looked better* — all more than {SIGMAS:g}σ ahead (one seed, not validated); "
             f"*hurt* — all more than {SIGMAS:g}σ behind; *no clear difference* — all within {SIGMAS:g}σ; "
             "*unclear* — they disagree (runs, or ablations), or the value only ran together with other changes. "
             "A stopped run counts by how far behind the incumbent it was at the progress it reached (σ is the "
             "final score's noise; early in a run the noise is larger).", "",
             "| key | value | verdict | runs (alone) | evidence |", "|---|---|---|---|---|"]
    for lesson in r.lessons:
        lines.append(f"| {_md(lesson.key)} | {_md(lesson.value)} | **{lesson.verdict}** | {lesson.trials} ({lesson.alone}) "
                     f"| {lesson.evidence} |")  # built here from numbers and trial ids
    return lines + [""]


def _leaderboard(r: CampaignRecord) -> list[str]:
    finished = sorted((t for t in r.screened if t.finished), key=lambda t: t.val_bpb)
    lines = ["## Leaderboard: screening runs that trained their whole budget (one seed each)", ""]
    if not finished:
        return lines + ["None: every screening run was stopped early or failed (see below).", ""]
    lines += ["| rank | trial | change | val_bpb | Δ vs baseline mean | in σ | decision | agent | rationale |",
              "|---|---|---|---|---|---|---|---|---|"]
    for rank, t in enumerate(finished, 1):
        delta = t.val_bpb - r.baseline.mean
        lines.append(f"| {rank} | {_link(r, t)} | {_change(t.overrides)} | {t.val_bpb:.4f} | {_num(delta, '+.4f')} | "
                     f"{_num(r.baseline.sigmas(delta), '+.1f')} | {_md(t.decision)} | {_md(t.agent)} | "
                     f"{_md(t.rationale, limit=120)} |")
    return lines + [""]


def _stopped(r: CampaignRecord) -> list[str]:
    stopped = [t for t in r.trials if t.partial]
    if not stopped:
        return []
    saved = sum(1 - t.progress for t in stopped)
    lines = [f"## Stopped early by the critic: {len(stopped)} (≈{saved:.1f} trial budgets saved)", "",
             "Partial scores: each is compared with the incumbent's learning curve at the same progress, never "
             "with final scores.", "",
             "| trial | change | stopped at | val_bpb there | behind the incumbent there | in σ | reason |",
             "|---|---|---|---|---|---|---|"]
    for t in stopped:
        behind = t.behind_at_progress
        lines.append(f"| {_link(r, t)} | {_change(t.overrides)} | {100 * t.progress:.0f}% | {_bpb(t.val_bpb)} | "
                     f"{_num(behind, '+.4f')} | {_num(r.baseline.sigmas(behind) if behind is not None else None, '+.1f')} "
                     f"| {_md(t.error, limit=160)} |")
    return lines + [""]


def _all_trials(r: CampaignRecord) -> list[str]:
    lines = ["## Every trial", "", "| trial | kind | hypothesis | seed | change | status | score | decision |",
             "|---|---|---|---|---|---|---|---|"]
    for t in r.trials:
        # Only a finished run has a final score; any other (stopped, cancelled, killed) is partial.
        score = "—" if t.val_bpb is None else (f"{t.val_bpb:.4f}" if t.finished
                                                else f"{t.val_bpb:.4f} (partial, {100 * t.progress:.0f}%)")
        lines.append(f"| {_link(r, t)} | {t.kind} | {'h%d' % t.hypothesis_id if t.hypothesis_id else ''} | {t.seed} | "
                     f"{_change(t.overrides)} | {_md(t.outcome)} | {score} | {_md(t.decision)} |")
    return lines + [""]


def _failed(r: CampaignRecord) -> list[str]:
    failed = [t for t in r.trials if t.failed]
    if not failed:
        return []
    lines = [f"## Failed or interrupted: {len(failed)}", ""]
    for t in failed:
        lines.append(f"- {_link(r, t)} ({t.kind}, {_change(t.overrides)}): {_md(t.status)}")
        if t.error.strip():
            lines += ["", markdown_code(t.error.strip(), limit=600), ""]
    return lines + [""]


def _cancelled(r: CampaignRecord) -> list[str]:
    cancelled = [t for t in r.trials if t.cancelled]
    if not cancelled:
        return []
    lines = [f"## Started early, then not needed: {len(cancelled)}", "",
             "An idle worker started these runs before their job asked for them; the job moved on "
             "(its screening run was stopped or discarded), so they were cancelled. Their training is "
             "overhead, not evidence.", ""]
    for t in cancelled:
        lines.append(f"- {_link(r, t)} ({t.kind}, {_change(t.overrides)}, seed {t.seed}): "
                     f"{_md(t.error.removeprefix(CANCELLED_PREFIX))}")
    return lines + [""]


def _refusals(r: CampaignRecord) -> list[str]:
    if not r.refusals:
        return []
    counts: dict[str, int] = {}
    for code, _ in r.refusals:
        counts[code] = counts.get(code, 0) + 1
    shown = r.refusals[-REFUSALS_SHOWN:]
    left_out = len(r.refusals) - len(shown)
    lines = [f"## Refused proposals: {len(r.refusals)} "
             f"({', '.join(f'{_md(c)} {n}' for c, n in sorted(counts.items()))})", ""]
    if left_out:
        lines += [f"The last {len(shown)} are listed; {left_out} earlier ones are left out (all are in the store).", ""]
    lines += [f"- {_md(code)}: {_md(reason, limit=300)}" for code, reason in shown]
    return lines + [""]


# ---------------------------------------------------------------------- formatting
def _md(text: Any, *, limit: int = 200) -> str:
    return markdown_inline("" if text is None else text, limit=limit)


def _change(overrides: dict[str, Any]) -> str:
    if not overrides:
        return "baseline"
    return _md(", ".join(f"{k}={v}" for k, v in sorted(overrides.items())), limit=160)


def _link(r: CampaignRecord, t: TrialView) -> str:
    try:
        rel = Path(t.run_dir).relative_to(r.campaign_dir)
    except ValueError:
        return t.label
    return f"[{t.label}]({rel.as_posix()})"


def _ci(f: FindingView) -> str:
    return f"{100 * f.ci_level:.0f}% CI [{f.ci_low:+.4f}, {f.ci_high:+.4f}]"


def _num(x: Any, fmt: str = ".3g") -> str:
    return format(x, fmt) if isinstance(x, (int, float)) and math.isfinite(x) else "—"


def _bpb(x: Optional[float]) -> str:
    return _num(x, ".4f")


def _duration(seconds: Optional[float]) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "—"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else (f"{minutes} min {secs:02d} s" if minutes else f"{secs} s")


def _shell(path: Path) -> str:
    try:
        path = Path(path).resolve().relative_to(Path.cwd())
    except ValueError:
        pass
    return shlex.quote(str(path))
