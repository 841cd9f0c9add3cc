"""The autonomous research loop: baseline → propose → gate → train → judge → remember, until done.

All state lives in the KnowledgeStore, so the loop is a function of what the store holds: kill
the campaign at any moment and the same command resumes it — finished trials are kept, a trial
that was interrupted mid-run is run again, and the agents are rebuilt from the recorded history
(Ax included), so nothing is lost and nothing finished runs twice.

Order of judgement, per hypothesis:
1. one screening run (first campaign seed); the critic may stop it early if its curve is losing;
2. if it beats the incumbent by more than the noise floor, K validation runs on fresh seeds,
   paired with the incumbent's runs on the same seeds (the screening run is left out of the
   test, so the winner's curse of screening does not bias it);
3. the critic's test + Benjamini–Hochberg decide validated / rejected / inconclusive; a validated
   finding becomes the incumbent, is scored once on the hidden test split, and is ablated along
   the search space's dependency graph.
"""

from __future__ import annotations

import concurrent.futures as futures
import dataclasses
import logging
import math
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from autoresearch.campaign.trial import RunningTrial, TrialLauncher
from autoresearch.campaign.view import CampaignView
from autoresearch.config import ConfigError, ExperimentConfig, compose, flatten, to_dict, to_experiment_config
from autoresearch.experiment import COMPLETED, CRASHED, EARLY_STOPPED, RunResult, write_run_spec
from autoresearch.search import Hypothesis, Refusal, SearchSpace, validate_hypothesis
from autoresearch.search.hypothesis import config_fingerprint

log = logging.getLogger(__name__)

# Config sections that make an experiment what it is; the rest (agent, critic, logger, ...) do not.
SUBSTANCE = ("model", "data", "trainer", "optim")
NOT_SUBSTANCE = ("data.cache_dir", "trainer.device", "trainer.threads", "trainer.log_every", "trainer.save_checkpoint")
MAX_CONSECUTIVE_REFUSALS = 10  # a search that only produces refusals ends instead of spinning
INTERRUPTED = "interrupted: the campaign stopped while this trial ran; it is run again on resume"


def substance(flat: dict[str, Any]) -> dict[str, Any]:
    """The keys of a flattened config that decide the outcome of a run (seed excluded)."""
    return {k: v for k, v in flat.items() if k.split(".", 1)[0] in SUBSTANCE and k not in NOT_SUBSTANCE}


@dataclass
class CampaignSummary:
    name: str
    campaign_dir: Path
    baseline_bpb: Optional[float]
    noise_std: Optional[float]
    best_bpb: Optional[float]
    best_trial: Optional[int]
    trials: int
    findings: list[dict[str, Any]] = field(default_factory=list)
    report: Optional[Path] = None


@dataclass
class _Incumbent:
    """The configuration to beat: the baseline at first, then each validated discovery."""

    overrides: dict[str, Any]
    hypothesis_id: Optional[int]
    bpb: float  # screening-seed score (first seed), what new screening runs are compared with
    curve_bpb: float  # its final curve point (the early stopper's scale)


