"""The trial runner: takes trial requests, starts each on the executor, watches, records.

One job: turn a ``TrialRequest`` (a configuration, a seed, a kind) into a recorded ``TrialOutcome``.
It composes the trial's config, writes its spec, starts it on the campaign's executor (a local
worker slot or a Ray actor), streams its curve into the store, asks the early stopper about every
running trial each time that trial reports a new point, enforces its timeout, and records how it
ended. Up to ``executor.capacity`` trials are in flight at once; ``watch`` returns whichever ends
first. A trial whose worker or node died under it (an infrastructure failure, never the trial's
own crash) is recorded as ``interrupted`` with the reason, and its outcome says to run it again.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from autoresearch.campaign.compose import TrialComposer
from autoresearch.campaign.state import CampaignState
from autoresearch.config import to_dict
from autoresearch.executor import Executor, TrialHandle
from autoresearch.experiment import write_run_spec
from autoresearch.result import COMPLETED, EARLY_STOPPED, INTERRUPTED, RunResult, cancelled_error
from autoresearch.search import Hypothesis

log = logging.getLogger(__name__)
POLL_SECONDS = 0.25


@dataclass(frozen=True, kw_only=True)
class TrialRequest:
    """One run the campaign wants: ``overrides`` on the base config, on ``seed``, as ``kind``."""

    overrides: dict[str, Any]
    seed: int
    kind: str  # baseline | hypothesis | validation | ablation
    hypothesis_id: Optional[int] = None
    allow_stop: bool = False  # may the critic stop it early (screening runs only)
    config_patch: dict[str, Any] = field(default_factory=dict)  # extra overrides outside the hypothesis
    attempt: int = 0  # 1 for the one re-run of a trial whose worker or node died under it

    @property
    def override_strings(self) -> list[str]:
        return Hypothesis(overrides={**self.overrides, **self.config_patch}).override_strings()

    @property
    def label_overrides(self) -> dict[str, Any]:
        return {**self.overrides, **self.config_patch}


@dataclass(frozen=True)
class TrialOutcome:
    trial_id: int
    request: TrialRequest
    result: RunResult
    retry: bool = False  # its worker or node died: recorded as interrupted, to be run once more


@dataclass
class InFlight:
    """A trial the runner started and has not yet recorded."""

    request: TrialRequest
    running: TrialHandle
    label: str
    partial: list[tuple[float, float]] = field(default_factory=list)
    cancelled: Optional[str] = None  # why the campaign no longer needs it (a run started early)


def describe(overrides: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(overrides.items())) or "(baseline)"


class TrialRunner:
    """Starts, watches and records trials for one campaign, on its executor."""

    def __init__(self, *, store, state: CampaignState, composer: TrialComposer, executor: Executor,
                 campaign_dir: Path, campaign_name: str, view, stopper: Callable[[], Any], timeout_s: float,
                 before_start: Callable[[], None] = lambda: None, on_training: Callable[[], None] = lambda: None):
        self.store = store
        self.state = state
        self.composer = composer
        self.executor = executor
        self.dir = campaign_dir
        self.name = campaign_name
        self.view = view
        self.stopper = stopper  # called on first use: building it imports torch
        self.timeout_s = timeout_s
        self.before_start = before_start  # e.g. wait for the campaign's requirements.lock
        self.on_training = on_training  # a trial's timed training is under way

    @property
    def capacity(self) -> int:
        return self.executor.capacity

    def key(self, request: TrialRequest) -> tuple[str, int]:
        """What makes two requests the same run: the resolved configuration and the seed."""
        return self.composer.fingerprint(request.label_overrides), request.seed

    def run(self, request: TrialRequest) -> TrialOutcome:
        """One trial, start to end, with nothing else in flight (a re-run after an infrastructure
        failure included)."""
        while True:
            flying = [self.start(request)]
            outcome = self.record(self.watch(flying))
            if not outcome.retry:
                return outcome
            request = dataclasses.replace(request, attempt=request.attempt + 1)

    # ------------------------------------------------------------------ the three steps
    def start(self, request: TrialRequest) -> InFlight:
        strings = request.override_strings
        cfg = self.composer.compose(strings, seed=request.seed)
        trial_id = self.store.add_trial(self.state.campaign_id, request.hypothesis_id, kind=request.kind,
                                        seed=request.seed, overrides=request.label_overrides, config=to_dict(cfg),
                                        fingerprint=self.composer.fingerprint(request.label_overrides), run_dir="")
        run_dir = self.dir / "trials" / f"t{trial_id:04d}"
        self.store.set_trial_run_dir(trial_id, str(run_dir))
        cfg = dataclasses.replace(cfg, name=f"{self.name}/t{trial_id:04d}")
        write_run_spec(cfg, run_dir, [*self.composer.cli_overrides, *strings, f"seed={request.seed}"])
        self.before_start()
        running = self.executor.start(trial_id, run_dir, self.timeout_s)
        label = (f"t{trial_id:04d} {request.kind}" + (f" h{request.hypothesis_id}" if request.hypothesis_id else "")
                 + f" seed {request.seed}")
        self.view.start_trial(label, describe(request.label_overrides))
        return InFlight(request, running, label)

    def watch(self, flying: list[InFlight], wake: Callable[[], bool] = lambda: False) -> Optional[InFlight]:
        """Poll every trial in flight until one ends (returned) or ``wake()`` is true (None); the
        stopper is asked about each new point of every trial that may be stopped."""
        while True:
            for trial in flying:
                if trial.running.wait(POLL_SECONDS / len(flying)):
                    self._drain(trial)
                    self.on_training()  # a trial that ended before its timed training began
                    return trial
                self._drain(trial)
                trial.running.check_timeout()
            if wake():
                return None

    def _drain(self, trial: InFlight) -> None:
        running = trial.running
        rows = running.poll()
        if not rows:
            return
        if any(r.get("seconds", 0) > 0 for r in rows):
            self.on_training()
        self.store.add_curve_points(running.trial_id, rows)
        self.view.progress(trial.label, rows[-1])
        new_points = [(r["progress"], r["val_bpb"]) for r in rows if "val_bpb" in r]
        trial.partial.extend(new_points)
        if new_points and trial.request.allow_stop and running.stop_reason is None and not running.done:
            decision = self.stopper().should_stop(running.trial_id, list(trial.partial), self.state.finished_curves(),
                                                  self.state.incumbent().curve_bpb)
            if decision.stop:
                log.info("critic stops t%04d at progress %.2f: %s", running.trial_id, trial.partial[-1][0],
                         decision.reason)
                running.request_stop(decision.reason)

    def cancel(self, trial: InFlight, reason: str) -> None:
        """Stop a trial nobody needs any more; it is recorded as ``interrupted`` (unless it finished
        first), so a job that asks for the same run later trains it again."""
        if trial.cancelled is None:
            log.info("cancelling %s: %s", trial.label, reason)
            trial.cancelled = reason
            trial.running.request_stop(reason)

    def record(self, trial: InFlight) -> TrialOutcome:
        running = trial.running
        result = running.finish()
        if trial.cancelled is not None and result.status != COMPLETED:
            result.status, result.error = INTERRUPTED, cancelled_error(trial.cancelled)
            self.store.finish_trial(running.trial_id, INTERRUPTED, result.to_dict(), result.error)
            self.view.end_trial(trial.label, result)
            return TrialOutcome(running.trial_id, trial.request, result)
        if result.status == EARLY_STOPPED and running.stop_reason:
            result.error = result.error or running.stop_reason
        retry = running.infrastructure_failure and trial.request.attempt == 0
        if retry:  # not the trial's fault: it runs once more, elsewhere; this row keeps the reason
            self.store.finish_trial(running.trial_id, INTERRUPTED, result.to_dict(),
                                    f"{result.error}; run again as a new trial")
        else:
            self.store.finish_trial(running.trial_id, result.status, result.to_dict(), result.error)
        self.view.end_trial(trial.label, result)
        log.log(logging.WARNING if retry else logging.INFO, "%s → %s val_bpb %.4f (%.0f s)%s", trial.label,
                INTERRUPTED if retry else result.status, result.val_bpb, result.training_seconds,
                " — its worker died; running it again" if retry else "")
        return TrialOutcome(running.trial_id, trial.request, result, retry=retry)
