"""A campaign with two local workers, on tiny real trials: a `kill -9` with two trials in flight,
then the same command, loses no finished trial and runs none twice; trials trained side by side,
each on its worker's thread, and every screening run was judged. Agents are told what is running.
Idle workers start a discovery's next runs early, and the judge claims them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_campaign import campaign_overrides, resume_losing_nothing

from autoresearch.agents import AgentContext
from autoresearch.agents.prompt import describe_standing
from autoresearch.config import compose, to_experiment_config
from autoresearch.result import is_cancelled
from autoresearch.store import KnowledgeStore


TWO_WORKERS = ["executor.workers=2", "executor.threads_per_worker=1"]


def overlapped(trials) -> bool:
    """Two trials whose [started, finished] intervals overlap: they trained at the same time."""
    spans = sorted((t.started_at, t.finished_at) for t in trials)
    return any(b_start < a_end for (_, a_end), (b_start, _) in zip(spans, spans[1:]))


def test_agents_are_told_what_is_running_on_other_workers():
    text = describe_standing(AgentContext(space=None, base={}, running=[{"optim.lr": 0.01, "model.norm": "rms"}]))
    assert "Running now on other workers" in text and "model.norm=\"rms\", optim.lr=0.01" in text


@pytest.mark.slow
def test_kill_9_with_two_trials_in_flight_then_resume_loses_nothing_and_repeats_nothing(tmp_path, data_cache):
    overrides = campaign_overrides(tmp_path, "agent=random", "campaign.max_trials=4", "critic.noise_seeds=2",
                                   "critic.validation_seeds=2", *TWO_WORKERS)
    env = {**os.environ, "AUTORESEARCH_CACHE": data_cache}
    cmd = [sys.executable, "-m", "autoresearch", *overrides]
    db = tmp_path / "knowledge.sqlite"
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    before, running_at_kill = {}, []
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            if not db.is_file():
                continue
            store = KnowledgeStore(db)
            try:
                campaign = store.campaign("quickstart")
                trials = store.trials(campaign.id) if campaign else []
            finally:
                store.close()
            finished = [t for t in trials if t.status != "running"]
            running = [t for t in trials if t.status == "running"]
            if len(finished) >= 2 and len(running) == 2:
                proc.send_signal(signal.SIGKILL)  # two trials mid-run: the worst moment
                before, running_at_kill = {t.id: t for t in finished}, [t.id for t in running]
                break
    finally:
        proc.wait(timeout=60)
    assert before, "the campaign never had two trials in flight after two had finished"

    store, trials, _ = resume_losing_nothing(cmd, tmp_path, env, before, timeout=900)
    by_id = {t.id: t for t in trials}
    cancelled = [t for t in trials if is_cancelled(t.status, t.error)]  # started early, not needed
    assert sorted(t.id for t in trials if t.status == "interrupted" and t not in cancelled) == sorted(
        tid for tid in running_at_kill if by_id[tid].status == "interrupted")
    finished = [t for t in trials if t.status in ("completed", "early_stopped")]
    runs = [(t.fingerprint, t.seed) for t in finished]
    assert len(runs) == len(set(runs)), "a finished trial was run twice"
    hypotheses = [t for t in trials if t.kind == "hypothesis" and t.status != "interrupted"]
    assert len(hypotheses) == 4
    assert all(t.decision in ("keep", "discard") for t in hypotheses), "every screening run was judged"
    assert all(t.status != "running" for t in trials)
    assert overlapped([t for t in trials if t.status != "interrupted"]), "no two trials trained at the same time"
    for trial in finished:  # each worker's trials ran with the worker's one thread, and came home whole
        environment = json.loads((Path(trial.run_dir) / "bundle" / "environment.json").read_text())
        assert environment["torch_num_threads"] == 1 and store.curve(trial.id)
    assert (tmp_path / "campaigns" / "quickstart" / "report.md").is_file()
    store.close()


def test_a_hypothesis_admitted_but_not_yet_started_counts_as_a_repeat(store):
    """With several workers the next hypothesis is gated before the last one's trial exists."""
    from autoresearch.campaign.state import CampaignState

    campaign_id = store.upsert_campaign("c", {}, "quickstart", "/tmp/c")
    hyp_id = store.add_hypothesis(campaign_id, {"overrides": {"optim.lr": 0.01}, "agent": "test"},
                                  status="proposed", fingerprint="abc")
    state = CampaignState(store, campaign_id, [1, 2])
    assert f"h{hyp_id}" in state.seen("abc")
    assert state.seen("other") is None


def test_idle_workers_start_a_discoverys_next_runs_early_and_a_cancelled_run_is_recorded_interrupted(tmp_path):
    """With two workers and no hypothesis left to propose, the slot beside a screening run trains a
    validation seed, and the slot beside the last validation seed an ablation run; the judge then
    claims them (nothing trains twice). A run nobody needs any more is cancelled and recorded as
    ``interrupted``, with why, so a later request trains it again."""
    from autoresearch.campaign import Campaign
    from autoresearch.campaign.runner import TrialRequest
    from autoresearch.search import Hypothesis

    overrides = campaign_overrides(tmp_path, "agent=random", "campaign.max_trials=1", "critic.noise_seeds=2",
                                   "critic.validation_seeds=3", "critic.fdr=0.5", "critic.test.alpha=0.4",
                                   "critic.ablations=true", "optim.lr=0.0003", "trainer.budget.value=30",
                                   "campaign.seeds=[1,2,3,4]", *TWO_WORKERS)
    campaign = Campaign(to_experiment_config(compose(overrides)), overrides, interactive=False)
    try:
        campaign.run_baseline()
        planted = Hypothesis(overrides={"optim.lr": 0.01, "model.activation": "swiglu"}, agent="test")
        campaign.test(planted)
        [finding] = campaign.store.findings(campaign.campaign_id)
        assert finding.status == "validated", finding
        trials = campaign.store.trials(campaign.campaign_id)
        [screen] = [t for t in trials if t.kind == "hypothesis"]
        validation = [t for t in trials if t.kind == "validation"]
        ablation = [t for t in trials if t.kind == "ablation"]
        assert len(validation) == 3 and len(ablation) == 2 * 3 and all(t.status == "completed" for t in trials)
        runs = [(t.fingerprint, t.seed) for t in trials]
        assert len(runs) == len(set(runs)), "a run trained twice"
        assert min(t.started_at for t in validation) < screen.finished_at  # beside its screening
        assert min(t.started_at for t in ablation) < finding.details["verdict_at"]  # before the verdict

        runner = campaign.runner
        long_run = TrialRequest(overrides={"optim.lr": 0.001}, seed=4, kind="validation",
                                config_patch={"trainer.budget.value": 100000})
        flying = runner.start(long_run)
        deadline = time.monotonic() + 120
        while not flying.running.poll() and time.monotonic() < deadline:  # it trains
            time.sleep(0.1)
        runner.cancel(flying, "no longer needed")
        outcome = runner.record(flying)
        row = campaign.store.trial(outcome.trial_id)
        assert outcome.result.status == row.status == "interrupted"
        assert row.error == "cancelled: no longer needed"
        assert not campaign.state.finished_runs(row.fingerprint)  # a later request trains it again
    finally:
        campaign.close(keep_store=True)
        campaign.store.close()
