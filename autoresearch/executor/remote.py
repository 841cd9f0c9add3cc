"""Trials on a Ray cluster: each one a Ray actor with declared CPUs/GPUs, on any node.

Nothing assumes a shared filesystem. ``start`` ships the run spec (``config.yaml``,
``overrides.yaml``) to the actor, which trains in a private temporary directory on its node with
the same process mechanics as the local executor (``TrialLauncher``): each actor keeps a fork
server that imported torch once, and an actor whose trial ended well waits for the next trial
with the same resources (at most ``workers`` actors live at once), so after the first trial on a
worker a trial starts in milliseconds, as locally. The campaign polls the actor
for new curve rows while the trial trains (and mirrors them into the local ``curve.jsonl``); a stop
request writes the STOP file over there; ``finish`` brings the whole run directory home as a
tarball. An actor that dies (its worker killed, its node gone) makes the result an
infrastructure failure, which the campaign may retry once elsewhere.

Ray is optional (``pip install -e ".[ray]"``): it is imported only when a ``RayExecutor`` is built.
"""

from __future__ import annotations

import io
import json
import logging
import math
import shutil
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional

from autoresearch.config.executor import ExecutorConfig
from autoresearch.executor.base import INFRASTRUCTURE_FAILURE, ExecutorBusy, TrialResources
from autoresearch.executor.process import RunningTrial, TrialLauncher
from autoresearch.experiment import CONFIG_FILE, CRASHED, CURVE_FILE, OVERRIDES_FILE, TIMEOUT, RunResult

log = logging.getLogger(__name__)

SPEC_FILES = (CONFIG_FILE, OVERRIDES_FILE)  # all a trial process needs to start
CALL_TIMEOUT_S = 120.0  # an actor call that takes longer means the actor is unreachable
WAIT_SLICE_S = 0.5  # wait() blocks the actor at most this long per call, so a stop is never held up
PING_TIMEOUT_S = 10.0  # an idle actor that does not answer this fast is not given a trial
Shape = tuple[float, float, tuple[tuple[str, float], ...]]  # an actor's num_cpus, num_gpus, custom resources


def _require_ray():
    try:
        import ray
    except ImportError as err:  # pragma: no cover - depends on the installation
        raise ImportError('executor=ray needs Ray: pip install -e ".[ray]"') from err
    return ray


def pack_dir(path: Path) -> bytes:
    """A directory as gzipped tar bytes (how a run directory travels back from its node)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for child in sorted(path.iterdir()):
            tar.add(child, arcname=child.name)
    return buffer.getvalue()


def unpack_dir(data: bytes, path: Path) -> None:
    """Extract ``pack_dir`` bytes into ``path``, refusing links out of it, devices and absolute names."""
    path.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(path, filter="data")


class TrialActor:
    """Lives in a Ray worker process on some node: one trial, in a directory of its own.

    Its methods are called one at a time, in the order the campaign sent them (a plain, single-
    threaded Ray actor), so a stop request follows a poll and never races it.
    """

    def __init__(self, threads: int):
        # The executor reuses an actor for trial after trial, so its fork server's imports (torch:
        # seconds) are paid once per worker; they start now, while the actor waits for its first.
        self._launcher = TrialLauncher(env={"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)})
        self._launcher.prewarm()
        self._dir: Optional[Path] = None
        self._trial: Optional[RunningTrial] = None

    def ready(self) -> bool:
        """Answers while the actor (and its node) lives: checked before an idle actor is reused."""
        return True

    def start(self, trial_id: int, spec: dict[str, bytes], timeout_s: float) -> tuple[str, str]:
        """Write the spec into a fresh directory, start the trial process; returns this node's id
        and this actor's."""
        import ray

        self._dir = Path(tempfile.mkdtemp(prefix=f"autoresearch-trial{trial_id}-"))
        for name, data in spec.items():
            (self._dir / Path(name).name).write_bytes(data)
        self._trial = self._launcher.start(trial_id, self._dir, timeout_s)
        context = ray.get_runtime_context()
        return context.get_node_id(), context.get_actor_id()

    def poll(self) -> tuple[list[dict[str, Any]], bool]:
        """New curve rows, and whether the trial process has ended."""
        assert self._trial is not None
        ended = self._trial.done  # asked first: rows read after it are then the complete tail
        return self._trial.poll(), ended

    def wait(self, seconds: float) -> bool:
        assert self._trial is not None
        return self._trial.wait(seconds)

    def check_timeout(self) -> bool:
        assert self._trial is not None
        return self._trial.check_timeout()

    def request_stop(self, reason: str) -> None:
        assert self._trial is not None
        self._trial.request_stop(reason)

    def kill(self) -> None:
        assert self._trial is not None
        self._trial.kill()

    def finish(self) -> tuple[dict[str, Any], bytes]:
        """The result and the run directory (as tar bytes); the node keeps nothing afterwards."""
        assert self._trial is not None and self._dir is not None
        result = self._trial.finish()
        packed = pack_dir(self._dir)
        shutil.rmtree(self._dir, ignore_errors=True)
        return result.to_dict(), packed


