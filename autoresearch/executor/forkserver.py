"""Trial processes forked from a server that imported torch once: start-up in milliseconds.

A cold ``python -m autoresearch.experiment`` pays 3–5 s of CPU for its imports (torch, dynamo,
tensorboard) before the first step; on a small machine with short trials that is most of a
trial's cost, and it competes for the cores with the trial it was meant to precede. Like
``multiprocessing``'s forkserver with torch preloaded (and PyTorch's own fork-started DataLoader
workers), one server imports everything once and forks one child per trial, for every worker
slot started with the same environment. The child is still a process of its own: a crash, an OOM
kill or a segfault ends it alone.

The server never runs a tensor operation (an OpenMP or CUDA runtime started before ``fork`` is not
usable in the child); it is started with its slots' environment, so ``OMP_NUM_THREADS`` and
``OMP_WAIT_POLICY``, which the OpenMP runtime reads when torch loads it, are the slot's.

Protocol, one JSON object per line. The campaign writes ``{"argv": [...], "log": path}`` to the
server's stdin (the child's stdout goes to /dev/null, its stderr to ``log``); the server answers ``{"started": pid}`` and later ``{"exited": pid, "code": code}``
(``code`` as ``Popen.returncode``: negative for a signal). Closing stdin ends the server; its
children get SIGKILL when it dies (``PR_SET_PDEATHSIG``), as the server does when the campaign dies.
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import traceback
from pathlib import Path
from typing import Any, Optional

from autoresearch.experiment import exit_now

log = logging.getLogger(__name__)

SUPPORTED = sys.platform.startswith("linux") and hasattr(os, "fork")  # macOS: fork after torch is unsafe


def _prctl(option: int, *args: Any) -> None:  # pragma: no cover - runs in the child
    """Linux's ``prctl``; a no-op where libc or the call is missing."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(option, *args)
    except (OSError, AttributeError):
        pass


def die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Linux: SIGKILL when the parent dies (a kill -9 of the campaign leaves no orphan training)."""
    _prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _name_process(name: str) -> None:  # pragma: no cover - runs in the child
    """What ``top`` and ``ps -o comm`` show for a forked trial (its command line is the server's)."""
    _prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME


# --------------------------------------------------------------------------- the campaign's side


class ForkedProcess:
    """A trial process forked by the server, with the part of ``Popen``'s face the launcher uses.

    Its exit status arrives from the server (only the parent may reap a process); ``kill`` goes
    through a pidfd where the kernel has them, so a signal can never reach a recycled pid.
    """

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: Optional[int] = None
        self._ended = threading.Event()
        try:
            self._pidfd: Optional[int] = os.pidfd_open(pid)
        except (AttributeError, OSError):  # old kernel, or the child is already gone
            self._pidfd = None

    def _exited(self, code: int) -> None:
        self.returncode = code
        self._ended.set()
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None

    def poll(self) -> Optional[int]:
        return self.returncode

    def wait(self, timeout: Optional[float] = None) -> int:
        if not self._ended.wait(timeout):
            raise subprocess.TimeoutExpired(f"trial process {self.pid}", timeout or 0.0)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self._ended.is_set():
            return
        try:
            if self._pidfd is not None:
                signal.pidfd_send_signal(self._pidfd, sig)
            else:
                os.kill(self.pid, sig)
        except (ProcessLookupError, OSError):
            pass  # it ended on its own meanwhile; its exit status is on its way

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ForkServer:
    """The campaign's handle on one server process: ``spawn`` forks a trial process from it."""

    def __init__(self, env: dict[str, str]):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "autoresearch.executor.forkserver"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True,
            preexec_fn=die_with_parent,
        )
        self._lock = threading.Lock()
        self._one_spawn_at_a_time = threading.Lock()
        self._started: list[int] = []
        self._answer = threading.Condition(self._lock)
        self._children: dict[int, ForkedProcess] = {}
        self._early_exits: dict[int, int] = {}
        self._reader = threading.Thread(target=self._read, name="forkserver-reader", daemon=True)
        self._reader.start()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def spawn(self, argv: list[str], log_file: Path, timeout_s: float = 600.0) -> ForkedProcess:
        """Fork a child running ``python -m autoresearch.experiment ARGV``, its stderr appended to
        ``log_file``. Raises OSError if the server is dead or does not answer (the first answer
        waits for the server's imports)."""
        assert self.proc.stdin is not None
        with self._one_spawn_at_a_time, self._answer:
            self.proc.stdin.write(json.dumps({"argv": argv, "log": str(log_file)}) + "\n")
            self.proc.stdin.flush()
            if not self._answer.wait_for(lambda: self._started or not self.alive(), timeout=timeout_s):
                self.proc.kill()  # a late answer would be a second process in the same run directory
                raise OSError(f"the trial fork server did not answer within {timeout_s:.0f} s")
            if not self._started:
                raise OSError(f"the trial fork server died (exit code {self.proc.poll()})")
            pid = self._started.pop(0)
            child = ForkedProcess(pid)
            self._children[pid] = child
            if pid in self._early_exits:  # it ended before we registered it
                child._exited(self._early_exits.pop(pid))
            return child

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                msg = json.loads(line)
            except json.JSONDecodeError:
                continue
            with self._answer:
                if "started" in msg:
                    self._started.append(int(msg["started"]))
                    self._answer.notify_all()
                elif "exited" in msg:
                    pid, code = int(msg["exited"]), int(msg["code"])
                    child = self._children.pop(pid, None)
                    if child is None:
                        self._early_exits[pid] = code
                    else:
                        child._exited(code)
        # The server is gone, and with it (PDEATHSIG) every child it forked.
        with self._answer:
            for child in self._children.values():
                child._exited(-signal.SIGKILL)
            self._children.clear()
            self._answer.notify_all()

    def close(self) -> None:
        """End the server. Its children still running are killed with it: call after they finish."""
        if self.alive():
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=5)


