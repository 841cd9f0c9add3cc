"""One trial, one process on this machine: watched, stoppable, and never able to take the campaign down.

A crash, an OOM, a segfault or a NaN ends only the trial's process; the caller reads what it
left behind (``metrics.json`` if it finished, else the tail of its log) and moves on. To keep
start-up off the critical path, trial processes are forked from a server that imported torch once
(``forkserver``); without one (``warm=False``, or not Linux) each starts cold.
Both executors use it — the local one here, the Ray actor on its node — so a trial starts the
same way wherever it runs.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from autoresearch.executor.forkserver import SUPPORTED as FORK_SUPPORTED
from autoresearch.executor.forkserver import ForkedProcess, ForkServer, die_with_parent
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


@dataclass
class RunningTrial:
    """A trial process in flight. ``poll`` returns new curve rows; ``finish`` collects the outcome."""

    trial_id: int
    run_dir: Path
    proc: "subprocess.Popen | ForkedProcess"
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

    def exit_code(self) -> int:
        """Wait for the process to end and its log to be complete; its ``Popen.returncode``."""
        code = self.proc.wait()
        if self._stderr_thread is not None:
            self._stderr_thread.join(timeout=5)
        return code

    def finish(self) -> RunResult:
        """The outcome: the trial's own metrics if it wrote them, else crashed/timeout with its log tail."""
        code = self.exit_code()
        metrics = self.run_dir / METRICS_FILE
        if metrics.is_file() and not self.timed_out:
            try:
                return RunResult.load(metrics)
            except (OSError, json.JSONDecodeError, TypeError) as err:
                return RunResult(status=CRASHED, error=f"unreadable {METRICS_FILE}: {err}")
        status = TIMEOUT if self.timed_out else CRASHED
        why = f"killed by signal {-code}" if code and code < 0 else f"exit code {code}"
        return RunResult(status=status, error=f"{why}\n{log_tail(self.run_dir)}")


class TrialLauncher:
    """Starts trial processes: forked from a warm fork server when it can, else cold."""

    def __init__(self, *, warm: bool = True, env: Optional[dict[str, str]] = None):
        self.warm = warm and FORK_SUPPORTED
        # OpenMP threads that sleep at a barrier instead of spinning: a trial shares the cores with
        # the campaign's own work (Ax, embeddings), and with the default (spinning) policy one busy
        # process slows a 2-thread trial 20–50-fold (bench/thread_contention.py). A value in the
        # environment wins.
        self.env = {"OMP_WAIT_POLICY": "PASSIVE", **os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
        self._server: Optional[ForkServer] = None
        self._server_lock = threading.Lock()  # the runner and the test-split scorer both start processes

    def prewarm(self) -> None:
        """Start the fork server (its imports overlap whatever runs meanwhile); cheap once it runs."""
        with self._server_lock:
            if self.warm and (self._server is None or not self._server.alive()):
                if self._server is not None:
                    log.warning("the trial fork server died (exit code %s); starting another", self._server.proc.poll())
                    self._server.close()
                self._server = ForkServer(self.env)

    def start(self, trial_id: int, run_dir: Path, timeout_s: float) -> RunningTrial:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / STOP_FILE).unlink(missing_ok=True)
        (run_dir / METRICS_FILE).unlink(missing_ok=True)
        return self._launch(trial_id, run_dir, [str(run_dir.resolve())], timeout_s)

    def evaluate_test(self, run_dir: Path, timeout_s: float) -> Optional[str]:
        """Score a finished run's saved weights on the test split, in a process of its own; None, or
        why it failed. The score lands in the run's ``metrics.json`` (``test_bpb``)."""
        scoring = self._launch(0, run_dir, [str(run_dir.resolve()), "--evaluate-test"], timeout_s)
        if not scoring.wait(timeout_s):
            scoring.kill()
            return f"timed out after {timeout_s:.0f} s"
        code = scoring.exit_code()
        return None if code == 0 else f"exit code {code}: {log_tail(run_dir, lines=5)[-500:]}"

    def _launch(self, trial_id: int, run_dir: Path, argv: list[str], timeout_s: float) -> RunningTrial:
        """``python -m autoresearch.experiment ARGV``: forked from the server when it can, else cold."""
        server = None
        if self.warm:
            self.prewarm()
            server = self._server
        if server is not None:
            try:
                proc: Any = server.spawn(argv, run_dir / PROCESS_LOG)
                return RunningTrial(trial_id=trial_id, run_dir=run_dir, proc=proc, timeout_s=timeout_s)
            except OSError as err:
                log.warning("%s; %s starts cold", err, run_dir.name)
        proc = subprocess.Popen(
            [sys.executable, "-m", "autoresearch.experiment", *argv],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env=self.env, preexec_fn=die_with_parent if sys.platform.startswith("linux") else None, text=True,
        )
        return RunningTrial(trial_id=trial_id, run_dir=run_dir, proc=proc, timeout_s=timeout_s,
                            _stderr_thread=_drain_to(proc.stderr, run_dir / PROCESS_LOG))

    def close(self) -> None:
        with self._server_lock:
            server, self._server = self._server, None
        if server is not None:
            server.close()


def _drain_to(stream: Any, path: Path) -> threading.Thread:
    """Copy a cold process's stderr into ``path`` in a thread: a chatty trial never blocks on a full pipe."""

    def drain() -> None:
        with path.open("a") as fh:
            for line in stream:
                fh.write(line)
                fh.flush()

    thread = threading.Thread(target=drain, daemon=True)
    thread.start()
    return thread
