"""The autonomous research loop: baseline → propose → gate → train → judge → remember, until done.

``Campaign`` is a façade, laid out in a user's lifecycle order (configure → baseline → test
hypotheses → finish), over rooms with one job each:

- ``state.CampaignState``: the campaign as the store holds it (baseline, noise, incumbent, history);
- ``gate.Gate``: propose and gate hypotheses, record refusals;
- ``runner.TrialRunner``: start trials on the executor, watch them (early stopping), record them;
- ``schedule.Scheduler``: the work as jobs (baseline, each hypothesis and its judgement), their
  trials kept running on every worker slot (``executor.workers``, locally or on Ray);
- ``proposals.HypothesisSource``: owed hypotheses, then the agent's, one prepared ahead;
- ``judge.Judge``: screening decision, validation, FDR, test split, ablation, scale checks;
- ``compose.TrialComposer`` and ``knowledge.Knowledge``: Hydra composition and memory/literature.

All state lives in the KnowledgeStore, so the loop is a function of what the store holds: kill
the campaign at any moment and the same command resumes it — finished trials are kept, a trial
that was interrupted mid-run is run again, and the agents are rebuilt from the recorded history
(Ax included), so nothing is lost and nothing finished runs twice.
"""

from __future__ import annotations

import concurrent.futures as futures
import dataclasses
import logging
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from autoresearch.campaign.compose import TrialComposer
from autoresearch.campaign.gate import Gate
from autoresearch.campaign.judge import Judge
from autoresearch.campaign.knowledge import Knowledge
from autoresearch.campaign.proposals import HypothesisSource
from autoresearch.campaign.runner import TrialOutcome, TrialRequest, TrialRunner
from autoresearch.campaign.schedule import Job, Runs, Scheduler, Until
from autoresearch.campaign.state import CampaignState, finite, was_interrupted
from autoresearch.campaign.startup import lock_file, open_executor
from autoresearch.campaign.view import CampaignView
from autoresearch.config import ConfigError, ConfigProblem, ExperimentConfig, to_dict
from autoresearch.executor import Executor
from autoresearch.result import COMPLETED
from autoresearch.search import Hypothesis, Proposal, SearchSpace, SearchSpaceError

log = logging.getLogger(__name__)


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


