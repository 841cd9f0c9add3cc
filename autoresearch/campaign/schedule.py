"""The schedule: a campaign's pieces of work, several at once, over the executor's worker slots.

A campaign's work is a handful of *jobs*: the baseline's seeds; each hypothesis (screen it, then
judge it: validation seeds, the test split, ablations, scale checks); the judgements a killed
campaign still owed. A job is a generator written in the order a person would do the work. Where
it needs trials it yields ``Runs`` and gets their outcomes back, in the order asked; where it waits
for something else (the noise floor, a scoring in a thread) it yields ``Until``.

The scheduler keeps the slots busy: first the runs that jobs asked for (older jobs first: the
baseline, then judgements in the order their hypotheses came), then, while slots are left, a new
hypothesis from the campaign's ``Source``. Two jobs that need the same configuration on the same
seed share one trial; a trial whose worker died is run once more. With one worker this is the
sequential order exactly: the baseline's seeds, then each hypothesis screened and judged before
the next one starts.

Once no new hypothesis will come, a campaign's last judgements would leave slots idle while a
screening run or a validation seed decides what comes next. With several workers, those slots
start the runs a job said it will *probably* ask for next (``Runs.ahead``: a screening's
validation seeds, a validation's ablations). Such a speculative trial becomes the job's own when
the job asks for it, is kept in the store if it finishes first (the job then reads it from there,
as after a resume), and is cancelled (recorded ``interrupted``, with why) once the job moves on
without it.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Generator, Optional, Protocol, Union

from autoresearch.campaign.runner import POLL_SECONDS, InFlight, TrialOutcome, TrialRequest, TrialRunner
from autoresearch.result import INTERRUPTED

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Runs:
    """A job needs these trials; it resumes with their outcomes, in this order. ``ahead``: the runs
    it will probably ask for next, which a slot with nothing else to do may start early."""

    requests: tuple[TrialRequest, ...]
    ahead: tuple[TrialRequest, ...] = ()


@dataclass(frozen=True)
class Until:
    """A job waits until ``ready()``. ``exclusive``: the wait is work of the campaign process's own
    on the cores (a test-split scoring), so no new hypothesis starts meanwhile."""

    ready: Callable[[], bool]
    exclusive: bool = False


Wait = Union[Runs, Until]
Job = Generator[Wait, Optional[list[TrialOutcome]], None]
Key = tuple[str, int]  # (configuration fingerprint, seed): what makes two requests one trial


class Source(Protocol):
    """Where new hypotheses come from once the jobs' own runs leave a slot free."""

    def poll(self) -> bool:
        """Called on every poll while trials run: may start preparing the next job; True when one is ready."""

    def take(self, block: bool) -> Optional[Job]:
        """The next job, or None: none ready yet (``block`` False) or none will come (``block`` True)."""

    @property
    def over(self) -> bool:
        """No new job will come (a limit was reached or the agent ran out)."""


class NoSource:
    """No new work: run what the jobs ask for, then stop."""

    over = True

    def poll(self) -> bool:
        return False

    def take(self, block: bool) -> Optional[Job]:
        return None


@dataclass(eq=False)
class _Task:
    job: Job
    name: str
    order: int  # its runs' priority: older jobs first
    waiting: Optional[Wait] = None  # None: not started yet
    outcomes: dict[int, TrialOutcome] = field(default_factory=dict)
    wanted: set[Key] = field(default_factory=set)  # keys of its current wait's runs, asked for or ahead
    ahead: list[tuple[Key, TrialRequest]] = field(default_factory=list)  # not yet started early


