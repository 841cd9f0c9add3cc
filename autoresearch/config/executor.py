"""Where trials run (``conf/executor/``): this machine's worker slots, or a Ray cluster.

A module of its own so the executor group can grow without touching the rest of the schema. It
imports nothing from the package (``schema`` imports it), so its checks return ``(key, message)``
pairs that ``ExperimentConfig.problems`` turns into ``ConfigProblem``s.
"""

from __future__ import annotations

from dataclasses import dataclass

EXECUTOR_KINDS = ("local", "ray")


@dataclass(kw_only=True)
class ExecutorConfig:
    """How many trials run at once, and on what.

    Nothing here changes a trial's result: with a deterministic budget a trial's val_bpb is the
    same whatever ``workers`` is or wherever it ran (tests/test_executor.py checks it).
    """

    kind: str = "local"  # local | ray
    workers: int = 1  # trials at once (1 = one trial at a time, as before)
    # local: torch/OpenMP threads of each trial process; 0 = the cores split evenly between workers
    # (one worker at 0 keeps the environment's default, as before executors existed)
    threads_per_worker: int = 0
    # local: GPUs given to each worker through CUDA_VISIBLE_DEVICES (only where GPUs are visible);
    # 0 = leave the device set alone
    gpus_per_worker: int = 1
    # ray: "auto" (the cluster this machine belongs to), "ray://host:10001" (Ray Client), or ""
    # (start a local cluster for the campaign, stopped with it)
    address: str = ""
    num_cpus: float = 1.0  # ray: CPUs each trial declares (also its thread count)
    num_gpus: float = 0.0  # ray: GPUs each trial declares

    def problems(self, prefix: str = "executor") -> list[tuple[str, str]]:
        p: list[tuple[str, str]] = []
        if self.kind not in EXECUTOR_KINDS:
            p.append((f"{prefix}.kind", f"must be one of {list(EXECUTOR_KINDS)}, got {self.kind!r}"))
        if self.workers < 1:
            p.append((f"{prefix}.workers", f"must be >= 1, got {self.workers!r}"))
        for key in ("threads_per_worker", "gpus_per_worker", "num_gpus"):
            if getattr(self, key) < 0:
                p.append((f"{prefix}.{key}", f"must be >= 0, got {getattr(self, key)!r}"))
        if self.num_cpus <= 0:
            p.append((f"{prefix}.num_cpus", f"must be > 0, got {self.num_cpus!r}"))
        if self.address and not (self.address == "auto" or self.address.startswith("ray://")
                                 or ":" in self.address):
            p.append((f"{prefix}.address", f"must be 'auto', 'ray://host:port', 'host:port' or empty, got {self.address!r}"))
        return p