class Campaign:
    """One campaign directory, one store, one agent. ``run()`` drives it to the end (or resumes it)."""

    # ------------------------------------------------------------------ configure
    def __init__(self, cfg: ExperimentConfig, cli_overrides: list[str], *, interactive: Optional[bool] = None,
                 executor: Optional[Executor] = None):
        """Check the configuration, open the store, and start what can warm up in the background.

        Configuration errors (search space, agent) are raised here as one ``ConfigError`` naming the
        key and file, before any trial process starts. ``executor``: one ``startup.open_executor``
        started earlier (the campaign owns it from here), else one is opened now.
        """
        from autoresearch.agents import make_agent
        from autoresearch.repro import pip_freeze
        from autoresearch.store import KnowledgeStore

        assert cfg.campaign is not None
        logging.getLogger("ax").setLevel(logging.WARNING)
        self.cfg, self.ccfg = cfg, cfg.campaign
        self.space = _load_space(self.ccfg.search_space, self.ccfg.name)
        _check_agent(cfg)
        cli_overrides = [o for o in cli_overrides if not o.split("=", 1)[0].lstrip("+~").startswith("campaign.fresh")]
        self.dir = Path(self.ccfg.root) / self.ccfg.name
        lock = lock_file(self.ccfg)  # taken once below; every trial's bundle reuses it
        # Local workers' fork servers import torch in parallel with the set-up below.
        self.executor = executor or open_executor(cfg)
        self.store = KnowledgeStore(Path(cfg.knowledge.db))
        if self.ccfg.fresh:
            self._archive_previous()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.composer = TrialComposer(cli_overrides, dataclasses.replace(cfg, campaign=None))
        self.campaign_id = self.store.upsert_campaign(self.ccfg.name, to_dict(cfg), str(self.space.path), str(self.dir))
        self.seeds = list(self.ccfg.seeds)
        self.state = CampaignState(self.store, self.campaign_id, self.seeds)
        # `pip freeze` (~1 s) runs beside the rest of the start-up; the first trial waits for it.
        self._lock_taken = threading.Thread(target=lambda: lock.write_text(pip_freeze(refresh=True)[0]),
                                            name="pip-freeze", daemon=True)
        self._lock_taken.start()
        self._stopper = None
        self.started = time.monotonic()
        self.knowledge = Knowledge.create(cfg, self.store)
        self.state.resume_interrupted()
        self._baseline_done = False
        self.view = CampaignView(self.ccfg.name, self.ccfg.max_trials, interactive=interactive)
        self._pool = futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="propose")
        # The proposal thread's start-up (torch, Ax, the embedding model: seconds of CPU) waits
        # until the first trial trains, so it does not slow that trial's process while it imports.
        self._first_trial_training = threading.Event()
        self._pool.submit(self._first_trial_training.wait, 60)
        self._torch_threads = self._pool.submit(_one_torch_thread)
        timeout = self._trial_timeout()
        self.runner = TrialRunner(store=self.store, state=self.state, composer=self.composer, executor=self.executor,
                                  campaign_dir=self.dir, campaign_name=self.ccfg.name, view=self.view,
                                  stopper=lambda: self.stopper, timeout_s=timeout, before_start=self._lock_taken.join,
                                  on_training=self._first_trial_training.set)
        self.scheduler = Scheduler(self.runner)
        self.gate = Gate(store=self.store, state=self.state, composer=self.composer, knowledge=self.knowledge,
                         space=self.space, agent=lambda: self.agent, agent_kind=cfg.agent.kind, view=self.view,
                         seed=self.seeds[0], remaining=lambda: max(self.ccfg.max_trials - self.state.hypotheses_run(), 0),
                         retest_known_results=self.ccfg.retest_known_results,
                         running=lambda: [r.overrides for r in self.scheduler.running() if r.kind == "hypothesis"])
        self.source = HypothesisSource(gate=self.gate, state=self.state, scheduler=self.scheduler, pool=self._pool,
                                       max_trials=self.ccfg.max_trials, out_of_time=self._out_of_time,
                                       make_job=self._hypothesis_job)
        self.judge = Judge(cfg=cfg, store=self.store, state=self.state, runner=self.runner, space=self.space,
                           campaign_dir=self.dir, seeds=self.seeds, timeout_s=timeout,
                           test_scorer=self.executor)
        # Building the agent imports Ax (seconds) and replays the history into it: done in the
        # background while the baseline trains, so it costs the campaign no wall-clock time.
        self._agent = self._pool.submit(make_agent, cfg.agent, self.space, self.composer.base_flat, seed=self.seeds[0],
                                        on_call=self.gate.record_agent_call, history=self.state.history())
        self._pool.submit(self.knowledge.warm_up)  # load the embedding model while the baseline trains
        self._pool.submit(self.composer.check_seed_is_a_leaf)
        self._pool.submit(_preload_report)  # matplotlib's imports while trials train, not after the last

    @property
    def agent(self):
        self._first_trial_training.set()  # needed now: nothing to wait for
        return self._agent.result()

    @property
    def stopper(self):
        """The critic's early stopper, built on first use (it imports torch; baselines never stop),
        calibrated by this campaign's noise floor and earlier campaigns' curves on the same space."""
        if self._stopper is None:
            from autoresearch.critic import StopperContext, make_early_stopper

            context = StopperContext(noise_std=self.state.noise(), prior_curves=tuple(self.state.prior_curves()))
            self._stopper = make_early_stopper(self.cfg.critic.early_stopping, context)
        return self._stopper

    # ------------------------------------------------------------------ run
    def run(self) -> CampaignSummary:
        """Baseline, owed judgements and new hypotheses, on every worker, until a limit; then ``finish()``."""
        log.info("campaign %s in %s (search space %s, agent %s, %d %s worker(s))", self.ccfg.name, self.dir,
                 self.space.name, self.cfg.agent.kind, self.cfg.executor.workers, self.cfg.executor.kind)
        try:
            with self.view:
                self.scheduler.add(self._baseline_job(), "baseline")
                for job in self.judge.resume_jobs():
                    self.scheduler.add(self._after_baseline(job), "resumed judgement")
                while self.scheduler.step(self.source):
                    pass
            self.source.cancel()
            self._first_trial_training.set()
            self._pool.shutdown(wait=True)  # the last outcomes reach the agent and the memory
        finally:
            self.close(keep_store=True)
        return self.finish()

    def run_baseline(self) -> None:
        """The baseline, repeated over seeds: the first incumbent and the noise floor."""
        self.scheduler.add(self._baseline_job(), "baseline")
        self.scheduler.drain()

    def test(self, hypothesis: Hypothesis) -> Optional[TrialOutcome]:
        """Gate ``hypothesis``, screen it on the first seed and judge it (validation and what follows).
        None if the gate refused it (the refusal is recorded)."""
        gated = self.gate.admit(Proposal(hypothesis=hypothesis, refusals=[]))
        if gated is None:
            return None
        screened: list[TrialOutcome] = []
        self.scheduler.add(self._hypothesis_job(*gated, screened=screened), f"h{gated[0]}")
        self.scheduler.drain()
        return screened[0]

    def _baseline_job(self) -> Job:
        n = max(1, self.cfg.critic.noise_seeds)
        done = self.state.baseline_seeds_done()
        todo = [seed for seed in self.seeds[:n] if seed not in done]
        if todo:
            outcomes = yield Runs(tuple(TrialRequest(overrides={}, seed=seed, kind="baseline") for seed in todo))
            for outcome in outcomes:
                if outcome.request.seed == self.seeds[0]:
                    self.store.set_trial_decision(outcome.trial_id, "keep", "the baseline: first incumbent")
        self._baseline_done = True
        log.info("baseline val_bpb %s; noise floor σ=%s", [round(v, 4) for v in self.state.baseline_values()],
                 self.state.noise())

    def _hypothesis_job(self, hyp_id: int, hyp: Hypothesis, screened: Optional[list] = None) -> Job:
        """Screen ``hyp`` on the first seed (the critic may stop it early), then judge it."""
        [outcome] = yield Runs((TrialRequest(overrides=hyp.overrides, seed=self.seeds[0], kind="hypothesis",
                                             hypothesis_id=hyp_id, allow_stop=True),),
                               ahead=self.judge.validation_runs(hyp_id, hyp.overrides))
        if screened is not None:
            screened.append(outcome)
        # The agent learns the outcome and the memory embeds it on the proposal thread, after the
        # proposal in flight: off the critical path, while the next trial trains.
        self._pool.submit(self._learn, self.store.trial(outcome.trial_id))
        yield from self._after_baseline(self.judge.judge(outcome.trial_id, hyp_id, hyp.overrides, outcome.result))

    def _after_baseline(self, job: Job) -> Job:
        """``job`` once the baseline has its noise floor: a screening is judged against it."""
        yield Until(lambda: self._baseline_done)
        yield from job

    def _learn(self, trial) -> None:
        self.agent.observe(self.state.record_of(trial))
        self.knowledge.remember(trial)

    # ------------------------------------------------------------------ finish
    def finish(self) -> CampaignSummary:
        """Final statistics across every tested hypothesis, the report, the TSV and the HParams view."""
        from autoresearch.report import write_report

        self.judge.apply_fdr()
        self._log_hparams()
        report = write_report(self.dir, self.store, self.ccfg.name)
        trials = [t for t in self.store.trials(self.campaign_id, kind="hypothesis") if not was_interrupted(t)]
        scored = [t for t in trials if t.status == COMPLETED and finite(t.metrics.get("val_bpb"))]
        best = min(scored, key=lambda t: t.metrics["val_bpb"], default=None)
        baseline = self.state.baseline_values()
        summary = CampaignSummary(
            name=self.ccfg.name, campaign_dir=self.dir,
            baseline_bpb=baseline[0] if baseline else None, noise_std=self.state.noise(),
            best_bpb=best.metrics["val_bpb"] if best else None, best_trial=best.id if best else None,
            trials=len(trials), findings=[dataclasses.asdict(f) for f in self.store.findings(self.campaign_id)],
            report=report,
        )
        log.info("campaign %s done: %d hypotheses, best val_bpb %s, report %s", self.ccfg.name, len(trials),
                 f"{summary.best_bpb:.4f}" if summary.best_bpb else "n/a", report)
        return summary

    def close(self, *, keep_store: bool = False) -> None:
        """Stop the trials still running, the workers and the proposal thread (and the store unless asked not to)."""
        self._first_trial_training.set()
        self.executor.close()
        self.judge.close()
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._torch_threads.done() and not self._torch_threads.cancelled():
            import torch

            torch.set_num_threads(self._torch_threads.result())  # as it was (a caller's own process)
        if not keep_store:
            self.store.close()

    # ------------------------------------------------------------------ helpers
    def _trial_timeout(self) -> float:
        if self.ccfg.trial_timeout_s > 0:
            return self.ccfg.trial_timeout_s
        budget = self.cfg.trainer.budget
        return 3 * budget.value + 120 if budget.kind == "seconds" else 1800.0

    def _out_of_time(self) -> bool:
        if time.monotonic() - self.started > self.ccfg.max_wall_s:
            log.info("reached campaign.max_wall_s=%.0f", self.ccfg.max_wall_s)
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

    def _log_hparams(self) -> None:
        try:
            from autoresearch.tracking import log_campaign_hparams
        except ImportError:
            return
        rows = self.state.hparams_rows(self.dir)
        if rows and self.cfg.logger.kind == "tensorboard":
            log_campaign_hparams(self.dir, rows)  # `tensorboard --logdir <campaign dir>` compares every trial


