"""The trial launcher's process contract, without training anything."""

from __future__ import annotations

import subprocess
import sys
import time

from autoresearch.executor import RunningTrial, TrialLauncher


def test_trials_get_a_passive_openmp_wait_policy_unless_the_user_chose_one(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    assert TrialLauncher(warm=False).env["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert TrialLauncher(warm=False).env["OMP_WAIT_POLICY"] == "ACTIVE"
    assert TrialLauncher(warm=False, env={"OMP_WAIT_POLICY": "PASSIVE"}).env["OMP_WAIT_POLICY"] == "PASSIVE"


def test_wait_returns_as_soon_as_the_process_ends(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3)"])
    trial = RunningTrial(trial_id=1, run_dir=tmp_path, proc=proc, timeout_s=60)
    assert trial.wait(0.01) is False  # still running: the poll interval passes, nothing more
    started = time.monotonic()
    assert trial.wait(30) is True
    assert time.monotonic() - started < 5  # woke at the exit, not after the full 30 s
    assert trial.done

