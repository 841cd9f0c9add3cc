"""The scheduler's rules, on a runner whose trials end when the test says so (no processes).

Older jobs' runs go first; with one slot the order is the sequential one; two jobs asking for the
same configuration on the same seed share one trial; a trial whose worker died runs once more and
its job sees only the second outcome; an exclusive wait holds new hypotheses back; once no new
hypothesis will come, idle slots start the runs a job said it would ask for next, and cancel them
when it moves on without them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from autoresearch.campaign.runner import InFlight, TrialOutcome, TrialRequest
from autoresearch.campaign.schedule import NoSource, Runs, Scheduler, Until
from autoresearch.result import COMPLETED, CRASHED, INTERRUPTED, RunResult


@dataclass
class FakeHandle:
    trial_id: int
    dies: bool = False

    @property
    def infrastructure_failure(self) -> bool:
        return self.dies


@dataclass
class FakeRunner:
    """Trials end in the order they started (``quick`` keys first), one per ``watch``; ``doomed``
    keys die once."""

    capacity: int
    doomed: set = field(default_factory=set)
    quick: set = field(default_factory=set)
    started: list = field(default_factory=list)
    cancelled: list = field(default_factory=list)
    peak: int = 0
    _flying: int = 0

    def key(self, request: TrialRequest):
        return (str(sorted(request.label_overrides.items())), request.seed)

    def start(self, request: TrialRequest) -> InFlight:
        self.started.append((request.kind, request.overrides.get("x"), request.seed, request.attempt))
        dies = self.key(request) in self.doomed and request.attempt == 0
        self._flying += 1
        self.peak = max(self.peak, self._flying)
        return InFlight(request, FakeHandle(len(self.started), dies), label=str(len(self.started)))

    def watch(self, flying, wake=lambda: False):
        return next((t for t in flying if self.key(t.request) in self.quick), flying[0])

    def cancel(self, trial: InFlight, reason: str) -> None:
        if trial.cancelled is None:
            trial.cancelled = reason
            self.cancelled.append((trial.request.overrides.get("x"), trial.request.seed))

    def record(self, trial: InFlight) -> TrialOutcome:
        self._flying -= 1
        if trial.cancelled:
            return TrialOutcome(trial.running.trial_id, trial.request, RunResult(status=INTERRUPTED))
        if trial.running.dies:
            return TrialOutcome(trial.running.trial_id, trial.request, RunResult(status=CRASHED), retry=True)
        value = float(trial.request.overrides.get("x", 0)) + trial.request.seed / 100
        return TrialOutcome(trial.running.trial_id, trial.request, RunResult(status=COMPLETED, val_bpb=value))


def req(x, seed, kind="validation"):
    return TrialRequest(overrides={"x": x} if x is not None else {}, seed=seed, kind=kind)


def test_one_slot_runs_each_job_to_its_end_in_the_order_jobs_came():
    runner, seen = FakeRunner(capacity=1), []

    def job(x):
        [screen] = yield Runs((req(x, 1, "hypothesis"),))
        outcomes = yield Runs((req(x, 2), req(x, 3)))
        seen.append((x, screen.result.val_bpb, [o.result.val_bpb for o in outcomes]))

    scheduler = Scheduler(runner)
    scheduler.add(job(1), "a")
    scheduler.add(job(2), "b")
    scheduler.drain()
    assert [(kind, x, seed) for kind, x, seed, _ in runner.started] == [
        ("hypothesis", 1, 1), ("validation", 1, 2), ("validation", 1, 3),
        ("hypothesis", 2, 1), ("validation", 2, 2), ("validation", 2, 3)]
    assert seen == [(1, 1.01, [1.02, 1.03]), (2, 2.01, [2.02, 2.03])]  # outcomes in the order asked


def test_two_jobs_needing_the_same_run_share_one_trial_and_slots_fill():
    runner, got = FakeRunner(capacity=2), {}

    def job(name, x):
        outcomes = yield Runs((req(None, 2, "baseline"), req(x, 2)))  # both need the baseline on seed 2
        got[name] = [(o.trial_id, o.result.val_bpb) for o in outcomes]

    scheduler = Scheduler(runner)
    scheduler.add(job("a", 1), "a")
    scheduler.add(job("b", 5), "b")
    scheduler.drain()
    assert len(runner.started) == 3 and runner.peak == 2
    assert got["a"][0] == got["b"][0]  # one baseline trial, seen by both
    assert got["a"][1][1] == 1.02 and got["b"][1][1] == 5.02


def test_a_trial_whose_worker_died_runs_once_more_and_its_job_sees_the_rerun():
    runner = FakeRunner(capacity=2, doomed={(str([("x", 3)]), 4)})
    got = []

    def job():
        outcomes = yield Runs((req(3, 4), req(3, 5)))
        got.extend(o.result.status for o in outcomes)

    scheduler = Scheduler(runner)
    scheduler.add(job(), "j")
    scheduler.drain()
    assert [(x, seed, attempt) for _, x, seed, attempt in runner.started] == [(3, 4, 0), (3, 5, 0), (3, 4, 1)]
    assert got == [COMPLETED, COMPLETED]


class CountingSource:
    """Hands out ``n`` single-run hypothesis jobs; remembers whether it was asked during a wait."""

    def __init__(self, n):
        self.n, self.asked = n, []

    @property
    def over(self):
        return self.n == 0

    def poll(self):
        return self.n > 0

    def take(self, block):
        self.asked.append(block)
        if self.n == 0:
            return None
        self.n -= 1
        x = 10 + self.n

        def job():
            yield Runs((req(x, 1, "hypothesis"),))
        return job()


def test_an_exclusive_wait_holds_new_hypotheses_back_until_it_is_over():
    runner, flag = FakeRunner(capacity=2), {"ready": False}

    def scoring():
        yield Until(lambda: flag["ready"], exclusive=True)

    scheduler = Scheduler(runner)
    scheduler.add(scoring(), "scoring")
    source = CountingSource(2)
    for _ in range(3):
        assert scheduler.step(source)
    assert runner.started == [] and source.asked == []  # slots free, but the scoring holds them
    flag["ready"] = True
    while scheduler.step(source):
        pass
    assert [x for _, x, _, _ in runner.started] == [11, 10] and source.asked[-1] is True


def test_nothing_left_and_no_source_ends_the_schedule():
    assert Scheduler(FakeRunner(capacity=1)).step(NoSource()) is False


class Over:
    """A source with no new hypothesis (``over``), or one still preparing the next (not ``over``)."""

    def __init__(self, over: bool):
        self.over = over

    def poll(self):
        return False

    def take(self, block):
        return None


def screen_then_validate(seen: list, passes: bool = True):
    """A hypothesis job: the screening run says the validation seeds come next, if it passes."""
    [screen] = yield Runs((req(1, 1, "hypothesis"),), ahead=(req(1, 2), req(1, 3)))
    seen.append(screen.result.val_bpb)
    if passes:
        outcomes = yield Runs((req(1, 2), req(1, 3)))
        seen.extend((o.trial_id, o.result.status) for o in outcomes)


def run_to_the_end(scheduler: Scheduler, source) -> None:
    while scheduler.step(source):
        pass


def test_once_no_hypothesis_will_come_an_idle_slot_starts_what_the_job_will_ask_for_next():
    runner, seen = FakeRunner(capacity=2), []
    scheduler = Scheduler(runner)
    scheduler.add(screen_then_validate(seen), "h1")
    run_to_the_end(scheduler, Over(True))
    # seed 2 started beside the screening and became the job's own run: three trials, none twice
    assert [(kind, seed) for kind, _, seed, _ in runner.started] == [
        ("hypothesis", 1), ("validation", 2), ("validation", 3)]
    assert seen == [1.01, (2, COMPLETED), (3, COMPLETED)] and runner.cancelled == []


def test_nothing_starts_early_while_hypotheses_may_still_come_or_with_one_worker():
    for capacity, over in ((2, False), (1, True)):
        runner, seen = FakeRunner(capacity=capacity), []
        scheduler = Scheduler(runner)
        scheduler.add(screen_then_validate(seen), "h1")
        scheduler.step(Over(over))  # the screening trains (and, in this fake, ends) alone
        assert [kind for kind, *_ in runner.started] == ["hypothesis"]
        run_to_the_end(scheduler, NoSource())
        assert [(kind, seed) for kind, _, seed, _ in runner.started] == [
            ("hypothesis", 1), ("validation", 2), ("validation", 3)]
        assert runner.cancelled == []


def test_an_early_run_its_job_moves_on_without_is_cancelled_and_not_run_again():
    runner, seen = FakeRunner(capacity=2), []
    scheduler = Scheduler(runner)
    scheduler.add(screen_then_validate(seen, passes=False), "h1")
    run_to_the_end(scheduler, Over(True))
    assert [(kind, seed) for kind, _, seed, _ in runner.started] == [("hypothesis", 1), ("validation", 2)]
    assert runner.cancelled == [(1, 2)] and seen == [1.01]


def test_an_early_run_that_ends_before_its_job_asks_goes_to_nobody_and_is_not_retried():
    runner, seen = FakeRunner(capacity=2, quick={(str([("x", 1)]), 2)}), []
    scheduler = Scheduler(runner)
    scheduler.add(screen_then_validate(seen), "h1")
    run_to_the_end(scheduler, Over(True))
    # seed 2 ended first (the campaign's job then reads it from the store; this fake job asks again)
    assert [(kind, seed) for kind, _, seed, _ in runner.started] == [
        ("hypothesis", 1), ("validation", 2), ("validation", 3), ("validation", 2)]
    assert seen == [1.01, (4, COMPLETED), (3, COMPLETED)] and runner.cancelled == []
