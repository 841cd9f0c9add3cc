"""Crashes of our own and configuration mistakes, through the real campaign.

A validation seed whose trial process dies (SIGKILL from outside, as the OOM killer would) is a
recorded outcome — the finding is inconclusive and says which seed crashed — and a campaign killed
right after that moment resumes without running the crashed seed again. Configuration mistakes
(a misspelt search space, an agent that cannot be built) stop the campaign at start-up with one
message naming the key and the file, before any trial process exists.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from test_campaign import campaign_overrides

from autoresearch.campaign import Campaign
from autoresearch.config import ConfigError, compose, to_experiment_config
from autoresearch.store import KnowledgeStore

SPACE = """\
name: crash_test
description: one clearly better learning rate, so that the hypothesis reaches validation
parameters:
  optim.lr:
    type: choice
    values: [0.01, 0.012]
    description: far above the deliberately poor baseline rate
"""


def _kill_trial_process(campaign: psutil.Process, run_dir: Path) -> bool:
    """SIGKILL the campaign's child process that has a file of ``run_dir`` open (the trial)."""
    for child in campaign.children(recursive=True):
        try:
            if any(Path(f.path).parent == run_dir for f in child.open_files()):
                child.send_signal(signal.SIGKILL)
                return True
        except psutil.Error:
            continue
    return False


def test_a_crashed_validation_seed_is_an_inconclusive_finding_and_resumes_after_sigkill(tmp_path, data_cache):
    space = tmp_path / "crash_test.yaml"
    space.write_text(SPACE)
    overrides = campaign_overrides(tmp_path, "agent=random", f"campaign.search_space={space}", "campaign.max_trials=1",
                                   "critic.noise_seeds=1", "critic.validation_seeds=2", "optim.lr=0.0003",
                                   # long enough (~1 s) that the test finds the seed-2 process while it trains
                                   "trainer.budget.value=200", "campaign.seeds=[1,2,3]")
    env = {**os.environ, "AUTORESEARCH_CACHE": data_cache}
    cmd = [sys.executable, "-m", "autoresearch", *overrides]
    db = tmp_path / "knowledge.sqlite"
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    campaign_proc = psutil.Process(proc.pid)
    crashed_trial = None
    killed_trial = False
    deadline = time.monotonic() + 1200  # generous: trials crawl on a loaded machine
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
            if not db.is_file():
                continue
            store = KnowledgeStore(db)
            try:
                campaign = store.campaign("quickstart")
                trials = store.trials(campaign.id, kind="validation") if campaign else []
            finally:
                store.close()
            target = [t for t in trials if t.seed == 2]
            if not target:
                continue
            trial = target[0]
            if trial.status == "running" and not killed_trial:
                killed_trial = _kill_trial_process(campaign_proc, Path(trial.run_dir))
            elif trial.status != "running":
                crashed_trial = trial
                proc.send_signal(signal.SIGKILL)  # the campaign dies right after recording the crash
                break
    finally:
        proc.wait(timeout=60)
    assert killed_trial and crashed_trial is not None, proc.stderr.read()[-3000:] if proc.stderr else ""
    assert crashed_trial.status == "crashed" and "signal 9" in crashed_trial.error
    assert proc.returncode == -signal.SIGKILL

    resumed = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1200)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    store = KnowledgeStore(db)
    campaign = store.campaign("quickstart")
    [finding] = store.findings(campaign.id)
    assert finding.status == "inconclusive"
    assert "validation seed 2 crashed" in finding.details["reason"]
    assert finding.details["failures"][0]["trial"] == crashed_trial.id
    validation = [t for t in store.trials(campaign.id, kind="validation") if t.status != "interrupted"]
    assert sorted(t.seed for t in validation) == [2, 3], "the crashed seed was not run again; seed 3 ran once"
    [screen] = store.trials(campaign.id, kind="hypothesis")
    assert screen.decision == "discard" and "seed 2 crashed" in screen.note
    assert all(t.status != "running" for t in store.trials(campaign.id))


def _campaign(tmp_path: Path, *extra: str) -> Campaign:
    overrides = campaign_overrides(tmp_path, *extra)
    return Campaign(to_experiment_config(compose(overrides)), overrides, interactive=False)


def test_a_misspelt_search_space_stops_the_campaign_before_any_trial(tmp_path):
    with pytest.raises(ConfigError) as err:
        _campaign(tmp_path, "agent=random", "campaign.search_space=quickstrat")
    message = str(err.value)
    assert "campaign.search_space" in message and "quickstrat" in message
    assert "conf/campaign/quickstart.yaml" in message
    assert not (tmp_path / "campaigns").exists() and not (tmp_path / "knowledge.sqlite").exists()


def test_an_agent_that_cannot_be_built_stops_the_campaign_before_any_trial(tmp_path):
    with pytest.raises(ConfigError) as err:
        _campaign(tmp_path, "agent=playbook", f"agent.playbook.path={tmp_path / 'missing.yaml'}")
    message = str(err.value)
    assert "agent.playbook.path" in message and "conf/agent/playbook.yaml" in message
    assert not (tmp_path / "campaigns").exists() and not (tmp_path / "knowledge.sqlite").exists()


def test_the_command_line_prints_one_message_for_a_misspelt_search_space(tmp_path, data_cache):
    cmd = [sys.executable, "-m", "autoresearch", *campaign_overrides(tmp_path, "campaign.search_space=quickstrat")]
    done = subprocess.run(cmd, cwd=tmp_path, env={**os.environ, "AUTORESEARCH_CACHE": data_cache},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and "error: conf/campaign/quickstart.yaml" in done.stderr