class RayTrialHandle:
    """The campaign's side of a trial running in a ``TrialActor`` somewhere on the cluster."""

    def __init__(self, actor: Any, *, trial_id: int, run_dir: Path, timeout_s: float, started_ref: Any,
                 reuse: Callable[[Any], None] = lambda actor: None):
        self._actor = actor
        self._reuse = reuse  # hands the actor back to the executor once the trial ended well
        self.trial_id = trial_id
        self.run_dir = run_dir
        self.timeout_s = timeout_s
        self.stop_reason: Optional[str] = None
        self.timed_out = False
        self.node_id: Optional[str] = None  # where it runs, once its process has started
        self.worker_id: Optional[str] = None  # the actor it runs in (one actor serves trial after trial)
        self._started_ref = started_ref
        self._created = time.monotonic()
        self._done = False
        self._failure: Optional[str] = None  # why the machinery under the trial died
        self._abandoned = False  # killed before its process started (queued too long, or stopped)
        self._start_error: Optional[str] = None
        self._pending_rows: list[dict[str, Any]] = []  # fetched by a `done` check, not yet polled
        self._result: Optional[RunResult] = None

    # ------------------------------------------------------------------ state
    @property
    def done(self) -> bool:
        if not self._done and self._started():
            self._mirror(self._call("poll"))
        return self._done

    @property
    def finished(self) -> bool:
        """``finish`` has returned: the executor's slot is free again."""
        return self._result is not None

    @property
    def infrastructure_failure(self) -> bool:
        return self._failure is not None

    def _started(self) -> bool:
        """True once the actor has started the trial process (it may still be queued for resources)."""
        if self._started_ref is None:
            return True
        if self._failure is not None or self._abandoned or self._start_error is not None:
            return False
        import ray

        ready, _ = ray.wait([self._started_ref], timeout=0)
        if not ready:
            return False
        try:
            self.node_id, self.worker_id = ray.get(self._started_ref)
        except ray.exceptions.RayTaskError as err:  # the start itself raised: the trial's fault
            self._start_error = str(err)[-4000:]
            self._done = True
            return False
        except ray.exceptions.RayError as err:
            self._fail(err)
            return False
        self._started_ref = None
        log.info("trial %d runs on node %s", self.trial_id, self.node_id)
        return True

    def _fail(self, err: BaseException) -> None:
        if self._failure is None:
            self._failure = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
            log.warning("trial %d: its Ray worker died (%s)", self.trial_id, self._failure)
        self._done = True

    def _call(self, method: str, *args: Any, timeout: float = CALL_TIMEOUT_S) -> Any:
        """Call the actor and wait; a dead or unreachable actor marks an infrastructure failure."""
        import ray

        if self._failure is not None:
            return None
        try:
            return ray.get(getattr(self._actor, method).remote(*args), timeout=timeout)
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError, ray.exceptions.NodeDiedError) as err:
            self._fail(err)
            try:
                ray.kill(self._actor, no_restart=True)  # an unreachable one must not train on unseen
            except Exception:  # noqa: BLE001 - already gone
                pass
            return None

    def _mirror(self, answer: Optional[tuple[list[dict[str, Any]], bool]]) -> list[dict[str, Any]]:
        """Record a poll's answer: rows go to the local curve.jsonl too, so the run dir shows progress."""
        if answer is None:
            return []
        rows, ended = answer
        if rows:
            with (self.run_dir / CURVE_FILE).open("a") as fh:
                fh.writelines(json.dumps(row) + "\n" for row in rows)
        self._done = self._done or ended
        self._pending_rows.extend(rows)
        return rows

    # ------------------------------------------------------------------ verbs
    def poll(self) -> list[dict[str, Any]]:
        """New curve rows streamed from the remote trial (rows a ``done`` check fetched included)."""
        if self._started() and not self._failure:
            self._mirror(self._call("poll"))
        rows, self._pending_rows = self._pending_rows, []
        return rows

    def wait(self, seconds: float) -> bool:
        """Block up to ``seconds`` (in short slices, so a stop request is never held up)."""
        deadline = time.monotonic() + seconds
        while True:
            remaining = deadline - time.monotonic()
            if self._started():
                if self._done or self._call("wait", max(0.0, min(WAIT_SLICE_S, remaining)),
                                            timeout=CALL_TIMEOUT_S + WAIT_SLICE_S):
                    self._done = True
                    return True
                if self._failure is not None:
                    return True
            elif self._done:
                return True
            else:
                time.sleep(max(0.0, min(WAIT_SLICE_S, remaining)))
            if deadline - time.monotonic() <= 0:
                return self._done

    def check_timeout(self) -> bool:
        if self._done:
            return False
        if not self._started():
            # Still queued for resources: the timeout counts from start(), as locally.
            if time.monotonic() - self._created > self.timeout_s and self._failure is None:
                log.warning("trial %d waited %.0f s for Ray resources; giving up", self.trial_id, self.timeout_s)
                self.timed_out = True
                self._abandon()
                return True
            return False
        if self._call("check_timeout"):
            self.timed_out = True
            return True
        return False

    def request_stop(self, reason: str) -> None:
        """Forwarded to the remote trial, which stops at its next step as early_stopped."""
        if self.stop_reason is None:
            self.stop_reason = reason
            if self._started():
                self._call("request_stop", reason)
            elif not self._done:
                # Still queued: actor calls run in the order sent, so this lands right after start.
                self._actor.request_stop.remote(reason)

    def kill(self) -> None:
        if self._started():
            self._call("kill")
        else:
            self._abandon()

    def _abandon(self) -> None:
        import ray

        ray.kill(self._actor, no_restart=True)
        self._abandoned = True
        self._done = True

    def finish(self) -> RunResult:
        """Wait for the end, bring the run directory home into ``run_dir``, return the outcome."""
        if self._result is not None:
            return self._result
        while not self.wait(60.0):
            pass
        answer = None if self._started_ref is not None else self._call("finish", timeout=CALL_TIMEOUT_S * 5)
        if answer is not None:
            result_dict, packed = answer
            unpack_dir(packed, self.run_dir)
            result = RunResult.from_dict(result_dict)
            self._result = result
            self._reuse(self._actor)  # it answered: alive, and its fork server is warm
            return result
        if self._failure is not None:
            result = RunResult(status=CRASHED, error=f"{INFRASTRUCTURE_FAILURE}: {self._failure}")
        elif self._start_error is not None:
            result = RunResult(status=CRASHED, error=f"the trial could not start: {self._start_error}")
        else:
            result = RunResult(status=TIMEOUT if self.timed_out else CRASHED,
                               error="the trial never started: no node offered its resources in time")
        self._release()
        self._result = result
        return result

    def _release(self) -> None:
        _kill(self._actor)


