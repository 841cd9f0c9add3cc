"""The llm agent's prompt: the search space, where we stand, and a history that fits a token budget.

The prompt is built from data only (the search space, the baseline, finished trials); every piece
of text that came from outside (past rationales, memory lines, literature notes, refusal reasons)
is cleaned first: interpolations (``${...}``) are described rather than repeated and any known
secret value is masked, so a key can never travel to a provider inside the prompt.

Budget: ``count(messages) <= budget`` tokens. History is compacted from the oldest end: the
newest trials keep a full line (with rationale), older ones a short line, the oldest are folded
into one summary line per searched key, and if even that does not fit they are dropped with a
note saying how many. Memory and literature lines give way before history does. The agent's
recently refused answers (already quoted as JSON strings and clipped by the agent) come last,
under a heading that says they are data; the oldest of them give way after the literature.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional

from autoresearch.agents.base import AgentContext, TrialRecord

Counter = Callable[[list[dict[str, str]]], int]

SYSTEM = """You are a careful machine-learning researcher running an automated search over the \
configuration of a small GPT language model. Each experiment trains the model for a fixed budget \
and reports val_bpb (validation bits per byte; lower is better).

Propose exactly ONE next experiment. Reply with a single JSON object and nothing else:
{"overrides": {"<key>": <value>, ...}, "rationale": "<why this should lower val_bpb>", \
"expected_effect": "<what you expect to see>"}

Rules: use only keys of the search space below, with a value of the stated type inside its range \
or among its choices; set a dependent key only when its condition holds; respect the constraints; \
do not repeat a configuration that was already run. Overrides are relative to the BASELINE: keys \
you leave out keep their baseline value, so to build on the incumbent repeat its overrides. \
Differences smaller than about twice the noise floor are not real."""

RECENT_FULL = 6  # newest trials that keep their rationale as long as the budget allows
_INTERP = re.compile(r"\$[{(][^})]*[})]?")
_RATIONALE_CHARS = 160
_NEWLINES = re.compile(r"\s+")


def clean(text: Any, secrets: Iterable[str] = (), limit: int = 400) -> str:
    """Untrusted text made safe for a prompt: one line, clipped, interpolations and secrets masked."""
    out = _NEWLINES.sub(" ", str(text)).strip()
    out = _INTERP.sub("<interpolation removed>", out)
    for secret in secrets:
        if secret:
            out = out.replace(secret, "[redacted]")
    return out if len(out) <= limit else out[: limit - 1] + "…"


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:.6g}"
    return json.dumps(v) if isinstance(v, str) else str(v)


def _overrides(o: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(o.items())) or "(baseline)"


def describe_space(space: Any, base: dict[str, Any]) -> str:
    """One line per parameter: key, type and domain, condition, baseline value, description."""
    lines = [f"Search space {space.name}: {clean(getattr(space, 'description', ''), limit=300)}".rstrip(": ")]
    for key, p in space.parameters.items():
        if p.type == "range":
            lo, hi = p.bounds
            dom = f"{p.value_type} in [{_fmt(lo)}, {_fmt(hi)}]" + (" (log scale)" if p.log_scale else "")
        elif p.type == "choice":
            dom = f"one of [{', '.join(_fmt(v) for v in p.values)}]" + (" (ordered)" if p.ordered else "")
        else:
            dom = f"fixed at {_fmt(p.value)} (do not change)"
        cond = ""
        if p.depends_on:
            cond = " — only when " + " and ".join(
                f"{parent} is {_fmt(vals[0])}" if len(vals) == 1 else f"{parent} in [{', '.join(_fmt(v) for v in vals)}]"
                for parent, vals in p.depends_on.items()
            )
        baseline = f"; baseline {_fmt(base[key])}" if key in base else ""
        desc = f". {clean(p.description, limit=160)}" if p.description else ""
        lines.append(f"- {key}: {dom}{cond}{baseline}{desc}")
    constraints = list(getattr(space, "constraints", ()) or ())
    if constraints:
        lines.append("Constraints (must hold for the full config): " + "; ".join(constraints))
    return "\n".join(lines)


def describe_standing(ctx: AgentContext) -> str:
    lines = ["Objective: minimise val_bpb."]
    if ctx.baseline_bpb is not None:
        lines.append(f"Baseline val_bpb: {ctx.baseline_bpb:.4f}.")
    if ctx.noise_std is not None and math.isfinite(ctx.noise_std):
        lines.append(f"Noise floor (std of val_bpb across seeds of the baseline): {ctx.noise_std:.4f}.")
    if ctx.incumbent is not None and ctx.incumbent.val_bpb is not None:
        lines.append(f"Incumbent (best kept so far): {_overrides(ctx.incumbent.overrides)} → val_bpb {ctx.incumbent.val_bpb:.4f}.")
    lines.append(f"Trials left in this campaign: {ctx.remaining_trials}.")
    if ctx.running:
        lines.append("Running now on other workers (no result yet; do not propose these again):")
        lines += [f"- {_overrides(o)}" for o in ctx.running]
    return "\n".join(lines)


def _outcome(r: TrialRecord, baseline: Optional[float]) -> str:
    if r.refused:
        return "refused"
    if r.val_bpb is None or not math.isfinite(r.val_bpb):
        return r.status
    text = f"val_bpb {r.val_bpb:.4f}"
    if baseline is not None:
        text += f" ({r.val_bpb - baseline:+.4f} vs baseline)"
    if r.status != "completed":
        text += f", {r.status} at {r.progress:.0%}"
    return text + (", kept" if r.kept else ", discarded")


def full_line(r: TrialRecord, baseline: Optional[float], secrets: Iterable[str]) -> str:
    why = clean(r.rationale, secrets, _RATIONALE_CHARS)
    return f"#{r.trial_id} {_overrides(r.overrides)} → {_outcome(r, baseline)} [{r.agent}]" + (f" — {why}" if why else "")


def short_line(r: TrialRecord, baseline: Optional[float]) -> str:
    return f"#{r.trial_id} {_overrides(r.overrides)} → {_outcome(r, baseline)}"


def summary_lines(records: list[TrialRecord], baseline: Optional[float]) -> list[str]:
    """Fold older trials into one line per key: how often it was changed and its best result."""
    n = len(records)
    scored = [r for r in records if r.val_bpb is not None and math.isfinite(r.val_bpb) and not r.refused]
    failed = sum(1 for r in records if r.failed)
    head = f"{n} older trials summarised: {len(scored)} with a val_bpb, {failed} failed"
    if scored:
        best = min(scored, key=lambda r: r.val_bpb)  # type: ignore[arg-type,return-value]
        head += f"; best {best.val_bpb:.4f} with {_overrides(best.overrides)}"
    lines = [head + "."]
    per_key: dict[str, list[TrialRecord]] = {}
    for r in scored:
        for k in r.overrides:
            per_key.setdefault(k, []).append(r)
    for key in sorted(per_key):
        rs = per_key[key]
        best = min(rs, key=lambda r: r.val_bpb)  # type: ignore[arg-type,return-value]
        worst = max(rs, key=lambda r: r.val_bpb)  # type: ignore[arg-type,return-value]
        lines.append(
            f"  {key}: set in {len(rs)}; best val_bpb {best.val_bpb:.4f} at {_fmt(best.overrides[key])}, "
            f"worst {worst.val_bpb:.4f} at {_fmt(worst.overrides[key])}"
        )
    return lines


@dataclass(kw_only=True)
class BuiltPrompt:
    messages: list[dict[str, str]]
    tokens: int
    shown_full: int  # history lines with rationale
    shown_short: int
    summarised: int
    dropped: int
    over_budget: bool
    refusals: int = 0  # refused answers quoted  # the fixed part alone did not fit (huge search space): sent anyway


def build_prompt(
    ctx: AgentContext,
    *,
    budget: int,
    count: Counter,
    secrets: Iterable[str] = (),
    extra: list[dict[str, str]] = (),  # type: ignore[assignment]
    refused: list[str] = (),  # type: ignore[assignment]
) -> BuiltPrompt:
    """Messages for one proposal, within ``budget`` tokens as measured by ``count``.

    ``refused``: lines about the agent's recently refused answers, oldest first, already quoted.
    """
    secrets = [s for s in secrets if s]
    history = [r for r in ctx.history]
    baseline = ctx.baseline_bpb
    space_text = describe_space(ctx.space, ctx.base)
    standing = describe_standing(ctx)
    # Memory lines first, then literature; the budget trims from the end (literature goes first).
    notes = [clean(x, secrets, 300) for x in ctx.neighbours] + [clean(x, secrets, 300) for x in ctx.literature]
    n_mem = len(ctx.neighbours)
    refused = [clean(x, secrets, 700) for x in refused]

    def render(n_full: int, n_short: int, n_summary: int, n_notes: int, n_refused: int) -> list[dict[str, str]]:
        n = len(history)
        oldest_shown = n - n_full - n_short
        parts = [space_text, "", standing]
        if n:
            parts += ["", f"History ({n} trials, oldest first):"]
            summarised = history[oldest_shown - n_summary: oldest_shown] if n_summary else []
            dropped = oldest_shown - n_summary
            if dropped > 0:
                parts.append(f"({dropped} oldest trials omitted to fit the prompt budget.)")
            if summarised:
                parts += summary_lines(summarised, baseline)
            parts += [short_line(r, baseline) for r in history[oldest_shown: n - n_full]]
            parts += [full_line(r, baseline, secrets) for r in history[n - n_full:]]
        else:
            parts += ["", "History: no trials yet besides the baseline."]
        mem, lit = notes[:min(n_notes, n_mem)], notes[n_mem:n_notes]
        if mem:
            parts += ["", "Similar past experiments (from memory, possibly other campaigns):"] + [f"- {x}" for x in mem]
        if lit:
            parts += ["", "Notes from the literature:"] + [f"- {x}" for x in lit]
        if n_refused:
            parts += ["", "Your recent answers that were refused (quoted as data, oldest first; "
                          "do not send any of them again, propose something different):"]
            parts += [f"- {x}" for x in refused[len(refused) - n_refused:]]
        parts += ["", "Propose the next experiment as one JSON object."]
        return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n".join(parts)}, *extra]

    n = len(history)
    # Compaction ladder, cheapest loss of information first.
    plan = [n, 0, 0, len(notes), len(refused)]  # full, short, summary, notes, refusals

    def fits(p: list[int]) -> tuple[bool, int]:
        tokens = count(render(*p))
        return tokens <= budget, tokens

    ok, tokens = fits(plan)
    steps = 0
    while not ok:
        steps += 1
        full, short, summ, nn, nr = plan
        if nn > 0:  # 1. literature notes, then memory lines, go first
            plan = [full, short, summ, nn - 1, nr]
        elif nr > 2:  # 2. the oldest refusals, keeping the newest two
            plan = [full, short, summ, nn, nr - 1]
        elif full > RECENT_FULL:  # 3. older full lines lose their rationale, half at a time
            k = max(1, (full - RECENT_FULL) // 2)
            plan = [full - k, short + k, summ, nn, nr]
        elif short > 0:  # 4. older short lines fold into the summary, a quarter at a time
            k = max(1, short // 4)
            plan = [full, short - k, summ + k, nn, nr]
        elif full > 0:  # 5. even the newest lose their rationale, then fold
            plan = [full - 1, short + 1, summ, nn, nr]
        elif summ > 0:  # 6. the summary shrinks: oldest trials dropped
            k = max(1, summ // 2)
            plan = [full, short, summ - k, nn, nr]
        elif nr > 0:  # 7. the last refusals
            plan = [full, short, summ, nn, nr - 1]
        else:
            break
        ok, tokens = fits(plan)
        if steps > 4 * (n + len(notes) + len(refused)) + 64:
            break
    full, short, summ, nn, nr = plan
    messages = render(*plan)
    return BuiltPrompt(
        messages=messages, tokens=tokens, shown_full=full, shown_short=short, summarised=summ,
        dropped=n - full - short - summ, over_budget=not ok, refusals=nr,
    )
