"""Where trials run: worker slots on this machine, or actors on a Ray cluster, behind one contract.

The campaign's runner writes a trial's spec into a run directory and calls ``Executor.start``; the
``TrialHandle`` it gets streams the curve, forwards stops, and on ``finish`` leaves the run
directory filled as if the trial had run locally. ``make_executor(cfg.executor)`` picks the
implementation; Ray is imported only for ``executor=ray``.
"""

from autoresearch.executor.base import (
    INFRASTRUCTURE_FAILURE,
    Executor,
    ExecutorBusy,
    TrialHandle,
    TrialResources,
)
from autoresearch.executor.factory import make_executor
from autoresearch.executor.local import LocalExecutor, LocalTrialHandle, split_threads, usable_cores, visible_gpus
from autoresearch.executor.process import PROCESS_LOG, RunningTrial, TrialLauncher, log_tail

__all__ = [
    "INFRASTRUCTURE_FAILURE",
    "PROCESS_LOG",
    "Executor",
    "ExecutorBusy",
    "LocalExecutor",
    "LocalTrialHandle",
    "RayExecutor",
    "RayTrialHandle",
    "RunningTrial",
    "TrialHandle",
    "TrialLauncher",
    "TrialResources",
    "log_tail",
    "make_executor",
    "split_threads",
    "usable_cores",
    "visible_gpus",
]


def __getattr__(name: str):
    # The Ray side is importable without Ray; Ray itself loads only when a RayExecutor is built.
    if name in ("RayExecutor", "RayTrialHandle"):
        from autoresearch.executor import remote

        return getattr(remote, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
