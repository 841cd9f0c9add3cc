"""The local executor: several trial processes at once, each with its share of the machine.

Real trial processes train tiny models; nothing is mocked. The Ray executor has its own module
(tests/test_executor_ray.py), skipped where Ray is not installed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from autoresearch.config import ConfigError, compose, to_experiment_config
from autoresearch.config.executor import ExecutorConfig
from autoresearch.executor import (
    Executor,
    ExecutorBusy,
    LocalExecutor,
    TrialHandle,
    make_executor,
    split_threads,
    usable_cores,
)
from autoresearch.executor.forkserver import SUPPORTED as FORK_SUPPORTED
from autoresearch.executor.local import worker_env
from autoresearch.experiment import COMPLETED, CURVE_FILE, METRICS_FILE, write_run_spec


def write_spec(run_dir: Path, overrides: list[str]) -> Path:
    write_run_spec(to_experiment_config(compose(overrides)), run_dir, overrides)
    return run_dir


def torch_threads(run_dir: Path) -> int:
    """How many intra-op threads the trial process actually ran with (its bundle records it)."""
    return json.loads((run_dir / "bundle" / "environment.json").read_text())["torch_num_threads"]


def test_executor_group_composes_and_every_bad_value_is_named():
    cfg = to_experiment_config(compose(["executor=ray", "executor.workers=4", "executor.num_gpus=1"]))
    assert (cfg.executor.kind, cfg.executor.workers, cfg.executor.num_gpus) == ("ray", 4, 1.0)
    assert to_experiment_config(compose([])).executor == ExecutorConfig()  # local, one worker: as before
    with pytest.raises(ConfigError) as err:
        to_experiment_config(compose(["executor.kind=slurm", "executor.workers=0", "executor.address=nowhere"]))
    keys = {p.key for p in err.value.problems}
    assert {"executor.kind", "executor.workers", "executor.address"} <= keys


def test_cores_are_split_between_workers_and_each_worker_gets_its_own_gpus():
    assert split_threads(workers=2, threads_per_worker=0, cores=8) == 4
    assert split_threads(workers=3, threads_per_worker=0, cores=2) == 1  # never zero
    assert split_threads(workers=2, threads_per_worker=3, cores=8) == 3  # an explicit count wins
    assert split_threads(workers=1, threads_per_worker=0, cores=8) is None  # one worker: as before executors
    assert "OMP_NUM_THREADS" not in worker_env(0, threads=None, gpus=[], gpus_per_worker=0)
    env = worker_env(1, threads=4, gpus=["0", "1", "2", "3"], gpus_per_worker=2)
    assert env["CUDA_VISIBLE_DEVICES"] == "2,3" and env["OMP_NUM_THREADS"] == "4"
    assert "CUDA_VISIBLE_DEVICES" not in worker_env(0, threads=1, gpus=[], gpus_per_worker=1)  # CPU only
    with pytest.raises(ValueError, match="lower executor.workers"):
        worker_env(2, threads=1, gpus=["0", "1"], gpus_per_worker=1)
    slots = LocalExecutor(ExecutorConfig(workers=2, gpus_per_worker=1), warm=False, cores=8, gpus=["5", "7"])
    assert [slots.slot_env(i)["CUDA_VISIBLE_DEVICES"] for i in range(2)] == ["5", "7"]
    assert slots.slot_env(0)["OMP_NUM_THREADS"] == "4"
    assert isinstance(slots, Executor)


@pytest.mark.slow
def test_two_workers_run_two_trials_at_once_with_the_same_results_as_one_worker(tmp_path, tiny_overrides):
    """Determinism whatever N: a trial's val_bpb does not depend on what trains beside it."""
    specs = [write_spec(tmp_path / f"pair{seed}", [*tiny_overrides, f"seed={seed}"]) for seed in (1, 2)]
    pair = LocalExecutor(ExecutorConfig(workers=2, threads_per_worker=0), warm=False)
    share = split_threads(2, 0, usable_cores())
    try:
        handles = [pair.start(i, spec, timeout_s=300) for i, spec in enumerate(specs)]
        assert all(isinstance(h, TrialHandle) for h in handles)
        # Both processes are up together (each spends seconds importing torch before it trains) ...
        assert not any(h.done for h in handles)
        with pytest.raises(ExecutorBusy):  # ... and a third waits for a free worker
            pair.start(3, tmp_path / "third", timeout_s=300)
        results = [h.finish() for h in handles]
    finally:
        pair.close()
    assert [r.status for r in results] == [COMPLETED, COMPLETED]
    assert all(not h.infrastructure_failure for h in handles)
    assert [torch_threads(spec) for spec in specs] == [share, share]
    assert results[0].val_bpb != results[1].val_bpb  # two different trials, not one run twice

    alone_dir = write_spec(tmp_path / "alone", [*tiny_overrides, "seed=2"])
    alone = make_executor(ExecutorConfig(workers=1, threads_per_worker=share), warm=False)
    try:
        handle = alone.start(0, alone_dir, timeout_s=300)
        solo = handle.finish()
    finally:
        alone.close()
    assert solo.status == COMPLETED
    assert solo.val_bpb == results[1].val_bpb
    assert (alone_dir / METRICS_FILE).is_file() and (alone_dir / CURVE_FILE).is_file()


def _parent_pid(pid: int) -> int:
    return int(next(line.split()[1] for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                    if line.startswith("PPid:")))


@pytest.mark.skipif(not FORK_SUPPORTED, reason="trials fork from a server on Linux only")
def test_cpu_workers_fork_their_trials_from_one_server(tmp_path, tiny_overrides):
    """Two CPU slots have the same environment, so one fork server imports torch for both (not two
    importing at once on the cores the campaign starts on); each trial is still its own process."""
    specs = [write_spec(tmp_path / f"t{seed}", [*tiny_overrides, f"seed={seed}"]) for seed in (1, 2)]
    pair = LocalExecutor(ExecutorConfig(workers=2, threads_per_worker=1))
    try:
        pair.prewarm()
        handles = [pair.start(i, spec, timeout_s=300) for i, spec in enumerate(specs)]
        pids = [h.trial.proc.pid for h in handles]
        parents = {_parent_pid(pid) for pid in pids}
        results = [h.finish() for h in handles]
    finally:
        pair.close()
    assert len(set(pids)) == 2 and len(parents) == 1 and os.getpid() not in parents
    assert [r.status for r in results] == [COMPLETED, COMPLETED]
    assert [torch_threads(spec) for spec in specs] == [1, 1]


def test_the_local_executor_never_imports_ray(tmp_path):
    """Ray is an optional extra: a local campaign must run where it is not installed."""
    import subprocess
    import sys

    code = ("import sys; from autoresearch.config.executor import ExecutorConfig; "
            "from autoresearch.executor import make_executor; "
            "make_executor(ExecutorConfig(workers=2), warm=False).close(); "
            "print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
