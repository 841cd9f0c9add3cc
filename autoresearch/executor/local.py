"""Several trials at once on this machine: N worker slots, each trial its own process.

Each slot owns a ``TrialLauncher`` whose environment gives the slot's trials their share of the
machine: on CPU ``OMP_NUM_THREADS`` (torch's default intra-op thread count, recorded in each
bundle's environment.json), with GPUs their own devices through ``CUDA_VISIBLE_DEVICES``. A
``trainer.threads`` set in the trial's config still wins over the slot's share.
"""

from __future__ import annotations

import glob
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from autoresearch.config.executor import ExecutorConfig
from autoresearch.executor.base import ExecutorBusy, TrialResources
from autoresearch.executor.process import RunningTrial, TrialLauncher
from autoresearch.experiment import RunResult

log = logging.getLogger(__name__)


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, which a container or taskset narrows)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def visible_gpus() -> list[str]:
    """GPU ids trial processes may use, found without importing torch (the campaign starts fast).

    ``CUDA_VISIBLE_DEVICES`` when set (its ids, in order), else one id per ``/dev/nvidiaN``.
    """
    chosen = os.environ.get("CUDA_VISIBLE_DEVICES")
    if chosen is not None:
        return [g.strip() for g in chosen.split(",") if g.strip() and g.strip() != "-1"]
    return sorted((p.removeprefix("/dev/nvidia") for p in glob.glob("/dev/nvidia[0-9]*")), key=int)


def split_threads(workers: int, threads_per_worker: int, cores: int) -> Optional[int]:
    """Threads of each worker's trials: the configured number, or the cores split evenly (≥ 1).

    ``None`` for a single worker left at 0: its trials keep the environment's setting (torch's
    default of every core, or the user's ``OMP_NUM_THREADS``), exactly as before executors existed.
    """
    if threads_per_worker > 0:
        return threads_per_worker
    return None if workers == 1 else max(1, cores // workers)


def worker_env(slot: int, *, threads: Optional[int], gpus: list[str], gpus_per_worker: int) -> dict[str, str]:
    """The environment that confines slot ``slot``'s trials to their threads and devices."""
    env = {} if threads is None else {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    if gpus and gpus_per_worker > 0:
        mine = gpus[slot * gpus_per_worker:(slot + 1) * gpus_per_worker]
        if len(mine) < gpus_per_worker:
            raise ValueError(f"executor: worker {slot} needs {gpus_per_worker} GPU(s) but only {len(gpus)} are "
                             f"visible ({','.join(gpus)}); lower executor.workers or executor.gpus_per_worker")
        env["CUDA_VISIBLE_DEVICES"] = ",".join(mine)
    return env


@dataclass
class LocalTrialHandle:
    """A trial process in one slot. ``finish`` frees the slot."""

    trial: RunningTrial
    slot: int
    finished: bool = False

    @property
    def trial_id(self) -> int:
        return self.trial.trial_id

    @property
    def run_dir(self) -> Path:
        return self.trial.run_dir

    @property
    def stop_reason(self) -> Optional[str]:
        return self.trial.stop_reason

    @property
    def timed_out(self) -> bool:
        return self.trial.timed_out

    @property
    def done(self) -> bool:
        return self.trial.done

    @property
    def infrastructure_failure(self) -> bool:
        # Here the worker *is* the trial's process: its death is the trial's crash (an OOM kill
        # cannot be told from a model too big for the machine), never retried elsewhere.
        return False

    def poll(self) -> list[dict[str, Any]]:
        return self.trial.poll()

    def wait(self, seconds: float) -> bool:
        return self.trial.wait(seconds)

    def check_timeout(self) -> bool:
        return self.trial.check_timeout()

    def request_stop(self, reason: str) -> None:
        self.trial.request_stop(reason)

    def kill(self) -> None:
        self.trial.kill()

    def finish(self) -> RunResult:
        result = self.trial.finish()
        self.finished = True
        return result


class LocalExecutor:
    """``workers`` trial processes at once on this machine, each slot with its threads and GPUs."""

    def __init__(self, config: ExecutorConfig, *, warm: bool = True, env: Optional[dict[str, str]] = None,
                 cores: Optional[int] = None, gpus: Optional[list[str]] = None):
        self.config = config
        gpus = visible_gpus() if gpus is None else gpus
        self.threads = split_threads(config.workers, config.threads_per_worker, cores or usable_cores())
        # Slots with the same environment (CPU workers: the same thread share) share one launcher,
        # so one fork server: torch is imported once, not once per slot on the cores the campaign
        # is starting on. Each trial is still a process of its own.
        shared: dict[tuple[tuple[str, str], ...], TrialLauncher] = {}
        self._launchers = []
        for slot in range(config.workers):
            slot_env = {**(env or {}), **worker_env(slot, threads=self.threads, gpus=gpus,
                                                     gpus_per_worker=config.gpus_per_worker)}
            key = tuple(sorted(slot_env.items()))
            if key not in shared:
                shared[key] = TrialLauncher(warm=warm, env=slot_env)
            self._launchers.append(shared[key])
        self._distinct = list(shared.values())  # each with at most one fork server
        self._running: dict[int, LocalTrialHandle] = {}
        log.info("local executor: %d worker(s), %s thread(s) each%s", config.workers, self.threads or "default",
                 f", GPUs {[l.env.get('CUDA_VISIBLE_DEVICES') for l in self._launchers]}"
                 if gpus and config.gpus_per_worker else "")

    @property
    def capacity(self) -> int:
        return len(self._launchers)

    def slot_env(self, slot: int) -> dict[str, str]:
        """The environment slot ``slot`` starts its trials with (for logs and tests)."""
        return dict(self._launchers[slot].env)

    def _free_slot(self) -> Optional[int]:
        for slot in range(self.capacity):
            handle = self._running.get(slot)
            if handle is None or handle.finished:
                return slot
        return None

    def start(self, trial_id: int, run_dir: Path, timeout_s: float,
              resources: Optional[TrialResources] = None) -> LocalTrialHandle:
        slot = self._free_slot()
        if slot is None:
            raise ExecutorBusy(f"all {self.capacity} local workers are busy: finish() a trial before starting another")
        trial = self._launchers[slot].start(trial_id, Path(run_dir), timeout_s)
        handle = LocalTrialHandle(trial=trial, slot=slot)
        self._running[slot] = handle
        log.debug("trial %d started in local worker %d", trial_id, slot)
        return handle

    def prewarm(self) -> None:
        """A fork server for every distinct slot environment, warm for its next trial (its imports
        overlap whatever runs meanwhile)."""
        for launcher in self._distinct:
            launcher.prewarm()

    def evaluate_test(self, run_dir: Path, timeout_s: float) -> Optional[str]:
        """Forked from the first slot's server: no process pays the imports again."""
        return self._launchers[0].evaluate_test(Path(run_dir), timeout_s)

    def close(self) -> None:
        for handle in self._running.values():
            if not handle.finished:
                handle.kill()
        for launcher in self._distinct:
            launcher.close()