def _load_space(name: str, campaign: str) -> SearchSpace:
    """The campaign's search space, or one ConfigError naming the key, the campaign file and the problem."""
    try:
        return SearchSpace.load(name)
    except (SearchSpaceError, OSError) as err:
        where = f"conf/campaign/{campaign}.yaml (or the command line)"
        raise ConfigError([ConfigProblem("campaign.search_space", line, where)
                           for line in str(err).splitlines() or [repr(name)]]) from None


def _check_agent(cfg: ExperimentConfig) -> None:
    """What can be checked about the agent without building it (no Ax import, no network call)."""
    from autoresearch.agents import check_agent_config

    try:
        check_agent_config(cfg.agent)
    except ConfigError as err:
        where = f"conf/agent/{cfg.agent.kind}.yaml (or the command line)"
        raise ConfigError([dataclasses.replace(p, file=p.file or where) for p in err.problems]) from None


def _preload_report() -> None:
    from autoresearch.report import preload  # torch and matplotlib: never on the way to the first trial

    preload()


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


def run_campaign(cfg: ExperimentConfig, cli_overrides: list[str], *, interactive: Optional[bool] = None,
                 executor: Optional[Executor] = None) -> CampaignSummary:
    """Run (or resume) the campaign ``cfg.campaign.name``. Entry point of ``+campaign=NAME``."""
    try:
        campaign = Campaign(cfg, cli_overrides, interactive=interactive, executor=executor)
    except BaseException:
        if executor is not None:
            executor.close()
        raise
    try:
        return campaign.run()
    finally:
        campaign.store.close()