class Scheduler:
    """Runs jobs' trials on the runner, at most ``runner.capacity`` at once."""

    def __init__(self, runner: TrialRunner):
        self.runner = runner
        self._tasks: list[_Task] = []
        self._order = itertools.count()
        self._seq = itertools.count()
        self._queue: list[tuple[int, int, Key]] = []  # (priority, arrival, key): a heap
        self._requests: dict[Key, TrialRequest] = {}  # queued or flying
        self._waiters: dict[Key, list[tuple[_Task, int]]] = {}
        self._flying: dict[Key, InFlight] = {}
        self._speculative: dict[Key, _Task] = {}  # flying early for a job that has not asked yet
        self._running: tuple[TrialRequest, ...] = ()  # a snapshot other threads may read

    # ------------------------------------------------------------------ what a caller sees
    def add(self, job: Job, name: str) -> None:
        self._tasks.append(_Task(job, name, next(self._order)))

    def running(self) -> list[TrialRequest]:
        """Requests whose trials are in flight now (what an agent should not propose again)."""
        return list(self._running)

    def queued_kinds(self) -> set[str]:
        return {self._requests[key].kind for _, _, key in self._queue}

    def drain(self) -> None:
        """Run every job added so far to its end, starting nothing new."""
        while self.step(NoSource()):
            pass

    def step(self, source: Source) -> bool:
        """Advance the jobs, fill free slots, then wait for the next event. False once all is done."""
        self._advance()
        while len(self._flying) < self.runner.capacity and self._queue:
            self._start_next()
        free = len(self._flying) < self.runner.capacity
        if free and not self._exclusive_wait():
            idle = not self._flying and not self._tasks
            job = source.take(block=idle)
            if job is not None:
                self.add(job, getattr(job, "__name__", "job"))
                return True
            if idle:
                return False
            if source.over and self.runner.capacity > 1:
                self._start_ahead()
        if self._flying:
            # the source is polled even with no slot free: it may start preparing the next hypothesis
            ended = self.runner.watch(list(self._flying.values()),
                                      wake=lambda: (source.poll() and free) or self._until_ready())
            if ended is not None:
                self._finish(ended)
        else:
            time.sleep(POLL_SECONDS)  # only waits on conditions left (a scoring in a thread)
            source.poll()
        return True

    # ------------------------------------------------------------------ jobs
    def _advance(self) -> None:
        """Resume every job whose wait is over, until each waits again or ends."""
        for task in list(self._tasks):
            while self._ready(task):
                wait = task.waiting
                sent = [task.outcomes[i] for i in range(len(wait.requests))] if isinstance(wait, Runs) else None
                task.outcomes, task.wanted, task.ahead = {}, set(), []
                try:
                    task.waiting = task.job.send(sent)
                except StopIteration:
                    self._tasks.remove(task)
                    break
                if isinstance(task.waiting, Runs):
                    self._enqueue(task, task.waiting)
        self._cancel_unwanted()

    @staticmethod
    def _ready(task: _Task) -> bool:
        wait = task.waiting
        if wait is None:
            return True
        if isinstance(wait, Runs):
            return len(task.outcomes) == len(wait.requests)
        return wait.ready()

    def _until_ready(self) -> bool:
        return any(isinstance(t.waiting, Until) and t.waiting.ready() for t in self._tasks)

    def _exclusive_wait(self) -> bool:
        return any(isinstance(t.waiting, Until) and t.waiting.exclusive for t in self._tasks)

    # ------------------------------------------------------------------ trials
    def _enqueue(self, task: _Task, runs: Runs) -> None:
        for index, request in enumerate(runs.requests):
            key = self.runner.key(request)
            task.wanted.add(key)
            if key in self._waiters:  # already queued or flying for another job: share it
                self._waiters[key].append((task, index))
                continue
            self._waiters[key] = [(task, index)]
            self._requests[key] = request
            if self._speculative.pop(key, None) is None:  # else: started early, now the job's own
                heapq.heappush(self._queue, (task.order, next(self._seq), key))
        if runs.ahead and self.runner.capacity > 1:
            task.ahead = [(self.runner.key(request), request) for request in runs.ahead]
            task.wanted.update(key for key, _ in task.ahead)

    def _start_ahead(self) -> None:
        """Free slots, nothing queued and no new hypothesis to come: start the runs older jobs will
        probably ask for next."""
        for task in self._tasks:
            while task.ahead and len(self._flying) < self.runner.capacity:
                key, request = task.ahead.pop(0)
                if key in self._waiters or key in self._speculative:
                    continue
                log.info("an idle worker starts a %s run of h%s on seed %s early", request.kind,
                         request.hypothesis_id, request.seed)
                self._speculative[key] = task
                self._fly(key, request)

    def _cancel_unwanted(self) -> None:
        """Early trials whose job ended or moved on without asking for them are cancelled."""
        for key, task in self._speculative.items():
            if key not in task.wanted:
                request = self._flying[key].request
                whose = f"h{request.hypothesis_id}" if request.hypothesis_id is not None else task.name
                self.runner.cancel(self._flying[key], f"a {request.kind} run started early that {whose} did not need")

    def _start_next(self) -> None:
        _, _, key = heapq.heappop(self._queue)
        self._fly(key, self._requests[key])

    def _fly(self, key: Key, request: TrialRequest) -> None:
        self._flying[key] = self.runner.start(request)
        self._running = tuple(trial.request for trial in self._flying.values())

    def _finish(self, ended: InFlight) -> None:
        key = next(k for k, trial in self._flying.items() if trial is ended)
        del self._flying[key]
        self._running = tuple(trial.request for trial in self._flying.values())
        outcome = self.runner.record(ended)
        if self._speculative.pop(key, None) is not None:
            return  # nobody asked for it (yet): the store keeps it for the job that will
        if outcome.retry or outcome.result.status == INTERRUPTED:  # its worker died, or a job claimed
            # it while it was being cancelled: once more, ahead of everything else
            attempt = outcome.request.attempt + (1 if outcome.retry else 0)
            self._requests[key] = dataclasses.replace(outcome.request, attempt=attempt)
            heapq.heappush(self._queue, (-1, next(self._seq), key))
            return
        del self._requests[key]
        for task, index in self._waiters.pop(key):
            task.outcomes[index] = outcome
