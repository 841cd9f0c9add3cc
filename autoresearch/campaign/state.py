"""The campaign as the store holds it: baseline values, noise floor, incumbent, history, owed work.

Every question the other rooms ask about "where are we?" is answered here, from the store alone,
so a killed campaign that restarts sees exactly what the killed one had recorded. Nothing here
writes, apart from ``resume_interrupted`` (the one start-up repair).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from autoresearch.result import COMPLETED, CRASHED, EARLY_STOPPED, INTERRUPTED, RUNNING, RunResult
from autoresearch.search import Hypothesis

log = logging.getLogger(__name__)

INTERRUPTED_NOTE = "the campaign stopped while this trial ran; it is run again on resume"


@dataclass(frozen=True)
class Incumbent:
    """The configuration to beat: the baseline at first, then each validated discovery."""

    overrides: dict[str, Any]
    hypothesis_id: Optional[int]
    bpb: float  # screening-seed score (first seed), what new screening runs are compared with
    curve_bpb: float  # its final curve point (the early stopper's scale)


def was_interrupted(trial) -> bool:
    """A trial the campaign stopped mid-run. Stores written before ``interrupted`` was a status of
    its own recorded these as ``crashed`` with an ``interrupted:`` note; both read the same."""
    return trial.status == INTERRUPTED or (trial.status == CRASHED and (trial.error or "").startswith("interrupted"))


def finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


class CampaignState:
    """Read-model of one campaign in the store. Cheap to ask; always current."""

    def __init__(self, store, campaign_id: int, seeds: list[int]):
        self.store = store
        self.campaign_id = campaign_id
        self.seeds = seeds

    # ------------------------------------------------------------------ baseline and incumbent
    def baseline_values(self) -> list[float]:
        """The baseline's val_bpb per campaign seed, in the campaign's seed order."""
        order = {seed: i for i, seed in enumerate(self.seeds)}
        trials = sorted(self.store.trials(self.campaign_id, kind="baseline"), key=lambda t: order.get(t.seed, 99))
        return [t.metrics["val_bpb"] for t in trials if t.status == COMPLETED and finite(t.metrics.get("val_bpb"))]

    def baseline_seeds_done(self) -> set[int]:
        return {t.seed for t in self.store.trials(self.campaign_id, kind="baseline") if t.status == COMPLETED}

    def noise(self) -> Optional[float]:
        """The noise floor σ over baseline seeds; None until two seeds have finished."""
        from autoresearch.critic import noise_floor

        values = self.baseline_values()
        return noise_floor(values).std if len(values) >= 2 else None

    def incumbent(self) -> Incumbent:
        validated = [f for f in self.store.findings(self.campaign_id) if f.status == "validated"]
        if validated:
            best = validated[-1]  # findings are chained: each one beat the incumbent before it
            screen = [t for t in self.store.trials(self.campaign_id, kind="hypothesis")
                      if t.hypothesis_id == best.hypothesis_id and t.status == COMPLETED]
            if screen:
                trial = screen[0]
                return Incumbent(trial.overrides, best.hypothesis_id, trial.metrics["val_bpb"], self.curve_end(trial.id))
        base = [t for t in self.store.trials(self.campaign_id, kind="baseline")
                if t.status == COMPLETED and t.seed == self.seeds[0]]
        if base:
            return Incumbent({}, None, base[0].metrics["val_bpb"], self.curve_end(base[0].id))
        return Incumbent({}, None, math.inf, math.inf)

    def curve_end(self, trial_id: int) -> float:
        points = [r["val_bpb"] for r in self.store.curve(trial_id) if "val_bpb" in r]
        return points[-1] if points else math.inf

    def finished_curves(self) -> dict[int, list[tuple[float, float]]]:
        """Curves of every finished baseline and screening run: what the early stopper compares with."""
        curves = {}
        for t in self.store.trials(self.campaign_id):
            if t.status == COMPLETED and t.kind in ("baseline", "hypothesis"):
                curves[t.id] = [(r["progress"], r["val_bpb"]) for r in self.store.curve(t.id) if "val_bpb" in r]
        return curves

    def prior_curves(self, limit: int = 200) -> list[list[tuple[float, float]]]:
        """Finished baseline and screening curves of *earlier* campaigns on the same search space
        and trial budget: the early stopper's evidence before this campaign has curves of its own."""
        me = self.store.campaign_by_id(self.campaign_id)
        budget = (me.config.get("trainer") or {}).get("budget")
        curves = []
        for other in self.store.campaigns():
            if other.id == self.campaign_id or other.search_space != me.search_space:
                continue
            if (other.config.get("trainer") or {}).get("budget") != budget:
                continue  # a curve's progress axis means something else under another budget
            for t in self.store.trials(other.id):
                if t.status == COMPLETED and t.kind in ("baseline", "hypothesis") and len(curves) < limit:
                    curves.append([(r["progress"], r["val_bpb"]) for r in self.store.curve(t.id) if "val_bpb" in r])
        return curves

    # ------------------------------------------------------------------ hypotheses and history
    def hypotheses_run(self) -> int:
        return sum(1 for t in self.store.trials(self.campaign_id, kind="hypothesis") if not was_interrupted(t))

    def history(self):
        """What agents learn from: every finished screening run, oldest first."""
        return [self.record_of(t) for t in self.store.trials(self.campaign_id, kind="hypothesis")
                if t.status != RUNNING and not was_interrupted(t)]

    def record_of(self, trial):
        from autoresearch.agents import TrialRecord

        hyp = self.store.hypothesis(trial.hypothesis_id) if trial.hypothesis_id is not None else None
        return TrialRecord(trial_id=trial.id, overrides=dict(trial.overrides), status=trial.status,
                           val_bpb=trial.metrics.get("val_bpb") if finite(trial.metrics.get("val_bpb")) else None,
                           progress=float(trial.metrics.get("progress", 0.0) or 0.0),
                           agent=(hyp.agent if hyp else "unknown") or "unknown",
                           rationale=(hyp.rationale if hyp else "") or "",
                           kept=trial.decision in ("keep", "candidate"))

    def incumbent_record(self):
        from autoresearch.agents import TrialRecord

        inc = self.incumbent()
        if not math.isfinite(inc.bpb):
            return None
        return TrialRecord(trial_id=-1, overrides=dict(inc.overrides), status=COMPLETED, val_bpb=inc.bpb,
                           progress=1.0, agent="incumbent", rationale="current best validated configuration", kept=True)

    def hypothesis(self, hyp_id: int) -> Hypothesis:
        row = self.store.hypothesis(hyp_id)
        return Hypothesis(overrides=row.overrides, rationale=row.rationale, expected_effect=row.expected_effect,
                          agent=row.agent, parent=row.parent)

    def has_run(self, hyp_id: int) -> bool:
        return any(t.hypothesis_id == hyp_id and not was_interrupted(t)
                   for t in self.store.trials(self.campaign_id, kind="hypothesis"))

    def owed_hypotheses(self) -> list[int]:
        """Hypotheses that passed the gate in an earlier run but have no finished trial.

        Read once at start-up, before this run gates anything, so a hypothesis prepared in the
        background for the next trial is never mistaken for one owed from a killed run.
        """
        trials = self.store.trials(self.campaign_id, kind="hypothesis")
        finished = {t.hypothesis_id for t in trials if not was_interrupted(t)}
        return [h.id for h in self.store.hypotheses(self.campaign_id, status="proposed") if h.id not in finished]

    def undecided_screenings(self) -> list:
        """Screening runs a killed campaign finished but never judged."""
        return [t for t in self.store.trials(self.campaign_id, kind="hypothesis")
                if t.decision is None and t.status != RUNNING and not was_interrupted(t)]

    def unassessed_candidates(self) -> list:
        """Screening runs that beat the noise floor but whose validation never reached a verdict."""
        assessed = {f.hypothesis_id for f in self.store.findings(self.campaign_id)}
        return [t for t in self.store.trials(self.campaign_id, kind="hypothesis")
                if t.decision == "candidate" and t.hypothesis_id not in assessed]

    def seen(self, fingerprint: str) -> Optional[str]:
        """Where a configuration already ran (in any campaign), or that it is about to run here (a
        hypothesis admitted while other workers were busy), for the gate's repeat check."""
        for trial in self.store.find_by_fingerprint(fingerprint):
            if trial.kind in ("baseline", "hypothesis") and not was_interrupted(trial):
                campaign = self.store.campaign_by_id(trial.campaign_id).name
                return f"trial {trial.id} of campaign {campaign} ({trial.run_dir})"
        for hyp in self.store.hypotheses(self.campaign_id, status="proposed"):
            if hyp.fingerprint == fingerprint:
                return f"hypothesis h{hyp.id} of this campaign, admitted and about to run"
        return None

    def finished_runs(self, fingerprint: str) -> dict[int, Any]:
        """seed → finished trial of this configuration in this campaign (any outcome but interrupted)."""
        runs = {}
        for t in self.store.find_by_fingerprint(fingerprint):
            if t.campaign_id == self.campaign_id and t.status != RUNNING and not was_interrupted(t):
                if t.seed not in runs or t.status == COMPLETED:
                    runs[t.seed] = t
        return runs

    # ------------------------------------------------------------------ the one start-up repair
    def resume_interrupted(self) -> None:
        """Trials left 'running' by a killed campaign: record them if they finished, else mark them."""
        for trial in self.store.running_trials(self.campaign_id):
            metrics = Path(trial.run_dir) / "metrics.json" if trial.run_dir else None
            if metrics is not None and metrics.is_file():
                result = RunResult.load(metrics)
                self.store.finish_trial(trial.id, result.status, result.to_dict(), result.error)
                log.info("resume: t%04d had finished (%s); recorded", trial.id, result.status)
            else:
                self.store.finish_trial(trial.id, INTERRUPTED, {}, INTERRUPTED_NOTE)
                log.info("resume: t%04d was interrupted; it will run again", trial.id)

    def hparams_rows(self, campaign_dir: Path) -> list[tuple[str, dict[str, Any], dict[str, float]]]:
        """(run, hparams, metrics) per scored trial, for TensorBoard's HParams view."""
        rows = []
        for t in self.store.trials(self.campaign_id):
            if t.status in (COMPLETED, EARLY_STOPPED) and finite(t.metrics.get("val_bpb")):
                hparams = {**dict(t.overrides), "kind": t.kind, "seed": t.seed}
                run = Path(t.run_dir).relative_to(campaign_dir) / "tb" if t.run_dir else Path(f"t{t.id:04d}")
                rows.append((str(run), hparams, {"hparam/val_bpb": t.metrics["val_bpb"]}))
        return rows
