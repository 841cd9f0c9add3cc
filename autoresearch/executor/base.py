"""What a campaign needs from whatever runs its trials: the executor contract.

The runner writes a trial's spec (``config.yaml``, ``overrides.yaml``) into a local run directory
and hands the directory to ``Executor.start``. Where the trial then trains (a process here, a Ray
actor on another node) is the executor's business; the handle it returns answers the same verbs
either way, and when ``finish`` returns, the run directory holds what the trial left
(``metrics.json``, ``curve.jsonl``, ``run.log``, ``bundle/``, ...), as if it had run here.

Contract (every implementation, checked by tests/test_executor*.py):

* ``start`` never blocks on training; at most ``capacity`` handles are unfinished at once.
* ``poll`` returns each new curve row exactly once, in order, while the trial trains.
* ``request_stop`` reaches the trial wherever it runs; it ends as ``early_stopped``.
* ``finish`` always returns a ``RunResult``; ``infrastructure_failure`` is True only when the
  machinery (a Ray worker, a node) died under the trial, never when the trial crashed on its own.
  Such a trial may be retried once elsewhere; a crashed one may not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Protocol, runtime_checkable

from autoresearch.experiment import RunResult


@dataclass(frozen=True, kw_only=True)
class TrialResources:
    """What one trial declares. ``None`` fields take the executor's configured defaults.

    ``custom``: Ray custom resources (``{"big_gpu": 1}``) that pin a trial to nodes offering them;
    the local executor has no use for them.
    """

    num_cpus: Optional[float] = None
    num_gpus: Optional[float] = None
    custom: dict[str, float] = field(default_factory=dict)


@runtime_checkable
class TrialHandle(Protocol):
    """A trial in flight, wherever it runs (the verbs of the campaign's former ``RunningTrial``)."""

    trial_id: int
    run_dir: Path
    stop_reason: Optional[str]
    timed_out: bool

    @property
    def done(self) -> bool:
        """The trial has ended (finished, crashed, stopped, killed, or its worker died)."""

    @property
    def infrastructure_failure(self) -> bool:
        """Its worker or node died under it: not the trial's fault, worth one retry elsewhere."""

    def poll(self) -> list[dict[str, Any]]:
        """New curve rows since the last poll."""

    def wait(self, seconds: float) -> bool:
        """Block up to ``seconds``, returning as soon as the trial ends (True if it has)."""

    def check_timeout(self) -> bool:
        """Kill the trial if it ran past its timeout; True if it did now."""

    def request_stop(self, reason: str) -> None:
        """Ask the trainer to stop at its next step; it ends as early_stopped."""

    def kill(self) -> None:
        """End the trial now (its result is then crashed)."""

    def finish(self) -> RunResult:
        """Wait for the end, bring the run directory home, and return the outcome."""


@runtime_checkable
class Executor(Protocol):
    """Starts trials somewhere. Used by one thread (the campaign's runner)."""

    @property
    def capacity(self) -> int:
        """How many trials may run at once."""

    def start(self, trial_id: int, run_dir: Path, timeout_s: float,
              resources: Optional[TrialResources] = None) -> TrialHandle:
        """Start the trial whose spec is in ``run_dir``. Raises ``ExecutorBusy`` at capacity."""

    def prewarm(self) -> None:
        """Get ready for the next start (a warm fork server) where that helps; else nothing."""

    def evaluate_test(self, run_dir: Path, timeout_s: float) -> Optional[str]:
        """Score a finished trial's saved weights on the hidden test split, in a process on this
        machine (its run directory is home by then); None, or why it failed. Safe to call from a
        thread other than the runner's; it does not count against ``capacity``."""

    def close(self) -> None:
        """Stop every trial still running and release workers (and a cluster it started)."""


class ExecutorBusy(RuntimeError):
    """``start`` was called with ``capacity`` trials unfinished: finish one first."""


INFRASTRUCTURE_FAILURE = "infrastructure failure"  # how such a result's error text begins
