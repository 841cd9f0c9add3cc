"""What a campaign did, read from the store into plain records the report's writers share.

Every figure the report, the plot and ``results.tsv`` show is computed here, once, so the three
never disagree. Two rules shape it:

* a partial score (a trial the critic stopped at 34 % of its budget) is never compared with a final
  one: a stopped trial is judged by how far behind the incumbent it was *at the progress it
  reached*, on the incumbent's own learning curve;
* the baseline is a band over its seeds (mean ± σ), never a "running best" that drops when a lucky
  seed comes along — seed-to-seed luck is exactly what the campaign must not report as progress.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from autoresearch.critic import value_at
from autoresearch.result import COMPLETED, EARLY_STOPPED, FAILED_STATUSES, INTERRUPTED, is_cancelled

# How many noise σ a difference must reach before the report calls it a difference at all.
SIGMAS = 2.0


@dataclass(frozen=True, kw_only=True)
class Band:
    """The baseline over its seeds: what "no change" scores, and how much a seed moves it."""

    values: tuple[float, ...]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values) if self.values else math.nan

    @property
    def std(self) -> float:
        return statistics.stdev(self.values) if len(self.values) >= 2 else math.nan

    def sigmas(self, delta: float) -> float:
        """``delta`` in units of the baseline's σ (nan while σ is unknown or zero)."""
        return delta / self.std if self.std and math.isfinite(self.std) else math.nan


@dataclass(frozen=True, kw_only=True)
class TrialView:
    """One trial as a person reads it: its score, and whether that score is final or partial."""

    id: int
    kind: str  # baseline | hypothesis | validation | ablation | scale
    seed: int
    overrides: dict[str, Any]
    status: str
    val_bpb: Optional[float]  # final score, or the partial one where it was stopped
    progress: float  # 0..1 of its budget reached (1.0 for a finished run)
    decision: str
    note: str
    error: str
    agent: str
    rationale: str
    hypothesis_id: Optional[int]
    run_dir: str
    started_at: float
    peak_memory_mb: float = 0.0
    behind_at_progress: Optional[float] = None  # stopped trials: its score − the incumbent's at that progress

    @property
    def label(self) -> str:
        return f"t{self.id:04d}"

    @property
    def partial(self) -> bool:
        return self.status == EARLY_STOPPED

    @property
    def finished(self) -> bool:
        return self.status == COMPLETED and self.val_bpb is not None

    @property
    def cancelled(self) -> bool:
        """Started early on an idle worker, then not needed by its job: neither a failure nor a kill."""
        return is_cancelled(self.status, self.error)

    @property
    def outcome(self) -> str:
        """The status as a person reads it: a cancelled run is stored ``interrupted`` but says so."""
        return "cancelled" if self.cancelled else self.status

    @property
    def failed(self) -> bool:
        return self.status in FAILED_STATUSES or (self.status == INTERRUPTED and not self.cancelled)


@dataclass(frozen=True, kw_only=True)
class FindingView:
    """A multi-seed verdict with everything that backs it."""

    id: int
    hypothesis_id: Optional[int]
    overrides: dict[str, Any]
    status: str
    effect: float
    ci_low: float
    ci_high: float
    ci_level: float
    p_value: float
    q_value: Optional[float]
    n: int
    test: str
    test_bpb: Optional[float]
    details: dict[str, Any]
    seconds_to_verdict: Optional[float]  # proposal → verdict, wall clock
    screening_trial: Optional[int]


@dataclass(frozen=True, kw_only=True)
class Lesson:
    """What the campaign learned about one value of one key, and the trials that say so."""

    key: str
    value: Any
    verdict: str  # helped | hurt | no clear difference | unclear
    trials: int
    alone: int  # trials that changed this key and nothing else
    evidence: str


@dataclass(kw_only=True)
class CampaignRecord:
    name: str
    campaign_dir: Path
    search_space: str
    description: str
    baseline: Band
    trials: list[TrialView]
    findings: list[FindingView]
    refusals: list[tuple[str, str]]  # (code, reason), oldest first
    agent_calls: int
    agent_failures: int
    agent_cost_usd: float
    agent_events: list[str]  # when an agent fell back ("…: fallback: playbook proposes from now on; llm … unavailable …")
    curves: dict[int, list[tuple[float, float]]] = field(default_factory=dict)  # baseline and screening runs
    lessons: list[Lesson] = field(default_factory=list)
    screening_margin: float = 0.0  # critic.screening_margin: noise floors a screening gain must exceed

    @property
    def screened(self) -> list[TrialView]:
        return [t for t in self.trials if t.kind == "hypothesis"]

    @property
    def validated(self) -> list[FindingView]:
        return [f for f in self.findings if f.status == "validated"]


