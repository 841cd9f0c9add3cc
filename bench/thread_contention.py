"""Trial speed when something else wants a core: OpenMP's wait policy decides.

A campaign on a small machine is never alone with its trial: the campaign process fits Ax's model,
embeds trial descriptions and decides early stopping, and the next trial's process imports torch,
all while the current trial trains. With as many OpenMP threads as cores, the default (active)
wait policy lets each thread spin at every barrier for a while before sleeping; when another
process holds one of the cores, the thread that got descheduled delays each barrier by a whole
scheduler slice, and small kernels (a 1-M-parameter GPT is all small kernels) crawl.

This script measures the default GPT's training step and evaluation forward pass in fresh
processes (the policy is read when OpenMP starts), for each setting, on a quiet machine and beside
one busy process of its own making:

    python bench/thread_contention.py                  # default model, 2 threads
    python bench/thread_contention.py --threads 4 --busy 2
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time

# (label, threads or None for --threads, env: a value sets the variable, None removes it)
UNSET = {"OMP_WAIT_POLICY": None, "GOMP_SPINCOUNT": None}
SETTINGS = (
    ("libgomp default (unset)", None, UNSET),
    ("active", None, {**UNSET, "OMP_WAIT_POLICY": "ACTIVE"}),
    ("passive", None, {**UNSET, "OMP_WAIT_POLICY": "PASSIVE"}),
    ("spin 10k, then sleep", None, {**UNSET, "GOMP_SPINCOUNT": "10000"}),
    ("one thread", 1, UNSET),
)

CHILD = r"""
import json, sys, time, torch
from autoresearch.config.schema import ModelConfig
from autoresearch.model import GPT
threads, reps = int(sys.argv[1]), int(sys.argv[2])
torch.set_num_threads(threads)
torch.manual_seed(0)
cfg = ModelConfig(n_layer=4, n_head=4, n_embd=128, block_size=64, vocab_size=256)
model = GPT(cfg)
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
x = torch.randint(0, 256, (16, 64))
def step():
    _, loss = model(x, x); loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
for _ in range(3):
    step()
t = time.perf_counter()
for _ in range(reps):
    step()
train = (time.perf_counter() - t) / reps
model.eval()
with torch.no_grad():
    model(x, x)
    t = time.perf_counter()
    for _ in range(reps):
        model(x, x)
    evaluate = (time.perf_counter() - t) / reps
print(json.dumps({"train_ms": 1000 * train, "eval_ms": 1000 * evaluate}))
"""


def _spin(stop: "mp.synchronize.Event") -> None:  # pragma: no cover - a deliberately busy process
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def measure(threads: int, env: dict[str, str], reps: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", CHILD, str(threads), str(reps)], capture_output=True, text=True,
                         env={k: v for k, v in {**os.environ, **env}.items() if v is not None}, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="OpenMP threads of the trial")
    ap.add_argument("--busy", type=int, default=1, help="busy processes beside the trial in the contended case")
    ap.add_argument("--reps", type=int, default=20)
    args = ap.parse_args()
    rows = []
    for busy in (0, args.busy):
        stop = mp.Event()
        spinners = [mp.Process(target=_spin, args=(stop,), daemon=True) for _ in range(busy)]
        for p in spinners:
            p.start()
        time.sleep(0.5 if busy else 0)
        try:
            for label, threads, env in SETTINGS:
                rows.append((busy, label, threads or args.threads, measure(threads or args.threads, env, args.reps)))
        finally:
            stop.set()
            for p in spinners:
                p.join()
    ref = rows[0][3]
    print(f"{os.cpu_count()} cores; default GPT (4×128, ctx 64, batch 16); ratios vs the first row")
    header = f"{'busy':>5}  {'setting':<24}{'threads':>8}{'train ms':>10}{'ratio':>7}{'eval ms':>9}{'ratio':>7}"
    print(header)
    print("-" * len(header))
    for busy, label, threads, r in rows:
        print(f"{busy:>5}  {label:<24}{threads:>8}{r['train_ms']:>10.1f}{r['train_ms'] / ref['train_ms']:>7.2f}"
              f"{r['eval_ms']:>9.1f}{r['eval_ms'] / ref['eval_ms']:>7.2f}")


if __name__ == "__main__":
    main()
