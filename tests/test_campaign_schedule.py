"""The scheduler's rules, on a runner whose trials end when the test says so (no processes).

Older jobs' runs go first; with one slot the order is the sequential one; two jobs asking for the
same configuration on the same seed share one trial; a trial whose worker died runs once more and
its job sees only the second outcome; an exclusive wait holds new hypotheses back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from autoresearch.campaign.runner import InFlight, TrialOutcome, TrialRequest
from autoresearch.campaign.schedule import NoSource, Runs, Scheduler, Until
from autoresearch.result import COMPLETED, CRASHED, RunResult


@dataclass
class FakeHandle:
    trial_id: int
    dies: bool = False

    @property
    def infrastructure_failure(self) -> bool:
        return self.dies


@dataclass
class FakeRunner:
    """Trials end in the order they started, one per ``watch``; ``doomed`` keys die once."""

    capacity: int
    doomed: set = field(default_factory=set)
    started: list = field(default_factory=list)
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
        return flying[0]

    def record(self, trial: InFlight) -> TrialOutcome:
        self._flying -= 1
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
