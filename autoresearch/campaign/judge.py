"""The judge: what a screening run means, and whether a hypothesis that beat it is real.

Per hypothesis, in order:
1. the screening run (first campaign seed) is compared with the incumbent: a gain of more than
   ``critic.screening_margin`` noise floors (any gain, by default) → a candidate; else discarded;
2. a candidate is re-run on K fresh seeds, paired with the incumbent's runs on the same seeds (the
   screening seed never enters the test, so the winner's curse of screening does not bias it);
3. the critic's test + Benjamini–Hochberg (over every tested hypothesis) decide validated /
   rejected / inconclusive, and the time from proposal to verdict is recorded;
4. a validated finding becomes the incumbent, is scored once on the hidden test split, ablated
   along the search space's dependency graph, and re-tested at larger model sizes
   (``campaign.scale_ladder``).

Each step is a job for the campaign's scheduler (``schedule``): where it needs trials it yields
``Runs`` — all the seeds of a step at once, so with several workers they train side by side — and
an incumbent that changed while a candidate's seeds trained (another discovery validated beside
it) is caught up with before the verdict, so every finding is measured against the incumbent of
its moment.

A run of ours that crashes, diverges or times out anywhere here — a validation seed, an
ablation, the test split, a scale check — is a recorded outcome with its reason (the finding is
``inconclusive`` when its evidence is incomplete); it never ends the campaign, and a resumed
campaign reads it from the store instead of running it again. A kill between a verdict and the
end of its follow-ups loses nothing either: the resumed campaign gives each validated discovery
the test-split score, ablations and scale checks it does not have yet.
"""

from __future__ import annotations

import concurrent.futures as futures
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generator, Optional

from autoresearch.campaign.runner import TrialRequest, TrialRunner
from autoresearch.campaign.schedule import Job, Runs, Until
from autoresearch.campaign.state import CampaignState, finite
from autoresearch.config import ExperimentConfig
from autoresearch.executor import Executor
from autoresearch.result import COMPLETED, RunResult
from autoresearch.search import SearchSpace

log = logging.getLogger(__name__)
INCONCLUSIVE = "inconclusive"  # the critic's verdict for incomplete evidence (autoresearch.critic.INCONCLUSIVE)
RunConfig = tuple[dict[str, Any], Optional[int], str, Optional[dict[str, Any]]]  # overrides, hypothesis, kind, model patch


@dataclass(frozen=True)
class SeedRun:
    """One configuration on one seed: its value, or why there is none."""

    seed: int
    trial_id: int
    status: str
    value: Optional[float]

    @property
    def failed(self) -> bool:
        return self.value is None


