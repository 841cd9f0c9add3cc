"""Trials per hour with 1 and 2 local workers (cold or forked processes) and with 2 Ray workers,
on the same tiny trials.

Every mode runs the same fixed set of trial specs (tiny model, a deterministic steps budget, one
thread per trial), so the only difference is how many run at once and where. Modes are run in
rounds, one after another inside each round, so that a drift in the machine's load hits them
alike; ratios are taken within a round. It also checks that each trial's val_bpb is identical in
every mode (determinism whatever N).

    PYTHONPATH=$PWD python bench/parallel.py --trials 6 --steps 200 --rounds 1

In the ``cold`` modes each trial process imports torch itself; the ``forked`` modes are what a
local campaign runs: each worker's trials forked from its fork server. Ray's actors keep a fork
server each and serve trial after trial, so ``ray×2`` forks too. Before the clock starts each
executor runs one untimed trial per worker (a fork server's imports are paid once per campaign,
by its first trial), and Ray's local cluster is started (time printed apart).

    PYTHONPATH=$PWD python bench/parallel.py --trials 6 --steps 200 --modes cold×1 forked×1 cold×2 forked×2
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

from autoresearch.config import compose, to_experiment_config
from autoresearch.config.executor import ExecutorConfig
from autoresearch.executor import Executor, make_executor
from autoresearch.experiment import COMPLETED, write_run_spec

MODES = {  # name: (executor, local trial processes forked from a warm server; Ray actors always fork)
    "cold×1": (ExecutorConfig(kind="local", workers=1, threads_per_worker=1), False),
    "cold×2": (ExecutorConfig(kind="local", workers=2, threads_per_worker=1), False),
    "ray×2": (ExecutorConfig(kind="ray", workers=2, num_cpus=1), False),
    "forked×1": (ExecutorConfig(kind="local", workers=1, threads_per_worker=1), True),
    "forked×2": (ExecutorConfig(kind="local", workers=2, threads_per_worker=1), True),
}


def overrides(seed: int, steps: int) -> list[str]:
    return ["model=tiny", "trainer=smoke", "logger=none", f"trainer.budget.value={steps}", f"seed={seed}"]


def run_all(executor: Executor, root: Path, trials: int, steps: int) -> tuple[float, list[float]]:
    """Run every trial through ``executor`` (capacity at a time); wall seconds and each val_bpb."""
    pending = []
    for i in range(trials):
        run_dir = root / f"trial{i}"
        over = overrides(1000 + i, steps)
        write_run_spec(to_experiment_config(compose(over)), run_dir, over)
        pending.append((i, run_dir))
    running, scores = [], [float("nan")] * trials
    started = time.perf_counter()
    while pending or running:
        while pending and len(running) < executor.capacity:
            i, run_dir = pending.pop(0)
            running.append((i, executor.start(i, run_dir, timeout_s=1800)))
        for i, handle in list(running):
            handle.poll()  # what the campaign does: read the curve while it trains
            if handle.wait(0.05):
                result = handle.finish()
                if result.status != COMPLETED:
                    raise SystemExit(f"trial {i} ended {result.status}: {result.error}")
                scores[i] = result.val_bpb
                running.remove((i, handle))
    return time.perf_counter() - started, scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=6)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--modes", nargs="+", default=["cold×1", "cold×2", "ray×2", "forked×1", "forked×2"],
                    choices=list(MODES))
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    walls: dict[str, list[float]] = {m: [] for m in args.modes}
    scores: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for mode in args.modes:
                config, warm = MODES[mode]
                t0 = time.perf_counter()
                executor = make_executor(config, warm=warm)
                try:
                    run_all(executor, Path(tmp) / f"r{r}-{mode}-untimed", executor.capacity, 1)
                    print(f"round {r}: {mode} start-up {time.perf_counter() - t0:.1f} s (not counted)")
                    wall, vals = run_all(executor, Path(tmp) / f"r{r}-{mode}", args.trials, args.steps)
                finally:
                    executor.close()
                walls[mode].append(wall)
                scores.setdefault(mode, vals)
                print(f"round {r}: {mode:8s} {args.trials} trials in {wall:6.1f} s = "
                      f"{args.trials / wall * 3600:7.0f} trials/h")

    base = args.modes[0]
    print(f"\n{args.trials} trials × {args.steps} steps, {args.rounds} round(s); ratios within each round vs {base}")
    print(f"{'mode':10s} {'trials/h (median)':>18s} {'speed-up (median)':>18s}")
    for mode in args.modes:
        per_hour = statistics.median(args.trials / w * 3600 for w in walls[mode])
        ratio = statistics.median(b / w for b, w in zip(walls[base], walls[mode]))
        print(f"{mode:10s} {per_hour:18.0f} {ratio:18.2f}")
    same = all(scores[m] == scores[base] for m in args.modes)
    print(f"\nval_bpb identical in every mode: {same}")


if __name__ == "__main__":
    main()