def _kill(actor: Any) -> None:
    import ray

    try:
        ray.kill(actor, no_restart=True)
    except Exception:  # noqa: BLE001 - already gone
        pass


class RayExecutor:
    """``workers`` trials at once as Ray actors, on an existing cluster or a local one it starts."""

    def __init__(self, config: ExecutorConfig):
        ray = _require_ray()
        self.config = config
        self._owns_cluster = False
        if not ray.is_initialized():
            if config.address:
                ray.init(address=config.address, log_to_driver=False)
            else:
                from autoresearch.executor.local import usable_cores

                # Room for exactly the configured trials, even on a machine with fewer cores.
                ray.init(num_cpus=max(usable_cores(), math.ceil(config.workers * config.num_cpus)),
                         include_dashboard=False, log_to_driver=False)
                self._owns_cluster = True
        self._actor_class = ray.remote(TrialActor)
        self._running: list[RayTrialHandle] = []
        self._idle: list[tuple[Shape, Any]] = []  # warm actors between trials, with their resources
        self._scorer = TrialLauncher()  # test-split scoring, here: the run directories came home
        log.info("ray executor: %d worker(s), %s CPU / %s GPU per trial, cluster %s", config.workers,
                 config.num_cpus, config.num_gpus, config.address or "started locally")

    @property
    def capacity(self) -> int:
        return self.config.workers

    def start(self, trial_id: int, run_dir: Path, timeout_s: float,
              resources: Optional[TrialResources] = None) -> RayTrialHandle:
        """Ship the spec in ``run_dir`` to an idle actor with these resources, else a new one; returns
        at once (a new actor may still be queued)."""
        if self._in_flight() >= self.capacity:
            raise ExecutorBusy(f"all {self.capacity} Ray workers are busy: finish() a trial before starting another")
        run_dir = Path(run_dir)
        spec = {name: (run_dir / name).read_bytes() for name in SPEC_FILES if (run_dir / name).is_file()}
        if CONFIG_FILE not in spec:
            raise FileNotFoundError(f"{run_dir / CONFIG_FILE}: write the trial's spec before starting it")
        (run_dir / CURVE_FILE).unlink(missing_ok=True)
        shape = self._shape(resources or TrialResources())
        actor = self._take_idle(shape) or self._new_actor(shape)
        handle = RayTrialHandle(actor, trial_id=trial_id, run_dir=run_dir, timeout_s=timeout_s,
                                started_ref=actor.start.remote(trial_id, spec, timeout_s),
                                reuse=lambda used: self._idle.append((shape, used)))
        self._running.append(handle)
        return handle

    def prewarm(self) -> None:
        """Start an actor for every free worker now, so that each imports torch into its fork server
        while the campaign starts (they declare the configured resources, as most trials do)."""
        shape = self._shape(TrialResources())
        for _ in range(self.capacity - self._in_flight() - len(self._idle)):
            self._idle.append((shape, self._new_actor(shape)))

    def _in_flight(self) -> int:
        """Trials started and not yet finished (finished ones are forgotten here)."""
        self._running = [h for h in self._running if not h.finished]
        return len(self._running)

    # ------------------------------------------------------------------ the actor pool
    def _shape(self, resources: TrialResources) -> Shape:
        num_cpus = self.config.num_cpus if resources.num_cpus is None else resources.num_cpus
        num_gpus = self.config.num_gpus if resources.num_gpus is None else resources.num_gpus
        return float(num_cpus), float(num_gpus), tuple(sorted(resources.custom.items()))

    def _new_actor(self, shape: Shape) -> Any:
        num_cpus, num_gpus, custom = shape
        return self._actor_class.options(
            num_cpus=num_cpus, num_gpus=num_gpus, resources=dict(custom) or None,
            max_restarts=0, max_task_retries=0, name=None,
        ).remote(max(1, int(num_cpus)))

    def _take_idle(self, shape: Shape) -> Optional[Any]:
        """A live idle actor with these resources, if any. Otherwise idle actors of other shapes
        make room, so that no more than ``workers`` actors hold resources at once."""
        import ray

        for entry in [e for e in self._idle if e[0] == shape]:
            self._idle.remove(entry)
            try:
                ray.get(entry[1].ready.remote(), timeout=PING_TIMEOUT_S)
                return entry[1]
            except (ray.exceptions.RayError, ray.exceptions.GetTimeoutError):  # its node or worker is gone
                _kill(entry[1])
        while self._idle and len(self._running) + len(self._idle) >= self.capacity:
            _kill(self._idle.pop(0)[1])
        return None

    def evaluate_test(self, run_dir: Path, timeout_s: float) -> Optional[str]:
        """On the campaign's machine, where ``finish`` brought the run directory (and its weights)."""
        return self._scorer.evaluate_test(Path(run_dir), timeout_s)

    def close(self) -> None:
        ray = _require_ray()
        self._scorer.close()
        for handle in self._running:
            if not handle.finished:
                handle._release()
        self._running = []
        for _, actor in self._idle:
            _kill(actor)
        self._idle = []
        if self._owns_cluster and ray.is_initialized():
            ray.shutdown()
