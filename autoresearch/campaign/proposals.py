"""Where the campaign's hypotheses come from: owed ones first, then the agent's, one prepared ahead.

The scheduler asks for a new hypothesis whenever the jobs' own runs leave a worker free. Owed
hypotheses (gated by a killed run, never finished) come first; then the agent's, proposed and gated
on the campaign's single proposal thread, one ahead of need, so Ax's fit, an LLM's latency and the
gate hide behind training time. The first is prepared once the incumbent is known and the last
baseline seed has started, as a person would wait for the baseline before proposing.
"""

from __future__ import annotations

import concurrent.futures as futures
import logging
import math
from typing import Callable, Optional

from autoresearch.campaign.gate import Gate
from autoresearch.campaign.schedule import Job, Scheduler
from autoresearch.campaign.state import CampaignState
from autoresearch.search import Hypothesis

log = logging.getLogger(__name__)


class HypothesisSource:
    """Feeds the scheduler hypothesis jobs until ``max_trials``, the wall clock, or the agent runs out."""

    def __init__(self, *, gate: Gate, state: CampaignState, scheduler: Scheduler, pool: futures.Executor,
                 max_trials: int, out_of_time: Callable[[], bool], make_job: Callable[[int, Hypothesis], Job]):
        self.gate = gate
        self.state = state
        self.scheduler = scheduler
        self.pool = pool  # the proposal thread
        self.max_trials = max_trials
        self.out_of_time = out_of_time
        self.make_job = make_job
        self._owed = state.owed_hypotheses()  # read before this run gates anything
        self._pending: Optional[futures.Future] = None  # the next gated hypothesis, being prepared
        self._over = False

    def poll(self) -> bool:
        if self._pending is None and not self._over and self._time_to_prepare() and self._wanted():
            self._pending = self.pool.submit(self.gate.next_hypothesis, self.out_of_time)
        return bool(self._owed) or (self._pending is not None and self._pending.done())

    def take(self, block: bool) -> Optional[Job]:
        if self._over or not self._wanted():
            return None
        while self._owed:
            hyp_id = self._owed.pop(0)
            if not self.state.has_run(hyp_id):
                return self.make_job(hyp_id, self.state.hypothesis(hyp_id))
        if self._pending is None:
            if not (block or self._time_to_prepare()):
                return None
            self._pending = self.pool.submit(self.gate.next_hypothesis, self.out_of_time)
        if not (block or self._pending.done()):
            return None
        gated, self._pending = self._pending.result(), None
        if gated is None:
            if self.gate.exhausted:
                log.warning("%d proposals in a row were refused; ending the search", self.gate.consecutive_refusals)
            self._over = True
            return None
        if self.state.hypotheses_run() + 1 < self.max_trials:  # the next one is prepared while this trains
            self._pending = self.pool.submit(self.gate.next_hypothesis, self.out_of_time)
        return self.make_job(*gated)

    @property
    def over(self) -> bool:
        return self._over

    def cancel(self) -> None:
        """A proposal nobody will run (the wall clock ran out) is dropped."""
        if self._pending is not None:
            self._pending.cancel()

    def _wanted(self) -> bool:
        if self.state.hypotheses_run() >= self.max_trials:
            if not self._over:
                log.info("reached campaign.max_trials=%d", self.max_trials)
            self._over = True
            return False
        if self.out_of_time():
            self._over = True
            return False
        return True

    def _time_to_prepare(self) -> bool:
        return "baseline" not in self.scheduler.queued_kinds() and math.isfinite(self.state.incumbent().bpb)