class Judge:
    """Decides screening runs, validates candidates, and follows validated findings up."""

    def __init__(self, *, cfg: ExperimentConfig, store, state: CampaignState, runner: TrialRunner,
                 space: SearchSpace, campaign_dir: Path, seeds: list[int], timeout_s: float,
                 test_scorer: Executor):
        self.cfg = cfg
        self.critic = cfg.critic
        self.ccfg = cfg.campaign
        self.store = store
        self.state = state
        self.runner = runner
        self.space = space
        self.dir = campaign_dir
        self.seeds = seeds
        self.timeout_s = timeout_s
        # Test-split scoring: processes the executor starts on this machine (forked from a worker's
        # server, whose imports are paid already), waited for in a thread beside the trials in flight.
        self._test_scorer = test_scorer
        self._scoring = futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-split")

    def close(self) -> None:
        self._scoring.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ screening
    def judge(self, trial_id: int, hyp_id: int, overrides: dict[str, Any], result: RunResult) -> Job:
        """The screening decision; a candidate goes straight on to validation."""
        incumbent = self.state.incumbent()
        floor = self.state.noise() or 0.0
        if result.status != COMPLETED or not finite(result.val_bpb):
            self.store.set_trial_decision(trial_id, "discard", f"{result.status}")
            return
        gain = incumbent.bpb - result.val_bpb
        needed = self.critic.screening_margin * floor
        rule = f"{self.critic.screening_margin:g} × noise floor {floor:.4f}" if needed > 0 else "no gain"
        if gain <= needed:
            self.store.set_trial_decision(trial_id, "discard", f"Δ {gain:+.4f} ≤ {rule}")
            return
        self.store.set_trial_decision(trial_id, "candidate", f"Δ {gain:+.4f} > {rule}: validating")
        yield from self.validate(hyp_id, overrides, trial_id)

    def resume_jobs(self) -> list[Job]:
        """After a kill: judge screening runs nobody judged, finish validations that never reached
        a verdict, and give validated discoveries the follow-ups a kill cut short (test split,
        ablations, scale checks), before anything new is proposed. Runs that finished before the
        kill are read from the store, not trained again."""
        jobs = []
        for trial in self.state.undecided_screenings():
            hyp = self.state.hypothesis(trial.hypothesis_id)
            jobs.append(self.judge(trial.id, trial.hypothesis_id, hyp.overrides,
                                   RunResult.from_dict({**trial.metrics, "status": trial.status})))
        for trial in self.state.unassessed_candidates():
            jobs.append(self.validate(trial.hypothesis_id, trial.overrides, trial.id))
        for finding in self.store.findings(self.state.campaign_id):
            if finding.status == "validated" and (self._owes_test_split(finding) or self._owes_ablation(finding)
                                                  or self._owes_scale(finding)):
                log.info("h%d: finishing what a kill cut short after its verdict", finding.hypothesis_id)
                jobs.append(self.follow_up(finding))
        return jobs

    # ------------------------------------------------------------------ validation
    def validate(self, hyp_id: int, overrides: dict[str, Any], screen_trial_id: int) -> Job:
        from autoresearch.critic import assess

        seeds = self._validation_seeds()
        incumbent = self.state.incumbent()
        reference, candidate = yield from self._seed_runs(
            [(incumbent.overrides, incumbent.hypothesis_id, _reference_kind(incumbent.hypothesis_id), None),
             (overrides, hyp_id, "validation", None)], seeds, ahead=self._ablation_runs(hyp_id, overrides))
        while (now := self.state.incumbent()).hypothesis_id != incumbent.hypothesis_id:
            # A discovery was validated while these seeds trained: the candidate must beat it instead
            # (its runs on these seeds exist already, from its own validation).
            log.info("h%d: the incumbent is now h%s; comparing with it", hyp_id, now.hypothesis_id)
            incumbent = now
            [reference] = yield from self._seed_runs(
                [(now.overrides, now.hypothesis_id, _reference_kind(now.hypothesis_id), None)], seeds,
                ahead=self._ablation_runs(hyp_id, overrides))
        failures = _failures(candidate, reference, "validation")
        paired = [s for s in seeds if not candidate[s].failed and not reference[s].failed]
        cand_values = [candidate[s].value for s in paired]
        ref_values = [reference[s].value for s in paired]
        details: dict[str, Any] = {"seeds": seeds, "candidate": cand_values, "reference": ref_values,
                                   "against": incumbent.hypothesis_id, "overrides": overrides}
        if len(paired) >= 2:
            [assessment] = assess({hyp_id: cand_values}, ref_values, self.critic, paired=True)
            c = assessment.comparison
            verdict, effect, ci, p, q = assessment.verdict, c.effect, (c.ci_low, c.ci_high), c.p_value, assessment.q_value
            details.update(test=c.test, noise_std=assessment.noise.std)
        else:  # too few pairs for any test: no evidence either way
            effect = _mean(ref_values) - _mean(cand_values) if paired else 0.0
            verdict, ci, p, q = INCONCLUSIVE, (-math.inf, math.inf), 1.0, 1.0
            details.update(test="none", noise_std=self.state.noise())
        if failures:
            verdict = INCONCLUSIVE
            details.update(failures=failures, reason="; ".join(f["reason"] for f in failures))
        details.update(self._time_to_verdict(hyp_id))
        finding_id = self.store.add_finding(
            self.state.campaign_id, hyp_id, status=verdict, effect=effect, ci_low=ci[0], ci_high=ci[1],
            p_value=p, q_value=q, n=len(cand_values), details=details)
        self.apply_fdr()  # the family grew by one: every verdict is re-read under Benjamini–Hochberg
        finding = self.store.finding(finding_id)
        log.info("h%d %s: effect %+.4f bpb, CI [%+.4f, %+.4f], p=%.3g, q=%.3g%s", hyp_id, finding.status,
                 finding.effect, finding.ci_low, finding.ci_high, finding.p_value, finding.q_value,
                 f" ({details['reason']})" if failures else "")
        summary = f"{finding.status}: effect {finding.effect:+.4f} [{finding.ci_low:+.4f}, {finding.ci_high:+.4f}]"
        self.store.set_trial_decision(screen_trial_id, "keep" if finding.status == "validated" else "discard",
                                      summary + (f" — {details['reason']}" if failures else ""))
        if finding.status == "validated":
            yield from self.follow_up(finding)

    def follow_up(self, finding) -> Job:
        """What a validated discovery gets and does not have yet: the test-split score, the
        ablations, the scale checks (all three right after its verdict; after a kill, what is left)."""
        details = finding.details or {}
        hyp_id, overrides = finding.hypothesis_id, self._overrides_of(finding)
        seeds, against = details.get("seeds") or self._validation_seeds(), details.get("against")
        scoring = self.start_test_split(hyp_id) if self._owes_test_split(finding) else []
        if self._scoring_holds_the_slot():
            yield from self.record_test_split(finding.id, scoring)
        if self._owes_ablation(finding):
            yield from self.ablate(finding.id, hyp_id, overrides, seeds, details.get("candidate", []))
        if self._owes_scale(finding):
            incumbent_overrides = self.state.hypothesis(against).overrides if against is not None else {}
            yield from self.check_scale(finding.id, hyp_id, overrides, incumbent_overrides=incumbent_overrides,
                                        against=against, effect=finding.effect)
        if not self._scoring_holds_the_slot():  # the follow-ups trained while the runs were scored
            yield from self.record_test_split(finding.id, scoring)

    def _owes_test_split(self, finding) -> bool:
        details = finding.details or {}
        return self.critic.evaluate_test_split and finding.test_bpb is None and "test_split_errors" not in details

    def _owes_ablation(self, finding) -> bool:
        return (self.critic.ablations and len(self._overrides_of(finding)) > 1
                and "ablation" not in (finding.details or {}))

    def _overrides_of(self, finding) -> dict[str, Any]:
        return (finding.details or {}).get("overrides") or self.state.hypothesis(finding.hypothesis_id).overrides

    def _owes_scale(self, finding) -> bool:
        return len((finding.details or {}).get("scale", [])) < len(self.ccfg.scale_ladder)

    def validation_runs(self, hyp_id: int, overrides: dict[str, Any]) -> tuple[TrialRequest, ...]:
        """The candidate's validation runs not in the store yet: what a screening that passes asks
        for next, which idle workers may start early (``schedule.Runs.ahead``). With one worker
        nothing ever starts early, so nothing is looked up."""
        if self.runner.capacity == 1:
            return ()
        return self._requests_for_missing([(overrides, hyp_id, "validation", None)], self._validation_seeds())

    def _ablation_runs(self, hyp_id: int, overrides: dict[str, Any]) -> tuple[TrialRequest, ...]:
        """A validated discovery's ablation runs, asked for before its verdict as ``Runs.ahead``."""
        if self.runner.capacity == 1 or not self.critic.ablations or len(overrides) <= 1:
            return ()
        ablations = self._ablation_graph(overrides).leave_one_out(overrides)
        return self._requests_for_missing([(a.overrides, hyp_id, "ablation", None) for a in ablations],
                                          self._validation_seeds())

    def _validation_seeds(self) -> list[int]:
        return self.seeds[1 : 1 + max(self.critic.validation_seeds, 2)]  # the screening seed never enters the test

    def apply_fdr(self) -> None:
        """Benjamini–Hochberg across every hypothesis that reached multi-seed testing.

        Screening runs are not part of any test (validation uses fresh seeds), so the selection of
        which hypotheses to test does not bias their p-values, and BH over the tested family
        controls the false discovery rate of the campaign's claims. A finding whose evidence is
        incomplete (a run of ours failed) stays inconclusive whatever its q-value.
        """
        from autoresearch.critic import Comparison, benjamini_hochberg, classify

        findings = self.store.findings(self.state.campaign_id)
        if not findings:
            return
        critic = self.critic
        for finding, (_, q) in zip(findings, benjamini_hochberg([f.p_value for f in findings], critic.fdr)):
            details = finding.details or {}
            comparison = Comparison(effect=finding.effect, ci_low=finding.ci_low, ci_high=finding.ci_high,
                                    p_value=finding.p_value, n_candidate=finding.n, n_baseline=finding.n,
                                    test=details.get("test", critic.test.kind))
            noise = details.get("noise_std", self.state.noise() or 0.0)
            status = classify(comparison, q, fdr=critic.fdr, min_effect=critic.min_effect,
                              noise_std=noise if noise is not None else math.nan)
            if details.get("failures") or details.get("test") == "none":
                status = INCONCLUSIVE
            if status != finding.status or q != finding.q_value:
                self.store.update_finding(finding.id, q_value=q, status=status)

    # ------------------------------------------------------------------ after a verdict
    def start_test_split(self, hyp_id: int) -> list[tuple[Any, futures.Future]]:
        """Score a validated discovery's runs once on the hidden test split (nothing selects on it):
        the scoring processes start now, waited for in a thread; ``record_test_split`` collects them."""
        if not self.critic.evaluate_test_split:
            return []
        runs = [t for t in self.store.trials(self.state.campaign_id)
                if t.hypothesis_id == hyp_id and t.status == COMPLETED and t.kind in ("hypothesis", "validation")]
        return [(trial, self._scoring.submit(self._test_scorer.evaluate_test, Path(trial.run_dir), self.timeout_s))
                for trial in runs]

    def _scoring_holds_the_slot(self) -> bool:
        """A trial on a wall-clock budget would train fewer steps beside the scoring, so with one
        worker nothing starts meanwhile. On a steps or tokens budget its result cannot change, and
        with several workers the other slots keep training: ablations and new trials go on."""
        return self.cfg.trainer.budget.kind == "seconds" and self.runner.capacity == 1

    def record_test_split(self, finding_id: int, scoring: list[tuple[Any, futures.Future]]) -> Job:
        """Wait for the scoring started by ``start_test_split`` and record the mean test_bpb."""
        if not scoring:
            return
        yield Until(lambda: all(future.done() for _, future in scoring), exclusive=self._scoring_holds_the_slot())
        values, errors = [], []
        for trial, future in scoring:
            error = future.result()
            if error is None:
                values.append(RunResult.load(Path(trial.run_dir) / "metrics.json").test_bpb)
            else:
                log.warning("test-split scoring of t%04d failed: %s", trial.id, error)
                errors.append(f"t{trial.id:04d}: {error}")
        values = [v for v in values if finite(v)]
        fields: dict[str, Any] = {"test_bpb": sum(values) / len(values)} if values else {}
        if errors:
            fields["details"] = {**self._details(finding_id), "test_split_errors": errors}
        if fields:
            self.store.update_finding(finding_id, **fields)

    def ablate(self, finding_id: int, hyp_id: int, overrides: dict[str, Any], seeds: list[int],
               full_values: list[float]) -> Job:
        """Leave-one-out ablations along the dependency graph: what each key of a discovery is worth."""
        graph = self._ablation_graph(overrides)
        effects: dict[tuple[str, ...], float] = {}
        failures: list[dict[str, Any]] = []
        mean_full = _mean(full_values)
        ablations = list(graph.leave_one_out(overrides))
        every_run = yield from self._seed_runs([(a.overrides, hyp_id, "ablation", None) for a in ablations], seeds)
        for ablation, runs in zip(ablations, every_run):
            failed = [r for r in runs.values() if r.failed]
            failures += [{"removed": list(ablation.removed), "seed": r.seed, "trial": r.trial_id, "status": r.status,
                          "reason": f"ablation without {', '.join(ablation.removed)} on seed {r.seed} {r.status}"}
                         for r in failed]
            values = [r.value for r in runs.values() if not r.failed]
            if values and not failed:  # an effect from fewer seeds than the full model's would not compare
                effects[ablation.removed] = _mean(values) - mean_full
        attributed = graph.attribute(effects)
        png = self.dir / f"ablation_h{hyp_id}.png"
        graph.draw(png, attributed)
        details = {**self._details(finding_id), "ablation": attributed, "ablation_png": str(png)}
        if failures:
            details["ablation_failures"] = failures
        self.store.update_finding(finding_id, details=details)

    def check_scale(self, finding_id: int, hyp_id: int, overrides: dict[str, Any], *,
                    incumbent_overrides: dict[str, Any], against: Optional[int], effect: float) -> Job:
        """Re-test a discovery at larger models (the "scale gap"): for each factor of
        ``campaign.scale_ladder``, K seeds of the discovery paired with K of the incumbent at the
        same size; the effect, its CI, and whether it holds, shrinks or flips go into the details."""
        from autoresearch.critic import compare

        base = self.runner.composer.base_flat
        seeds = self.seeds[1 : 1 + max(self.ccfg.scale_seeds, 2)]
        rungs = []
        patches = [(scaled_model({**base, **overrides}, f), scaled_model({**base, **incumbent_overrides}, f))
                   for f in self.ccfg.scale_ladder]
        every_run = yield from self._seed_runs(
            [run for cand_patch, ref_patch in patches for run in ((overrides, hyp_id, "scale", cand_patch),
                                                                   (incumbent_overrides, against, "scale", ref_patch))],
            seeds)
        for i, (factor, (cand_patch, _)) in enumerate(zip(self.ccfg.scale_ladder, patches)):
            candidate, reference = every_run[2 * i], every_run[2 * i + 1]
            failures = _failures(candidate, reference, f"scale ×{factor}")
            paired = [s for s in seeds if not candidate[s].failed and not reference[s].failed]
            rung: dict[str, Any] = {"factor": factor, "model": cand_patch, "seeds": seeds,
                                    "candidate": [candidate[s].value for s in paired],
                                    "reference": [reference[s].value for s in paired]}
            if len(paired) >= 2 and not failures:
                c = compare(rung["candidate"], rung["reference"], test=self.critic.test.kind, alpha=self.critic.test.alpha,
                            paired=True)
                rung.update(effect=c.effect, ci_low=c.ci_low, ci_high=c.ci_high, p_value=c.p_value, test=c.test,
                            verdict=scale_verdict(effect, c.effect, c.ci_low, c.ci_high))
            else:
                rung.update(verdict="failed", reason="; ".join(f["reason"] for f in failures) or "too few seeds")
            log.info("h%d at ×%d model size: %s", hyp_id, factor, rung.get("verdict"))
            rungs.append(rung)
            self.store.update_finding(finding_id, details={**self._details(finding_id), "scale": rungs})

    # ------------------------------------------------------------------ helpers
    def _ablation_graph(self, overrides: dict[str, Any]):
        from autoresearch.critic import AblationGraph

        return AblationGraph(self.space.dependency_edges(), set(overrides))

    def _seed_runs(self, configs: list[RunConfig], seeds: list[int],
                   ahead: tuple[TrialRequest, ...] = ()) -> Generator[Runs, Any, list[dict[int, SeedRun]]]:
        """Each configuration ``(overrides, hypothesis, kind, model patch)`` on each of ``seeds``.

        Finished runs are read from the store (whatever their outcome, so a resumed campaign never
        repeats a crash); the rest are asked for together, to train side by side where there are
        workers for them. ``ahead``: what the caller will probably ask for next (``Runs.ahead``).
        """
        out, missing = self._missing_runs(configs, seeds)
        outcomes = (yield Runs(_requests(missing), ahead=ahead)) if missing else []
        for (index, request), outcome in zip(missing, outcomes):
            result = outcome.result
            value = result.val_bpb if result.status == COMPLETED and finite(result.val_bpb) else None
            out[index][request.seed] = SeedRun(request.seed, outcome.trial_id, result.status, value)
        return [{seed: runs[seed] for seed in seeds} for runs in out]

    def _requests_for_missing(self, configs: list[RunConfig], seeds: list[int]) -> tuple[TrialRequest, ...]:
        """Requests for the runs of ``configs`` on ``seeds`` the store does not hold yet."""
        return _requests(self._missing_runs(configs, seeds)[1])

    def _missing_runs(self, configs: list[RunConfig],
                      seeds: list[int]) -> tuple[list[dict[int, SeedRun]], list[tuple[int, TrialRequest]]]:
        """Per configuration, the runs on ``seeds`` the store holds; and (its index, a request) for
        each of the others."""
        out: list[dict[int, SeedRun]] = []
        missing: list[tuple[int, TrialRequest]] = []
        for overrides, hyp_id, kind, patch in configs:
            patch = patch or {}
            have = self.state.finished_runs(self.runner.composer.fingerprint({**overrides, **patch}))
            runs: dict[int, SeedRun] = {}
            for seed in seeds:
                trial = have.get(seed)
                if trial is not None:
                    value = trial.metrics.get("val_bpb") if trial.status == COMPLETED else None
                    runs[seed] = SeedRun(seed, trial.id, trial.status, float(value) if finite(value) else None)
                else:
                    missing.append((len(out), TrialRequest(overrides=overrides, seed=seed, kind=kind,
                                                           hypothesis_id=hyp_id, config_patch=patch)))
            out.append(runs)
        return out, missing

    def _time_to_verdict(self, hyp_id: int) -> dict[str, float]:
        """Wall time from the hypothesis being proposed (stored) to its verdict (now)."""
        proposed = self.store.hypothesis(hyp_id).created_at
        now = time.time()
        return {"proposed_at": proposed, "verdict_at": now, "time_to_verdict_s": round(now - proposed, 3)}

    def _details(self, finding_id: int) -> dict[str, Any]:
        return dict(self.store.finding(finding_id).details or {})


