"""bench/campaign_overhead.py's split of free worker time: waiting for a result the next trial
needs is the search's critical path; a free slot with work to start is the campaign's overhead."""

from __future__ import annotations

import pytest
from bench_script import load_bench_script


@pytest.fixture(scope="module")
def bench():
    return load_bench_script("campaign_overhead")


def test_a_slot_free_until_the_result_its_next_trial_needs_is_waiting(bench):
    # screening run [0, 10] beside a trial [0, 5]; the validation seeds start as the screening ends
    spans = [(0.0, 10.0), (0.0, 5.0), (10.1, 20.0), (10.2, 20.0)]
    assert bench.waiting_for_results(spans, workers=2) == pytest.approx(5.0)


def test_a_slot_free_while_work_could_start_is_overhead(bench):
    # the second slot's first trial starts 3 s late with no result to wait for (start-up)
    spans = [(0.0, 10.0), (3.0, 10.0)]
    assert bench.waiting_for_results(spans, workers=2) == pytest.approx(0.0)
    # ... nor the 2 s from a finish to the start that followed it (two slots: 4 s); waiting are
    # 5-10 s (a finish still ahead) and the tail after the last start, 12-20 s on the other slot
    assert bench.waiting_for_results([(0.0, 10.0), (0.0, 5.0), (12.0, 20.0)], workers=2) == pytest.approx(13.0)


def test_the_last_results_in_flight_leave_the_other_slots_waiting(bench):
    spans = [(0.0, 10.0), (0.0, 4.0)]  # nothing starts after the short one: its slot waits for the end
    assert bench.waiting_for_results(spans, workers=2) == pytest.approx(6.0)


def test_a_warm_up_step_counts_as_training_at_a_timed_steps_pace(bench):
    # 10 timed steps in 2 s (0.2 s each); the untimed first step took 0.29 s: 0.2 s of it trained
    metrics = {"num_steps": 11, "training_seconds": 2.0, "warmup_steps": 1, "warmup_seconds": 0.29}
    assert bench._warmup_training(metrics) == pytest.approx(0.2)
    assert bench._warmup_training({**metrics, "warmup_seconds": 0.15}) == pytest.approx(0.15)  # never more than it took
    assert bench._warmup_training({"num_steps": 11, "training_seconds": 2.0}) == 0.0  # older metrics.json: none
    assert bench._warmup_training({**metrics, "num_steps": 1}) == 0.0  # stopped before a timed step