# --------------------------------------------------------------------------- the server's side


def _child(argv: list[str], log_file: str, wake_fds: tuple[int, int], server: int) -> None:  # pragma: no cover
    """In the forked child: own signals and files, then the trial's own entry point; never returns."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C ends a trial as it ends a cold one
        for fd in wake_fds:
            os.close(fd)
        die_with_parent()
        _name_process(f"trial {Path(argv[0]).name}" if argv else "trial")
        if os.getppid() != server:  # the server died before the line above: nobody would stop us
            os._exit(1)
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        os.dup2(devnull, 1)
        os.dup2(os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644), 2)
        sys.stdin = open(os.devnull)
        from autoresearch.experiment.__main__ import main

        code = main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # the trial's own crash: its traceback in its log, its exit code 1
        traceback.print_exc()
    finally:
        exit_now(code)


def serve() -> int:  # pragma: no cover - runs in the server process, exercised through ForkServer
    """Import once, then fork a child per request until stdin closes."""
    from autoresearch.experiment.__main__ import warm_up

    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the campaign's to handle; it closes us
    warm_up()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    os.set_blocking(wake_r, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    out = sys.stdout
    stdin = sys.stdin.buffer
    pending = b""

    def reply(msg: dict[str, Any]) -> None:
        out.write(json.dumps(msg) + "\n")
        out.flush()

    def reap() -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            reply({"exited": pid, "code": os.waitstatus_to_exitcode(status)})

    while True:
        ready, _, _ = select.select([stdin, wake_r], [], [])
        if wake_r in ready:
            try:
                os.read(wake_r, 4096)
            except BlockingIOError:
                pass
            reap()
        if stdin in ready:
            chunk = os.read(stdin.fileno(), 65536)
            if not chunk:
                return 0
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                request = json.loads(line)
                argv, log_file = [str(a) for a in request["argv"]], str(request["log"])
                server = os.getpid()
                pid = os.fork()
                if pid == 0:
                    _child(argv, log_file, (wake_r, wake_w), server)
                reply({"started": pid})
        reap()


if __name__ == "__main__":
    exit_now(serve())  # torch's module-by-module teardown (a second or two) would delay the campaign's end