def scaled_model(flat: dict[str, Any], factor: int) -> dict[str, Any]:
    """Model overrides that make ``flat``'s model about ``factor`` × larger (non-embedding parameters,
    ~12·n_layer·n_embd²): width doubles for each factor of 4 (heads with it, so the head size is
    kept), depth takes the rest — ×2 → twice the layers, ×4 → twice the width, ×8 → both."""
    if factor < 1 or int(factor) != factor:
        raise ValueError(f"a scale factor must be a whole number >= 1, got {factor}")
    width = 1
    while factor % (4 * width * width) == 0:
        width *= 2
    depth = factor // (width * width)
    patch = {"model.n_layer": int(flat["model.n_layer"]) * depth, "model.n_embd": int(flat["model.n_embd"]) * width,
             "model.n_head": int(flat["model.n_head"]) * width}
    if int(flat.get("model.n_kv_head", 0) or 0):
        patch["model.n_kv_head"] = int(flat["model.n_kv_head"]) * width
    return patch


def scale_verdict(effect: float, scaled_effect: float, ci_low: float, ci_high: float) -> str:
    """How a discovery's effect (positive = better) carries over to a larger model.

    ``flips``: the interval lies wholly on the other side of zero; ``holds``: it lies wholly on the
    same side and the effect kept at least half its size; ``shrinks``: anything else (smaller, or
    no longer distinguishable from zero).
    """
    sign = 1.0 if effect >= 0 else -1.0
    low, high = sorted((sign * ci_low, sign * ci_high))
    if high < 0:
        return "flips"
    if low > 0 and sign * scaled_effect >= 0.5 * abs(effect):
        return "holds"
    return "shrinks"


def _requests(missing: list[tuple[int, TrialRequest]]) -> tuple[TrialRequest, ...]:
    return tuple(request for _, request in missing)


def _reference_kind(hypothesis_id: Optional[int]) -> str:
    return "baseline" if hypothesis_id is None else "validation"


def _failures(candidate: dict[int, SeedRun], reference: dict[int, SeedRun], what: str) -> list[dict[str, Any]]:
    out = []
    for side, runs in (("candidate", candidate), ("reference", reference)):
        for run in runs.values():
            if run.failed:
                who = "" if side == "candidate" else "reference run on "
                out.append({"side": side, "seed": run.seed, "trial": run.trial_id, "status": run.status,
                            "reason": f"{what} {who}seed {run.seed} {run.status}"})
    return out


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan
