"""One trial, one process on this machine: watched, stoppable, and never able to take the campaign down.

A crash, an OOM, a segfault or a NaN ends only the trial's process; the caller reads what it
left behind (``metrics.json`` if it finished, else the tail of its log) and moves on. To keep
start-up off the critical path, the next process is started *before* it is needed: it imports
torch and waits on stdin for its run directory (a warm standby).
Both executors use it — the local one here, the Ray actor on its node — so a trial starts the
same way wherever it runs.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from autoresearch.experiment import (
    CRASHED,
    CURVE_FILE,
    LOG_FILE,
    METRICS_FILE,
    STOP_FILE,
    TIMEOUT,
    RunResult,
)

log = logging.getLogger(__name__)
PROCESS_LOG = "process.log"


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Linux: the trial gets SIGKILL if the campaign dies (kill -9), so no orphan keeps training."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def log_tail(run_dir: Path, lines: int = 25) -> str:
    """The last lines a dead trial wrote: what a person needs to see why it crashed."""
    chunks = []
    for name in (PROCESS_LOG, LOG_FILE):
        path = run_dir / name
        if path.is_file():
            text = path.read_text(errors="replace").splitlines()[-lines:]
            if text:
                chunks.append("\n".join(text))
    return "\n".join(chunks)[-4000:] or "no output"


class _Standby:
    """A trial process that has already imported torch and waits for its run directory."""

    def __init__(self, env: dict[str, str]):
        self.log_path: Optional[Path] = None
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "autoresearch.experiment", "-"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env=env, preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            text=True,
        )

    def alive(self) -> bool:
        return self.proc.poll() is None


@dataclass
class RunningTrial:
    """A trial process in flight. ``poll`` returns new curve rows; ``finish`` collects the outcome."""

    trial_id: int
    run_dir: Path
    proc: subprocess.Popen
    timeout_s: float
    started: float = field(default_factory=time.monotonic)
    _curve_offset: int = 0
    _stderr_thread: Any = None
    stop_reason: Optional[str] = None
    timed_out: bool = False

    def poll(self) -> list[dict[str, Any]]:
        """New rows of the trial's curve since the last poll (complete lines only)."""
        path = self.run_dir / CURVE_FILE
        if not path.is_file():
            return []
        with path.open("rb") as fh:
            fh.seek(self._curve_offset)
            data = fh.read()
        end = data.rfind(b"\n") + 1
        self._curve_offset += end
        rows = []
        for line in data[:end].splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return rows

    @property
    def done(self) -> bool:
        return self.proc.poll() is not None

    def wait(self, seconds: float) -> bool:
        """Block up to ``seconds``, returning as soon as the process ends (True if it has)."""
        try:
            self.proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            return False
        return True

    def check_timeout(self) -> bool:
        if not self.done and time.monotonic() - self.started > self.timeout_s:
            log.warning("trial %d exceeded its %.0f s timeout; killing it", self.trial_id, self.timeout_s)
            self.timed_out = True
            self.proc.kill()
            return True
        return False

    def request_stop(self, reason: str) -> None:
        """Ask the trainer to stop at its next step; it exits cleanly as early_stopped."""
        if self.stop_reason is None:
            self.stop_reason = reason
            (self.run_dir / STOP_FILE).write_text(reason + "\n")

    def kill(self) -> None:
        if not self.done:
            self.proc.kill()
        self.proc.wait()

    def finish(self) -> RunResult:
        """The outcome: the trial's own metrics if it wrote them, else crashed/timeout with its log tail."""
        self.proc.wait()
        if self._stderr_thread is not None:
            self._stderr_thread.join(timeout=5)
        metrics = self.run_dir / METRICS_FILE
        if metrics.is_file() and not self.timed_out:
            try:
                return RunResult.load(metrics)
            except (OSError, json.JSONDecodeError, TypeError) as err:
                return RunResult(status=CRASHED, error=f"unreadable {METRICS_FILE}: {err}")
        status = TIMEOUT if self.timed_out else CRASHED
        code = self.proc.returncode
        why = f"killed by signal {-code}" if code and code < 0 else f"exit code {code}"
        return RunResult(status=status, error=f"{why}\n{log_tail(self.run_dir)}")


class TrialLauncher:
    """Starts trial processes, keeping one warm standby ready for the next."""

    def __init__(self, *, warm: bool = True, env: Optional[dict[str, str]] = None):
        self.warm = warm
        # OpenMP threads that sleep at a barrier instead of spinning: a trial shares the cores with
        # the campaign's own work (Ax, embeddings) and the next standby's imports, and with the
        # default (spinning) policy one busy process slows a 2-thread trial 20–50-fold
        # (bench/thread_contention.py). A value in the environment wins.
        self.env = {"OMP_WAIT_POLICY": "PASSIVE", **os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
        self._standby: Optional[_Standby] = None

    def prewarm(self) -> None:
        if self.warm and (self._standby is None or not self._standby.alive()):
            self._standby = _Standby(self.env)

    def start(self, trial_id: int, run_dir: Path, timeout_s: float) -> RunningTrial:
        import threading

        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / STOP_FILE).unlink(missing_ok=True)
        (run_dir / METRICS_FILE).unlink(missing_ok=True)
        standby = self._standby if self._standby is not None and self._standby.alive() else None
        self._standby = None
        if standby is not None:
            proc = standby.proc
            assert proc.stdin is not None
            proc.stdin.write(str(run_dir.resolve()) + "\n")
            proc.stdin.close()
        else:
            proc = subprocess.Popen(
                [sys.executable, "-m", "autoresearch.experiment", str(run_dir.resolve())],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                env=self.env, preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
                text=True,
            )
        # stderr → process.log, drained in a thread so a chatty trial never blocks on a full pipe
        log_path = run_dir / PROCESS_LOG

        def drain(stream=proc.stderr, path=log_path) -> None:
            with path.open("a") as fh:
                for line in stream:
                    fh.write(line)
                    fh.flush()

        thread = threading.Thread(target=drain, daemon=True)
        thread.start()
        # The next standby is not started here: its imports would compete with this trial's
        # set-up and untimed warm-up steps for the cores. The campaign calls prewarm() once the
        # trial's timed training is under way.
        return RunningTrial(trial_id=trial_id, run_dir=run_dir, proc=proc, timeout_s=timeout_s, _stderr_thread=thread)

    def close(self) -> None:
        if self._standby is not None and self._standby.alive():
            self._standby.proc.kill()
            self._standby.proc.wait()
        self._standby = None