class Campaign:
    """One campaign directory, one store, one agent. ``run()`` drives it to the end (or resumes it)."""

    def __init__(self, cfg: ExperimentConfig, cli_overrides: list[str], *, interactive: Optional[bool] = None):
        from autoresearch.agents import make_agent
        from autoresearch.store import KnowledgeStore

        assert cfg.campaign is not None
        logging.getLogger("ax").setLevel(logging.WARNING)
        self.cfg = cfg
        self.ccfg = cfg.campaign
        self.cli_overrides = [o for o in cli_overrides if not o.split("=", 1)[0].lstrip("+~").startswith("campaign.fresh")]
        self.dir = Path(self.ccfg.root) / self.ccfg.name
        self._composed: dict[tuple[tuple[str, ...], int], ExperimentConfig] = {}
        self._composed_lock = threading.Lock()
        self._seed_is_a_leaf: Optional[bool] = None
        from autoresearch.repro import LOCK_FILE_ENV, pip_freeze

        lock = self.dir / "requirements.lock"  # taken once below; every trial's bundle reuses it
        # The first trial's process starts importing now, in parallel with the set-up below.
        self.launcher = TrialLauncher(env={LOCK_FILE_ENV: str(lock.resolve())})
        self.launcher.prewarm()
        self.store = KnowledgeStore(Path(cfg.knowledge.db))
        if self.ccfg.fresh:
            self._archive_previous()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.space = SearchSpace.load(self.ccfg.search_space)
        self.base_cfg = dataclasses.replace(cfg, campaign=None)
        self.base_flat = substance(flatten(to_dict(self.base_cfg)))
        self.campaign_id = self.store.upsert_campaign(self.ccfg.name, to_dict(cfg), str(self.space.path), str(self.dir))
        self.seeds = list(self.ccfg.seeds)
        # `pip freeze` (~1 s) runs beside the rest of the start-up; the first trial waits for it.
        self._lock_taken = threading.Thread(target=lambda: lock.write_text(pip_freeze(refresh=True)[0]),
                                            name="pip-freeze", daemon=True)
        self._lock_taken.start()
        self._stopper = None
        self.started = time.monotonic()
        self.knowledge = _Knowledge.create(cfg, self.store)
        self._resume_interrupted()
        self._requeue = self._owed_hypotheses()
        self._consecutive_refusals = 0
        self._pending: Optional[futures.Future] = None  # the next gated hypothesis, being prepared
        self.view = CampaignView(self.ccfg.name, self.ccfg.max_trials, interactive=interactive)
        self._pool = futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="propose")
        # The proposal thread's start-up (torch, Ax, the embedding model: seconds of CPU) waits
        # until the first trial trains, so it does not slow that trial's process while it imports.
        self._first_trial_training = threading.Event()
        self._pool.submit(self._first_trial_training.wait, 60)
        self._torch_threads = self._pool.submit(_one_torch_thread)
        # Building the agent imports Ax (seconds) and replays the history into it: done in the
        # background while the baseline trains, so it costs the campaign no wall-clock time.
        self._agent = self._pool.submit(make_agent, cfg.agent, self.space, self.base_flat, seed=self.seeds[0],
                                        on_call=self._record_agent_call, history=self._history())

        self._pool.submit(self.knowledge.warm_up)  # load the embedding model while the baseline trains
        self._pool.submit(self._check_seed_is_a_leaf)

    @property
    def agent(self):
        self._first_trial_training.set()  # needed now: nothing to wait for
        return self._agent.result()

    @property
    def stopper(self):
        """The critic's early stopper, built on first use (it imports torch; baselines never stop)."""
        if self._stopper is None:
            from autoresearch.critic import make_early_stopper

            self._stopper = make_early_stopper(self.cfg.critic.early_stopping)
        return self._stopper

    # ------------------------------------------------------------------ lifecycle
    def run(self) -> CampaignSummary:
        log.info("campaign %s in %s (search space %s, agent %s)", self.ccfg.name, self.dir, self.space.name, self.cfg.agent.kind)
        self.launcher.prewarm()
        try:
            with self.view:
                self._baseline_phase()
                self._pending_validations()
                self._search_phase()
            if self._pending is not None:
                self._pending.cancel()  # a proposal nobody will run (the wall clock ran out)
            self._first_trial_training.set()
            self._pool.shutdown(wait=True)  # the last outcomes reach the agent and the memory
        finally:
            self._first_trial_training.set()
            self.launcher.close()
            self._pool.shutdown(wait=False, cancel_futures=True)
            if self._torch_threads.done() and not self._torch_threads.cancelled():
                import torch

                torch.set_num_threads(self._torch_threads.result())  # as it was (a caller's own process)
        return self.finish()

    def finish(self) -> CampaignSummary:
        """Final statistics across every tested hypothesis, the report, the TSV and the HParams view."""
        from autoresearch.report import write_report

        self._apply_fdr()
        self.store.export_results_tsv(self.campaign_id, self.dir / "results.tsv")
        self._log_hparams()
        report = write_report(self.dir, self.store, self.ccfg.name)
        trials = self.store.trials(self.campaign_id, kind="hypothesis")
        scored = [t for t in trials if t.status == COMPLETED and _finite(t.metrics.get("val_bpb"))]
        best = min(scored, key=lambda t: t.metrics["val_bpb"], default=None)
        baseline = self._baseline_values()
        floor = self._noise()
        summary = CampaignSummary(
            name=self.ccfg.name, campaign_dir=self.dir,
            baseline_bpb=baseline[0] if baseline else None, noise_std=floor,
            best_bpb=best.metrics["val_bpb"] if best else None, best_trial=best.id if best else None,
            trials=len(trials), findings=[dataclasses.asdict(f) for f in self.store.findings(self.campaign_id)],
            report=report,
        )
        log.info("campaign %s done: %d hypotheses, best val_bpb %s, report %s", self.ccfg.name, len(trials),
                 f"{summary.best_bpb:.4f}" if summary.best_bpb else "n/a", report)
        return summary

    # ------------------------------------------------------------------ phases
    def _baseline_phase(self) -> None:
        """The baseline, repeated over seeds: the first incumbent and the noise floor."""
        n = max(1, self.cfg.critic.noise_seeds)
        done = {t.seed for t in self.store.trials(self.campaign_id, kind="baseline") if t.status == COMPLETED}
        todo = [seed for seed in self.seeds[:n] if seed not in done]
        for i, seed in enumerate(todo):
            if self._out_of_time():
                return
            if i == len(todo) - 1 and self._pending is None and i > 0:
                # the incumbent is known: the first hypothesis is proposed while the last repeat trains
                self._pending = self._pool.submit(self._next_hypothesis)
            trial_id, _ = self._run_trial(None, {}, seed=seed, kind="baseline", allow_stop=False)
            if seed == self.seeds[0]:
                self.store.set_trial_decision(trial_id, "keep", "the baseline: first incumbent")
        values = self._baseline_values()
        log.info("baseline val_bpb %s; noise floor σ=%s", [round(v, 4) for v in values], self._noise())

    def _search_phase(self) -> None:
        self._first_trial_training.set()  # a resumed campaign may start here, with no baseline to run
        while True:
            if self._hypotheses_run() >= self.ccfg.max_trials:
                log.info("reached campaign.max_trials=%d", self.ccfg.max_trials)
                break
            if self._out_of_time():
                break
            requeued = self._requeued_hypothesis()
            if requeued is not None:
                hyp_id, hyp = requeued
            else:
                pending, self._pending = self._pending or self._pool.submit(self._next_hypothesis), None
                gated = pending.result()
                if gated is None:
                    if self._consecutive_refusals >= MAX_CONSECUTIVE_REFUSALS:
                        log.warning("%d proposals in a row were refused; ending the search", MAX_CONSECUTIVE_REFUSALS)
                    break
                hyp_id, hyp = gated
            # The next hypothesis is proposed and gated while this one trains: Ax's fit, the LLM's
            # latency and the gate (Hydra compose, embeddings) hide behind training time.
            if self._hypotheses_run() + 1 < self.ccfg.max_trials:
                self._pending = self._pool.submit(self._next_hypothesis)
            trial_id, result = self._run_trial(hyp_id, hyp.overrides, seed=self.seeds[0], kind="hypothesis",
                                               allow_stop=True)
            self._judge(trial_id, hyp_id, hyp, result)

    # ------------------------------------------------------------------ proposing and gating
    # Proposing and gating run on the single proposal thread, one task after another, and so does
    # every call into the agent (observe included): the agent's state never changes under a
    # running propose(), and the main thread never waits on Ax or an LLM between two trials.
    def _next_hypothesis(self) -> Optional[tuple[int, Hypothesis]]:
        """Propose and gate until a hypothesis passes; None once the campaign should stop searching."""
        while not self._out_of_time():
            gated = self._gate(self._propose())
            if gated is not None:
                return gated
            if self._consecutive_refusals >= MAX_CONSECUTIVE_REFUSALS:
                return None
        return None

    def _propose(self):
        from autoresearch.agents import AgentContext

        ctx = AgentContext(
            space=self.space, base=self.base_flat, history=self._history(), incumbent=self._incumbent_record(),
            baseline_bpb=(self._baseline_values() or [None])[0], noise_std=self._noise(),
            remaining_trials=max(self.ccfg.max_trials - self._hypotheses_run(), 0),
            neighbours=self.knowledge.neighbour_lines(self._incumbent().overrides),
            literature=self.knowledge.literature_lines(self.space),
        )
        try:
            return self.agent.propose(ctx)
        except Exception as err:  # an agent bug must not end an overnight campaign
            log.exception("agent %s failed to propose: %s", self.cfg.agent.kind, err)
            from autoresearch.search import Proposal

            return Proposal(hypothesis=None, refusals=[Refusal(reason=f"agent error: {type(err).__name__}: {err}",
                                                               agent=self.cfg.agent.kind, code="agent_error")])

    def _gate(self, proposal) -> Optional[tuple[int, Hypothesis]]:
        """Every proposal passes the same gate: schema, allowlist, dependencies, constraints,
        repeats (in any campaign), Hydra compose, and the literature. Refusals are recorded."""
        for refusal in proposal.refusals:
            self._record_refusal(refusal)
        if proposal.hypothesis is None:
            self._consecutive_refusals += 1
            return None
        hyp = proposal.hypothesis
        checked = validate_hypothesis(hyp.to_dict(), space=self.space, base=self.base_flat, agent=hyp.agent,
                                      seen=self._seen, compose=self._compose_check)
        if isinstance(checked, Refusal):
            return self._refuse(hyp, checked)
        duplicate = self.knowledge.duplicate_of(checked, self._fingerprint(checked.overrides))
        if duplicate:
            return self._refuse(hyp, Refusal(reason=f"repeats {duplicate}", agent=hyp.agent, code="duplicate"))
        match = self.knowledge.literature_match(checked, self.base_flat)
        if match is not None and match.status == "known_negative" and not self.ccfg.retest_known_results:
            return self._refuse(hyp, Refusal(reason=match.reason(), agent=hyp.agent, code="known_negative"),
                                status="flagged")
        self._consecutive_refusals = 0
        note = {"literature": match.citation, "literature_status": match.status} if match is not None else {}
        hyp_id = self.store.add_hypothesis(self.campaign_id, {**checked.to_dict(), **note}, status="proposed",
                                           fingerprint=self._fingerprint(checked.overrides))
        log.info("hypothesis h%d (%s): %s — %s", hyp_id, checked.agent, _fmt(checked.overrides), checked.rationale[:120])
        return hyp_id, checked

    def _refuse(self, hyp: Hypothesis, refusal: Refusal, status: str = "refused") -> None:
        """Record why ``hyp`` will not run, and tell its agent, so Ax abandons the point it suggested."""
        self._record_refusal(refusal, raw=hyp.to_dict(), status=status)
        self.agent.observe(self._refused_record(hyp))
        self._consecutive_refusals += 1
        return None

    def _seen(self, fingerprint: str) -> Optional[str]:
        for trial in self.store.find_by_fingerprint(fingerprint):
            if trial.kind in ("baseline", "hypothesis") and not (trial.error or "").startswith("interrupted"):
                campaign = self.store.campaign_by_id(trial.campaign_id).name
                return f"trial {trial.id} of campaign {campaign} ({trial.run_dir})"
        return None

    def _compose_check(self, override_strings: list[str]) -> Any:
        return self._compose(override_strings, seed=self.seeds[0])

    # ------------------------------------------------------------------ running
    def _compose(self, override_strings: list[str], *, seed: int) -> ExperimentConfig:
        """Hydra composition of one trial's config, memoised (~0.1 s each otherwise, between trials).

        The gate composes a hypothesis on the proposal thread and its screening run reuses that;
        the runs of one configuration on other seeds differ only in ``seed`` — unless the config
        interpolates the seed somewhere (``data.split_seed: ${seed}``), checked once.
        """
        with self._composed_lock:
            key = (tuple(override_strings), seed)
            if key in self._composed:
                return self._composed[key]
            same = next((c for (strings, _), c in self._composed.items() if strings == key[0]), None)
            if same is not None and self._seed_is_a_leaf:  # None (not yet known) composes in full
                cfg = dataclasses.replace(same, seed=seed)
            else:
                cfg = self._hydra_compose(override_strings, seed)
            if len(self._composed) >= 256:
                self._composed.pop(next(iter(self._composed)))
            self._composed[key] = cfg
            return cfg

    def _check_seed_is_a_leaf(self) -> None:
        """Does anything in the config interpolate the seed? Answered once, on the proposal thread."""
        a, b = (self._hydra_compose([], seed) for seed in (1, 2))
        self._seed_is_a_leaf = dataclasses.replace(a, seed=0) == dataclasses.replace(b, seed=0)

    def _hydra_compose(self, override_strings: list[str], seed: int) -> ExperimentConfig:
        cfg = to_experiment_config(compose([*self.cli_overrides, *override_strings, f"seed={seed}"]))
        return dataclasses.replace(cfg, campaign=None)

    def _fingerprint(self, overrides: dict[str, Any]) -> str:
        return config_fingerprint({**self.base_flat, **overrides})

    def _trial_timeout(self) -> float:
        if self.ccfg.trial_timeout_s > 0:
            return self.ccfg.trial_timeout_s
        budget = self.base_cfg.trainer.budget
        return 3 * budget.value + 120 if budget.kind == "seconds" else 1800.0

    def _run_trial(self, hyp_id: Optional[int], overrides: dict[str, Any], *, seed: int, kind: str,
                   allow_stop: bool) -> tuple[int, RunResult]:
        strings = Hypothesis(overrides=overrides).override_strings()
        cfg = self._compose(strings, seed=seed)
        trial_id = self.store.add_trial(self.campaign_id, hyp_id, kind=kind, seed=seed, overrides=overrides,
                                        config=to_dict(cfg), fingerprint=self._fingerprint(overrides), run_dir="")
        run_dir = self.dir / "trials" / f"t{trial_id:04d}"
        self.store.set_trial_run_dir(trial_id, str(run_dir))
        cfg = dataclasses.replace(cfg, name=f"{self.ccfg.name}/t{trial_id:04d}")
        write_run_spec(cfg, run_dir, [*self.cli_overrides, *strings, f"seed={seed}"])
        self._lock_taken.join()  # the bundle of every trial points at the campaign's lock file
        running = self.launcher.start(trial_id, run_dir, self._trial_timeout())
        label = f"t{trial_id:04d} {kind}" + (f" h{hyp_id}" if hyp_id else "") + f" seed {seed}"
        self.view.start_trial(label, _fmt(overrides))
        result = self._watch(running, allow_stop=allow_stop)
        if result.status == EARLY_STOPPED and running.stop_reason:
            result.error = result.error or running.stop_reason
        self.store.finish_trial(trial_id, result.status, result.to_dict(), result.error)
        self.view.end_trial(label, result)
        log.info("%s → %s val_bpb %.4f (%.0f s)", label, result.status, result.val_bpb, result.training_seconds)
        if kind == "hypothesis":
            # The agent learns the outcome and the memory embeds it on the proposal thread, after
            # the proposal in flight: off the critical path, while the next trial trains.
            self._pool.submit(self._learn, self.store.trial(trial_id))
        return trial_id, result

    def _learn(self, trial) -> None:
        self.agent.observe(self._record_of(trial))
        self.knowledge.remember(trial)

    def _watch(self, running: RunningTrial, *, allow_stop: bool) -> RunResult:
        partial: list[tuple[float, float]] = []
        while not running.wait(0.25):
            rows = running.poll()
            if any(r.get("seconds", 0) > 0 for r in rows):
                self.launcher.prewarm()  # timed training is under way: the next process may import now
                self._first_trial_training.set()
            if rows:
                self.store.add_curve_points(running.trial_id, rows)
                self.view.progress(rows[-1])
            new_points = [(r["progress"], r["val_bpb"]) for r in rows if "val_bpb" in r]
            partial.extend(new_points)
            if new_points and allow_stop and running.stop_reason is None:
                decision = self.stopper.should_stop(running.trial_id, list(partial), self._finished_curves(),
                                                    self._incumbent().curve_bpb)
                if decision.stop:
                    log.info("critic stops t%04d at progress %.2f: %s", running.trial_id, partial[-1][0], decision.reason)
                    running.request_stop(decision.reason)
            running.check_timeout()
        rows = running.poll()
        if rows:
            self.store.add_curve_points(running.trial_id, rows)
        self.launcher.prewarm()  # a trial that ended before its timed training began
        self._first_trial_training.set()
        return running.finish()

    # ------------------------------------------------------------------ judging
    def _judge(self, trial_id: int, hyp_id: int, hyp: Hypothesis, result: RunResult) -> None:
        incumbent = self._incumbent()
        floor = self._noise() or 0.0
        if result.status != COMPLETED or not _finite(result.val_bpb):
            self.store.set_trial_decision(trial_id, "discard", f"{result.status}")
            return
        gain = incumbent.bpb - result.val_bpb
        if gain <= floor:
            self.store.set_trial_decision(trial_id, "discard", f"Δ {gain:+.4f} within the noise floor {floor:.4f}")
            return
        self.store.set_trial_decision(trial_id, "candidate", f"Δ {gain:+.4f} > noise floor {floor:.4f}: validating")
        self._validate(hyp_id, hyp.overrides, trial_id)

    def _pending_validations(self) -> None:
        """Resume: screening runs the campaign died before judging are judged, and candidates whose
        validation was interrupted are validated, before anything new is proposed."""
        for trial in self.store.trials(self.campaign_id, kind="hypothesis"):
            if trial.decision is None and trial.status != "running" and not (trial.error or "").startswith("interrupted"):
                hyp = self.store.hypothesis(trial.hypothesis_id)
                self._judge(trial.id, trial.hypothesis_id, Hypothesis(overrides=hyp.overrides, agent=hyp.agent),
                            RunResult.from_dict({**trial.metrics, "status": trial.status}))
        assessed = {f.hypothesis_id for f in self.store.findings(self.campaign_id)}
        for trial in self.store.trials(self.campaign_id, kind="hypothesis"):
            if trial.decision == "candidate" and trial.hypothesis_id not in assessed:
                self._validate(trial.hypothesis_id, trial.overrides, trial.id)

    def _seed_values(self, overrides: dict[str, Any], hyp_id: Optional[int], seeds: list[int], kind: str) -> list[float]:
        """Scores of ``overrides`` on ``seeds``, reusing finished runs (resume) and running the rest."""
        fp = self._fingerprint(overrides)
        have = {t.seed: t.metrics.get("val_bpb") for t in self.store.find_by_fingerprint(fp)
                if t.campaign_id == self.campaign_id and t.status == COMPLETED}
        values = []
        for seed in seeds:
            if seed not in have:
                _, result = self._run_trial(hyp_id, overrides, seed=seed, kind=kind, allow_stop=False)
                have[seed] = result.val_bpb if result.status == COMPLETED else None
            if _finite(have[seed]):
                values.append(float(have[seed]))
        return values

    def _validate(self, hyp_id: int, overrides: dict[str, Any], screen_trial_id: int) -> None:
        from autoresearch.critic import assess

        k = max(self.cfg.critic.validation_seeds, 2)
        seeds = self.seeds[1 : 1 + k]  # fresh seeds: the screening seed never enters the test
        incumbent = self._incumbent()
        reference = self._seed_values(incumbent.overrides, incumbent.hypothesis_id,
                                      seeds, "baseline" if incumbent.hypothesis_id is None else "validation")
        candidate = self._seed_values(overrides, hyp_id, seeds, "validation")
        [assessment] = assess({hyp_id: candidate}, reference, self.cfg.critic, paired=True)
        c = assessment.comparison
        details = {"seeds": seeds, "candidate": candidate, "reference": reference, "against": incumbent.hypothesis_id,
                   "overrides": overrides, "test": c.test, "noise_std": assessment.noise.std}
        finding_id = self.store.add_finding(
            self.campaign_id, hyp_id, status=assessment.verdict, effect=c.effect, ci_low=c.ci_low,
            ci_high=c.ci_high, p_value=c.p_value, q_value=assessment.q_value, n=len(candidate), details=details)
        self._apply_fdr()  # the family grew by one: every verdict is re-read under Benjamini–Hochberg
        finding = self.store.finding(finding_id)
        log.info("h%d %s: effect %+.4f bpb, CI [%+.4f, %+.4f], p=%.3g, q=%.3g", hyp_id, finding.status,
                 finding.effect, finding.ci_low, finding.ci_high, finding.p_value, finding.q_value)
        assessment_status = finding.status
        verdict = f"{assessment_status}: effect {finding.effect:+.4f} [{finding.ci_low:+.4f}, {finding.ci_high:+.4f}]"
        self.store.set_trial_decision(screen_trial_id, "keep" if assessment_status == "validated" else "discard", verdict)
        if assessment_status != "validated":
            return
        self._score_test_split(finding_id, hyp_id)
        if self.cfg.critic.ablations and len(overrides) > 1:
            self._ablate(finding_id, hyp_id, overrides, seeds, candidate)

    def _score_test_split(self, finding_id: int, hyp_id: int) -> None:
        """A validated discovery is scored once on the hidden test split; nothing selects on it."""
        import subprocess
        import sys

        if not self.cfg.critic.evaluate_test_split:
            return
        runs = [t for t in self.store.trials(self.campaign_id) if t.hypothesis_id == hyp_id and t.status == COMPLETED]
        values = []
        for trial in runs:
            proc = subprocess.run([sys.executable, "-m", "autoresearch.experiment", trial.run_dir, "--evaluate-test"],
                                  capture_output=True, text=True)
            if proc.returncode == 0:
                values.append(RunResult.load(Path(trial.run_dir) / "metrics.json").test_bpb)
            else:
                log.warning("test-split scoring of t%04d failed: %s", trial.id, proc.stderr[-500:])
        values = [v for v in values if _finite(v)]
        if values:
            self.store.update_finding(finding_id, test_bpb=sum(values) / len(values))

    def _ablate(self, finding_id: int, hyp_id: int, overrides: dict[str, Any], seeds: list[int],
                full_values: list[float]) -> None:
        """Leave-one-out ablations along the dependency graph: what each key of a discovery is worth."""
        from autoresearch.critic import AblationGraph

        graph = AblationGraph(self.space.dependency_edges(), set(overrides))
        effects: dict[tuple[str, ...], float] = {}
        mean_full = sum(full_values) / len(full_values)
        for ablation in graph.leave_one_out(overrides):
            values = self._seed_values(ablation.overrides, hyp_id, seeds, "ablation")
            if values:
                effects[ablation.removed] = sum(values) / len(values) - mean_full
        attributed = graph.attribute(effects)
        png = self.dir / f"ablation_h{hyp_id}.png"
        graph.draw(png, attributed)
        finding = next(f for f in self.store.findings(self.campaign_id) if f.id == finding_id)
        self.store.update_finding(finding_id, details={**(finding.details or {}), "ablation": attributed,
                                                       "ablation_png": str(png)})

    def _apply_fdr(self) -> None:
        """Benjamini–Hochberg across every hypothesis that reached multi-seed testing.

        Screening runs are not part of any test (validation uses fresh seeds), so the selection of
        which hypotheses to test does not bias their p-values, and BH over the tested family
        controls the false discovery rate of the campaign's claims.
        """
        from autoresearch.critic import Comparison, benjamini_hochberg, classify

        findings = self.store.findings(self.campaign_id)
        if not findings:
            return
        critic = self.cfg.critic
        for finding, (_, q) in zip(findings, benjamini_hochberg([f.p_value for f in findings], critic.fdr)):
            comparison = Comparison(effect=finding.effect, ci_low=finding.ci_low, ci_high=finding.ci_high,
                                    p_value=finding.p_value, n_candidate=finding.n, n_baseline=finding.n,
                                    test=(finding.details or {}).get("test", critic.test))
            noise = (finding.details or {}).get("noise_std", self._noise() or 0.0)
            status = classify(comparison, q, fdr=critic.fdr, min_effect=critic.min_effect,
                              noise_std=noise if noise is not None else math.nan)
            if status != finding.status or q != finding.q_value:
                self.store.update_finding(finding.id, q_value=q, status=status)

    # ------------------------------------------------------------------ state derived from the store
    def _baseline_values(self) -> list[float]:
        trials = sorted(self.store.trials(self.campaign_id, kind="baseline"), key=lambda t: self.seeds.index(t.seed)
                        if t.seed in self.seeds else 99)
        return [t.metrics["val_bpb"] for t in trials if t.status == COMPLETED and _finite(t.metrics.get("val_bpb"))]

    def _noise(self) -> Optional[float]:
        from autoresearch.critic import noise_floor

        values = self._baseline_values()
        return noise_floor(values).std if len(values) >= 2 else None

    def _incumbent(self) -> _Incumbent:
        validated = [f for f in self.store.findings(self.campaign_id) if f.status == "validated"]
        if validated:
            best = validated[-1]  # findings are chained: each one beat the incumbent before it
            screen = [t for t in self.store.trials(self.campaign_id, kind="hypothesis")
                      if t.hypothesis_id == best.hypothesis_id and t.status == COMPLETED]
            if screen:
                trial = screen[0]
                return _Incumbent(trial.overrides, best.hypothesis_id, trial.metrics["val_bpb"], self._curve_end(trial.id))
        base = [t for t in self.store.trials(self.campaign_id, kind="baseline")
                if t.status == COMPLETED and t.seed == self.seeds[0]]
        if base:
            return _Incumbent({}, None, base[0].metrics["val_bpb"], self._curve_end(base[0].id))
        return _Incumbent({}, None, math.inf, math.inf)

    def _curve_end(self, trial_id: int) -> float:
        points = [r["val_bpb"] for r in self.store.curve(trial_id) if "val_bpb" in r]
        return points[-1] if points else math.inf

    def _finished_curves(self) -> dict[int, list[tuple[float, float]]]:
        curves = {}
        for t in self.store.trials(self.campaign_id):
            if t.status == COMPLETED and t.kind in ("baseline", "hypothesis"):
                curves[t.id] = [(r["progress"], r["val_bpb"]) for r in self.store.curve(t.id) if "val_bpb" in r]
        return curves

    def _hypotheses_run(self) -> int:
        return sum(1 for t in self.store.trials(self.campaign_id, kind="hypothesis")
                   if not (t.error or "").startswith("interrupted"))

    def _history(self):
        return [self._record_of(t) for t in self.store.trials(self.campaign_id, kind="hypothesis")
                if t.status != "running" and not (t.error or "").startswith("interrupted")]

    def _record_of(self, trial):
        from autoresearch.agents import TrialRecord

        hyp = self.store.hypothesis(trial.hypothesis_id) if trial.hypothesis_id is not None else None
        return TrialRecord(trial_id=trial.id, overrides=dict(trial.overrides), status=trial.status,
                           val_bpb=trial.metrics.get("val_bpb") if _finite(trial.metrics.get("val_bpb")) else None,
                           progress=float(trial.metrics.get("progress", 0.0) or 0.0),
                           agent=(hyp.agent if hyp else "unknown") or "unknown",
                           rationale=(hyp.rationale if hyp else "") or "",
                           kept=trial.decision in ("keep", "candidate"))

    def _refused_record(self, hyp: Hypothesis):
        from autoresearch.agents import TrialRecord

        return TrialRecord(trial_id=-1, overrides=dict(hyp.overrides), status="refused", val_bpb=None, progress=0.0,
                           agent=hyp.agent, rationale=hyp.rationale, kept=False)

    def _incumbent_record(self):
        from autoresearch.agents import TrialRecord

        inc = self._incumbent()
        if not math.isfinite(inc.bpb):
            return None
        return TrialRecord(trial_id=-1, overrides=dict(inc.overrides), status=COMPLETED, val_bpb=inc.bpb,
                           progress=1.0, agent="incumbent", rationale="current best validated configuration", kept=True)

    def _requeued_hypothesis(self) -> Optional[tuple[int, Hypothesis]]:
        """The next hypothesis a killed campaign owed: gated but never run, or its trial interrupted."""
        while self._requeue:
            hyp_id = self._requeue.pop(0)
            trials = [t for t in self.store.trials(self.campaign_id, kind="hypothesis") if t.hypothesis_id == hyp_id]
            if any(not (t.error or "").startswith("interrupted") for t in trials):
                continue  # it has run since
            row = self.store.hypothesis(hyp_id)
            return hyp_id, Hypothesis(overrides=row.overrides, rationale=row.rationale,
                                      expected_effect=row.expected_effect, agent=row.agent, parent=row.parent)
        return None

    def _owed_hypotheses(self) -> list[int]:
        """At start-up: hypotheses that passed the gate in an earlier run but have no finished trial.

        Read once, before this run gates anything, so a hypothesis prepared in the background
        for the next trial is never mistaken for one owed from a killed run.
        """
        trials = self.store.trials(self.campaign_id, kind="hypothesis")
        finished = {t.hypothesis_id for t in trials if not (t.error or "").startswith("interrupted")}
        return [h.id for h in self.store.hypotheses(self.campaign_id, status="proposed") if h.id not in finished]

    def _resume_interrupted(self) -> None:
        """Trials left 'running' by a killed campaign: record them if they finished, else mark them."""
        for trial in self.store.running_trials(self.campaign_id):
            metrics = Path(trial.run_dir) / "metrics.json" if trial.run_dir else None
            if metrics is not None and metrics.is_file():
                result = RunResult.load(metrics)
                self.store.finish_trial(trial.id, result.status, result.to_dict(), result.error)
                log.info("resume: t%04d had finished (%s); recorded", trial.id, result.status)
            else:
                self.store.finish_trial(trial.id, CRASHED, {}, INTERRUPTED)
                log.info("resume: t%04d was interrupted; it will run again", trial.id)

    def _out_of_time(self) -> bool:
        if time.monotonic() - self.started > self.ccfg.max_wall_seconds:
            log.info("reached campaign.max_wall_seconds=%.0f", self.ccfg.max_wall_seconds)
            return True
        return False

    def _archive_previous(self) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        if self.dir.exists():
            target = self.dir.with_name(f"{self.dir.name}.{stamp}")
            shutil.move(str(self.dir), target)
            log.info("campaign.fresh: previous directory moved to %s", target)
        if self.store.campaign(self.ccfg.name) is not None:
            self.store.rename_campaign(self.ccfg.name, f"{self.ccfg.name}.{stamp}")

    # ------------------------------------------------------------------ recording helpers
    def _record_refusal(self, refusal: Refusal, raw: Any = None, status: str = "refused") -> None:
        raw = raw if raw is not None else refusal.raw
        payload = raw if isinstance(raw, dict) and "overrides" in raw else {"overrides": {}, "raw": str(raw)[:2000],
                                                                           "agent": refusal.agent}
        self.store.add_hypothesis(self.campaign_id, payload, status=status, refusal_code=refusal.code,
                                  refusal_reason=refusal.reason)
        self.view.refused(refusal.reason)
        log.info("refused (%s, %s): %s", refusal.agent, refusal.code, refusal.reason)

    def _record_agent_call(self, call) -> None:
        self.store.add_agent_call(self.campaign_id, agent=call.agent, model=call.model, ok=call.ok,
                                  latency_s=call.latency_s, prompt_tokens=call.prompt_tokens,
                                  completion_tokens=call.completion_tokens, cost_usd=call.cost_usd, error=call.error)

    def _log_hparams(self) -> None:
        try:
            from autoresearch.tracking import log_campaign_hparams
        except ImportError:
            return
        rows = []
        for t in self.store.trials(self.campaign_id):
            if t.status in (COMPLETED, EARLY_STOPPED) and _finite(t.metrics.get("val_bpb")):
                hparams = {**{k: v for k, v in t.overrides.items()}, "kind": t.kind, "seed": t.seed}
                run = Path(t.run_dir).relative_to(self.dir) / "tb" if t.run_dir else Path(f"t{t.id:04d}")
                rows.append((str(run), hparams, {"hparam/val_bpb": t.metrics["val_bpb"]}))
        if rows and self.cfg.logger.kind == "tensorboard":
            log_campaign_hparams(self.dir, rows)  # `tensorboard --logdir <campaign dir>` compares every trial