def read_campaign(store, name: str, campaign_dir: Path) -> CampaignRecord:
    """Everything the report needs about campaign ``name``, from the store alone."""
    campaign = store.campaign(name)
    if campaign is None:
        raise ValueError(f"no campaign named {name!r} in the store; check knowledge.db")
    cid = campaign.id
    hypotheses = {h.id: h for h in store.hypotheses(cid)}
    rows = store.trials(cid)
    curves = {t.id: _curve(store, t.id) for t in rows if t.kind in ("baseline", "hypothesis")}
    findings_rows = store.findings(cid)
    seeds = list((campaign.config.get("campaign") or {}).get("seeds") or [])
    baseline_rows = sorted((t for t in rows if t.kind == "baseline" and t.status == COMPLETED and t.val_bpb is not None),
                           key=lambda t: seeds.index(t.seed) if t.seed in seeds else len(seeds) + t.id)
    band = Band(values=tuple(t.val_bpb for t in baseline_rows))
    incumbents = _incumbent_timeline(baseline_rows, findings_rows, rows)

    trials = []
    for t in rows:
        hyp = hypotheses.get(t.hypothesis_id) if t.hypothesis_id is not None else None
        progress = 1.0 if t.status == COMPLETED else float(t.metrics.get("progress") or 0.0)
        behind = None
        if t.status == EARLY_STOPPED and t.id in curves and curves[t.id]:
            p, v = curves[t.id][-1]
            reference = _incumbent_at(incumbents, t.started_at)
            ref_value = value_at(curves.get(reference, []), p) if reference is not None else math.nan
            if math.isfinite(ref_value):
                behind = v - ref_value
        trials.append(TrialView(
            id=t.id, kind=t.kind, seed=t.seed, overrides=dict(t.overrides), status=str(t.status), val_bpb=t.val_bpb,
            progress=progress, decision=t.decision or "", note=t.note or "", error=t.error or "",
            agent=(hyp.agent if hyp else "") or "", rationale=(hyp.rationale if hyp else "") or "",
            hypothesis_id=t.hypothesis_id, run_dir=t.run_dir or "", started_at=t.started_at,
            peak_memory_mb=float(t.metrics.get("peak_memory_mb") or 0.0), behind_at_progress=behind))

    findings = []
    for f in findings_rows:
        hyp = hypotheses.get(f.hypothesis_id) if f.hypothesis_id is not None else None
        details = dict(f.details or {})
        screen = next((t.id for t in rows if t.kind == "hypothesis" and t.hypothesis_id == f.hypothesis_id
                       and t.status == COMPLETED), None)
        elapsed = details.get("time_to_verdict_s")
        if elapsed is None and hyp is not None:
            elapsed = f.created_at - hyp.created_at
        findings.append(FindingView(
            id=f.id, hypothesis_id=f.hypothesis_id, overrides=dict(hyp.overrides if hyp else details.get("overrides", {})),
            status=f.status, effect=f.effect, ci_low=f.ci_low, ci_high=f.ci_high,
            ci_level=float(details.get("ci_level", 0.90)), p_value=f.p_value, q_value=f.q_value, n=f.n,
            test=str(details.get("test", "")), test_bpb=f.test_bpb, details=details,
            seconds_to_verdict=float(elapsed) if elapsed is not None else None, screening_trial=screen))

    from autoresearch.agents import is_fallback_event  # agents import Ax only when one is built

    events = [c for c in store.agent_calls(cid) if is_fallback_event(c.error)]
    calls = [c for c in store.agent_calls(cid) if not is_fallback_event(c.error)]
    record = CampaignRecord(
        name=name, campaign_dir=Path(campaign_dir), search_space=campaign.search_space,
        description=str((campaign.config.get("campaign") or {}).get("description") or ""),
        baseline=band, trials=trials, findings=findings,
        refusals=[(h.refusal_code or "", h.refusal_reason or "") for h in hypotheses.values()
                  if h.status in ("refused", "flagged")],
        agent_calls=len(calls), agent_failures=sum(1 for c in calls if not c.ok),
        agent_cost_usd=sum(c.cost_usd or 0.0 for c in calls),
        agent_events=[f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(c.created_at))}: {c.error}" for c in events],
        curves=curves,
        screening_margin=float((campaign.config.get("critic") or {}).get("screening_margin", 0.0) or 0.0),
    )
    record.lessons = lessons(record)
    return record


def lessons(record: CampaignRecord) -> list[Lesson]:
    """Per key and value the agents tried: did it help, hurt, or make no difference — with evidence.

    A value *helped* when it is part of a validated finding and, where the finding was ablated,
    removing it cost more than the noise σ; if another finding's ablation says removing it *gained*
    more than σ, the findings disagree and it is *unclear*; if every finding's ablation says so, it
    *hurt* (the finding held despite it). Otherwise only screening runs that
    changed this key *alone* are read — a run that changed five keys says nothing about any one
    of them — each by how far it was from the reference: the baseline's mean for a finished run,
    the incumbent's curve at the same progress for a stopped one. All of them more than ``SIGMAS``
    noise σ ahead: *looked better* (one seed each, not validated); all more than ``SIGMAS`` σ
    behind: *hurt*; all within: *no clear difference*. Anything else — runs that disagree, or a
    value only ever tried together with other changes — is *unclear*.
    """
    band = record.baseline
    sigma = band.std if math.isfinite(band.std) and band.std > 0 else math.nan
    seen: dict[tuple[str, str], list[TrialView]] = {}
    values: dict[tuple[str, str], Any] = {}
    for t in record.screened:
        for key, value in t.overrides.items():
            seen.setdefault((key, repr(value)), []).append(t)
            values[(key, repr(value))] = value
    out = []
    for (key, vrepr), trials in sorted(seen.items()):
        value = values[(key, vrepr)]
        alone = [t for t in trials if len(t.overrides) == 1]
        within = [f for f in record.validated if f.overrides.get(key, object()) == value]
        ablated = [_ablated(f, key) for f in within]  # bpb lost without the value, None where not ablated
        noise = sigma if math.isfinite(sigma) else 0.0
        helped = [a for a in ablated if a is None or a > noise]
        against = [a for a in ablated if a is not None and a < -noise]
        gaps = [g for g in (_gap(t, band) for t in alone) if g is not None]
        findings_text = "; ".join(f"h{f.hypothesis_id} validated, effect {f.effect:+.4f} bpb "
                                  f"[{f.ci_low:+.4f}, {f.ci_high:+.4f}]" + _ablation_text(f, key) for f in within)
        if helped and against:
            verdict, evidence = "unclear", findings_text + " (the ablations disagree)"
        elif helped:
            verdict, evidence = "helped", findings_text
        elif against and len(against) == len(ablated):
            verdict, evidence = "hurt", findings_text + " (removing it from the finding gained more than the noise)"
        elif within and not gaps:
            verdict, evidence = "unclear", findings_text + " (no ablation says removing it cost more than the noise)"
        elif gaps and math.isfinite(sigma) and all(g < -SIGMAS * sigma for g in gaps):
            verdict, evidence = "looked better", _gap_text(alone, band) + " (screening, not validated)"
        elif gaps and math.isfinite(sigma) and all(g > SIGMAS * sigma for g in gaps):
            verdict, evidence = "hurt", _gap_text(alone, band)
        elif gaps and math.isfinite(sigma) and all(abs(g) <= SIGMAS * sigma for g in gaps):
            verdict, evidence = "no clear difference", _gap_text(alone, band)
        else:
            verdict = "unclear"
            evidence = (_gap_text(alone, band) if gaps else
                        f"only tried together with other changes ({', '.join(t.label for t in trials[:6])})"
                        if not alone else "no scored run")
        out.append(Lesson(key=key, value=value, verdict=verdict, trials=len(trials), alone=len(alone),
                          evidence=evidence))
    order = {"helped": 0, "looked better": 1, "hurt": 2, "no clear difference": 3, "unclear": 4}
    return sorted(out, key=lambda lesson: (order[lesson.verdict], lesson.key, repr(lesson.value)))


# ---------------------------------------------------------------------- helpers
def _gap(t: TrialView, band: Band) -> Optional[float]:
    """How far behind (+) or ahead (−) of the reference a screening run was, in bpb."""
    if t.finished and math.isfinite(band.mean):
        return t.val_bpb - band.mean
    if t.partial and t.behind_at_progress is not None:
        return t.behind_at_progress
    return None


def _gap_text(trials: list[TrialView], band: Band) -> str:
    parts = []
    for t in trials:
        gap = _gap(t, band)
        if gap is None:
            continue
        where = "vs baseline" if t.finished else f"vs incumbent at {100 * t.progress:.0f}%"
        sig = band.sigmas(gap)
        parts.append(f"{t.label} {gap:+.4f} {where}" + (f" ({sig:+.1f}σ)" if math.isfinite(sig) else ""))
    return "; ".join(parts[:6]) + (f"; … {len(parts) - 6} more" if len(parts) > 6 else "")


def _ablated(f: FindingView, key: str) -> Optional[float]:
    """bpb lost when ``key`` was removed from finding ``f`` (None: not ablated)."""
    value = (f.details.get("ablation") or {}).get(key)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _ablation_text(f: FindingView, key: str) -> str:
    value = (f.details.get("ablation") or {}).get(key)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return f", ablation: {value:+.4f} bpb lost without it"
    return ""


def _curve(store, trial_id: int) -> list[tuple[float, float]]:
    points = sorted((float(r["progress"]), float(r["val_bpb"])) for r in store.curve(trial_id)
                    if "val_bpb" in r and "progress" in r and _finite(r["val_bpb"]))
    return points


def _incumbent_timeline(baseline_rows, findings_rows, rows) -> list[tuple[float, int]]:
    """(from when, trial id whose curve is the incumbent's) — the baseline's first seed, then each
    validated discovery's screening run from the moment it was validated."""
    timeline = []
    if baseline_rows:
        timeline.append((-math.inf, baseline_rows[0].id))
    for f in sorted(findings_rows, key=lambda f: f.created_at):
        if f.status != "validated":
            continue
        screen = next((t for t in rows if t.kind == "hypothesis" and t.hypothesis_id == f.hypothesis_id
                       and t.status == COMPLETED), None)
        if screen is not None:
            timeline.append((f.created_at, screen.id))
    return timeline


def _incumbent_at(timeline: list[tuple[float, int]], when: float) -> Optional[int]:
    current = None
    for since, trial_id in timeline:
        if since <= when:
            current = trial_id
    return current


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)
