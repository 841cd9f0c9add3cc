"""Trial processes forked from the launcher's fork server: each still dies alone, the server's
death takes its trials with it (and a new one serves the next trial), and a forked trial computes
exactly what a cold one does."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil
import pytest
from test_executor import write_spec

from autoresearch.executor import TrialLauncher
from autoresearch.executor.forkserver import SUPPORTED
from autoresearch.experiment import COMPLETED, CRASHED, CURVE_FILE

pytestmark = pytest.mark.skipif(not SUPPORTED, reason="the fork server is Linux-only; elsewhere trials start cold")


def _long_spec(run_dir: Path, tiny: list[str]) -> Path:
    return write_spec(run_dir, [*tiny, "trainer.budget.kind=steps", "trainer.budget.value=100000"])


def _until_training(run_dir: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not (run_dir / CURVE_FILE).is_file():
        assert time.monotonic() < deadline, "the trial never started training"
        time.sleep(0.05)


@pytest.fixture
def launcher():
    launcher = TrialLauncher(warm=True)
    yield launcher
    launcher.close()


def test_a_forked_trial_killed_from_outside_is_a_crash_and_the_server_forks_the_next(tmp_path, tiny_overrides,
                                                                                       launcher):
    doomed = launcher.start(1, _long_spec(tmp_path / "doomed", tiny_overrides), timeout_s=300)
    server = psutil.Process(doomed.proc.pid).ppid()
    assert server != os.getpid(), "the trial was forked by the server, not started by this process"
    _until_training(doomed.run_dir)
    assert psutil.Process(doomed.proc.pid).name() == "trial doomed"  # what top shows, not the server's name
    os.kill(doomed.proc.pid, signal.SIGKILL)  # as the OOM killer would
    crashed = doomed.finish()
    assert crashed.status == CRASHED and "killed by signal 9" in crashed.error

    broken = launcher.start(2, tmp_path / "no_config", timeout_s=300)  # the trial's own error: exit code 2
    result = broken.finish()
    assert result.status == CRASHED and "exit code 2" in result.error
    assert "config.yaml: no such file" in (tmp_path / "no_config" / "process.log").read_text()

    fine = launcher.start(3, write_spec(tmp_path / "fine", tiny_overrides), timeout_s=300)
    assert psutil.Process(fine.proc.pid).ppid() == server  # the same server, still serving
    assert fine.finish().status == COMPLETED


def test_the_servers_death_ends_its_trials_and_the_next_trial_gets_a_new_server(tmp_path, tiny_overrides, launcher):
    orphan = launcher.start(1, _long_spec(tmp_path / "orphan", tiny_overrides), timeout_s=300)
    child = psutil.Process(orphan.proc.pid)
    server = child.ppid()
    _until_training(orphan.run_dir)
    os.kill(server, signal.SIGKILL)
    assert orphan.wait(30) and orphan.finish().status == CRASHED
    _, alive = psutil.wait_procs([child], timeout=30)  # the kernel's SIGKILL (PDEATHSIG) is on its way
    assert not alive, "a trial outlived its fork server"

    after = launcher.start(2, write_spec(tmp_path / "after", tiny_overrides), timeout_s=300)
    assert psutil.Process(after.proc.pid).ppid() not in (server, os.getpid())  # a new server forked it
    assert after.finish().status == COMPLETED


def test_a_forked_trial_computes_exactly_what_a_cold_one_does(tmp_path, tiny_overrides, launcher):
    forked = launcher.start(1, write_spec(tmp_path / "forked", [*tiny_overrides, "seed=3"]), timeout_s=300).finish()
    cold_launcher = TrialLauncher(warm=False)
    try:
        cold = cold_launcher.start(2, write_spec(tmp_path / "cold", [*tiny_overrides, "seed=3"]), timeout_s=300)
        assert psutil.Process(cold.proc.pid).ppid() == os.getpid()
        cold_result = cold.finish()
    finally:
        cold_launcher.close()
    assert forked.status == cold_result.status == COMPLETED
    assert forked.val_bpb == cold_result.val_bpb