class _Knowledge:
    """Semantic memory and literature, or nothing when they cannot load (the campaign goes on)."""

    def __init__(self, memory=None, literature=None, cfg=None):
        self.memory = memory
        self.literature = literature
        self.cfg = cfg

    @classmethod
    def create(cls, cfg: ExperimentConfig, store) -> "_Knowledge":
        try:
            from autoresearch.knowledge import Literature, Memory, make_embedder

            kcfg = cfg.knowledge
            embedder = make_embedder(kcfg.embedder, model=kcfg.embedding_model or None)
            literature = Literature(store, embedder, threshold=kcfg.literature_threshold)
            for path in kcfg.literature_files:
                literature.add_file(Path(path))
            return cls(Memory(store, embedder, duplicate_threshold=kcfg.duplicate_threshold), literature, kcfg)
        except ConfigError:
            raise
        except Exception as err:  # noqa: BLE001 - memory is an aid, not a precondition
            log.warning("semantic memory unavailable (%s: %s); duplicates are still caught by fingerprint",
                        type(err).__name__, err)
            return cls()

    def warm_up(self) -> None:
        """Load the embedding model and embed what the store holds, off the critical path."""
        if self.memory is not None:
            try:
                self.memory.embedder.embed(["warm-up"])  # loads the model once
                self.memory.sync()
            except Exception as err:  # noqa: BLE001 - memory is an aid, not a precondition
                log.warning("semantic memory could not warm up: %s", err)

    def duplicate_of(self, hyp: Hypothesis, fingerprint: str) -> Optional[str]:
        if self.memory is None:
            return None
        hit = self.memory.find_duplicate(hyp.to_dict(), fingerprint)
        return hit.reason if hit else None

    def literature_match(self, hyp: Hypothesis, base: dict[str, Any]):
        if self.literature is None:
            return None
        return self.literature.check(hyp.to_dict(), context=base)

    def neighbour_lines(self, overrides: dict[str, Any]) -> list[str]:
        if self.memory is None or self.cfg is None or self.cfg.neighbours == 0:
            return []
        query = {"overrides": overrides, "rationale": ""}
        return [n.summary() for n in self.memory.nearest(query, k=self.cfg.neighbours)]

    def literature_lines(self, space: SearchSpace) -> list[str]:
        if self.literature is None:
            return []
        keys = set(space.parameters)
        return [f"{e.citation}: {e.claimed_effect}" for e in self.literature.entries
                if keys & set(e.keys)][:12]

    def remember(self, trial) -> None:
        if self.memory is None:
            return
        try:
            self.memory.remember_trial(trial)
        except Exception as err:  # noqa: BLE001
            log.warning("could not embed t%04d: %s", trial.id, err)


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _fmt(overrides: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(overrides.items())) or "(baseline)"


def _one_torch_thread() -> int:
    """One intra-op thread for the campaign process; returns the previous setting.

    The campaign process only proposes and judges; trials train in their own processes. One thread
    here leaves the cores to the trial while Ax and the early-stopping GP fit beside it. The first
    task of the proposal thread, so torch's import is off the path to the first trial.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    return previous


def run_campaign(cfg: ExperimentConfig, cli_overrides: list[str], *, interactive: Optional[bool] = None) -> CampaignSummary:
    """Run (or resume) the campaign ``cfg.campaign.name``. Entry point of ``+campaign=NAME``."""
    campaign = Campaign(cfg, cli_overrides, interactive=interactive)
    try:
        return campaign.run()
    finally:
        campaign.store.close()
