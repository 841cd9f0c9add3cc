"""Seed correlation: how alike are two configurations' val_bpb when they share a seed?

    python bench/seed_correlation.py --setting quickstart   # record (appends to the JSON), then summarise
    python bench/seed_correlation.py --setting arch_basics
    python bench/seed_correlation.py --summary              # re-derive every figure from the JSON alone

The campaign validates a candidate with K fresh seeds paired with the incumbent's runs on the same
seeds, and judges the pairs with a paired t-test. A seed fixes the initial weights and the order of
the batches, so two configurations run on one seed share part of their noise; the share is the
correlation ρ of their val_bpb over seeds. The paired test's power rests on it: the variance of a
seed's difference is σ_a² + σ_b² − 2ρσ_aσ_b, so ρ = 0.5 halves it and ρ = 0 leaves it whole.

Each setting trains a reference configuration and a few single-key changes of it on the same seeds,
with a deterministic step budget (so the only noise is the seed), in this process, one thread per
run. The final val_bpb of every run is appended to ``bench/seed_correlation.json`` as soon as it
finishes, so the figures can be re-derived (``--summary``) and an interrupted recording resumes.
Printed per change: ρ over the seeds with a Fisher-z 90 % interval, σ of the reference and of the
change, the mean effect in units of the reference's σ, how often the change wins a seed, the
standard deviation of a seed's difference in units of the reference's σ (what the paired test's
power depends on: √2 at ρ = 0 with equal σ), and the "effective" ρ, 1 − (sd(d)/σ)²/2, at which
bench/false_discovery.py's equal-σ model has that spread. The pooled ρ is the mean of Fisher-z
values over the changes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

DATA = Path(__file__).resolve().parent / "seed_correlation.json"

# Each setting: the base overrides of a shipped campaign's trial with a step budget, and the
# single-key changes paired with it. Reference = base overrides alone.
SETTINGS: dict[str, dict] = {
    # The redesigned quickstart: a plain GPT-2-style model (learned positions, LayerNorm, GELU) at
    # the quickstart's size, 200 steps, the optimizer's default lr; the changes are the kind of
    # positive controls the quickstart offers.
    "quickstart": {
        "base": ["+campaign=quickstart", "model=gpt2_plain", "model.n_layer=3", "model.n_embd=96",
                 "model.n_head=4", "model.block_size=64", "trainer.batch_size=32",
                 "trainer.budget.kind=steps", "trainer.budget.value=200"],
        "changes": {
            "lr": ["optim.lr=0.012"],
            "activation": ["model.activation=relu2"],
            "pos_encoding": ["model.pos_encoding=rope"],
            "norm": ["model.norm=rms"],
        },
    },
    # arch_basics: the default CPU model (nano, 4 x 128), changes of its own search space.
    "arch_basics": {
        "base": ["+campaign=arch_basics", "trainer.budget.kind=steps", "trainer.budget.value=100"],
        "changes": {
            "norm": ["model.norm=layer"],
            "lr": ["optim.lr=0.003"],
        },
    },
}
COMMON = ["logger=none", "trainer.device=cpu", "trainer.threads=1", "trainer.eval_points=1",
          "trainer.save_checkpoint=false"]


def _load() -> dict:
    return json.loads(DATA.read_text()) if DATA.is_file() else {}


def _add_run(setting: str, name: str, extra: list[str], seed: int, val_bpb: float, seconds: float) -> None:
    """Add one finished run to the JSON under a file lock (two recordings may run at once)."""
    from filelock import FileLock

    with FileLock(str(Path(tempfile.gettempdir()) / f"{DATA.name}.lock")):  # not beside the data: nothing to commit
        data = _load()
        entry = data.setdefault(setting, {"base_overrides": SETTINGS[setting]["base"] + COMMON, "configs": {}})
        entry["configs"].setdefault(name, {"overrides": extra, "val_bpb": {}})["val_bpb"][str(seed)] = val_bpb
        entry["seconds"] = entry.get("seconds", 0.0) + seconds
        DATA.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def record(setting: str, seeds: list[int], changes: list[str] | None = None) -> None:
    """Train the reference and each change (default: all) on each seed, skipping runs already in the JSON."""
    from autoresearch.config import compose, to_experiment_config
    from autoresearch.experiment import run_experiment

    spec = SETTINGS[setting]
    wanted = changes or list(spec["changes"])
    configs = {"reference": [], **{name: spec["changes"][name] for name in wanted}}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="seed_corr_") as tmp:
        for seed in seeds:
            for name, extra in configs.items():
                done = _load().get(setting, {}).get("configs", {}).get(name, {}).get("val_bpb", {})
                if str(seed) in done:
                    continue
                overrides = [*spec["base"], *COMMON, *extra, f"seed={seed}"]
                cfg = to_experiment_config(compose(overrides))
                result = run_experiment(cfg, Path(tmp) / f"{name}_{seed}", overrides=overrides, bundle=False)
                if result.status != "completed":
                    raise SystemExit(f"{setting}/{name} seed {seed}: {result.status} ({result.error})")
                _add_run(setting, name, extra, seed, result.val_bpb, result.total_seconds)
                print(f"{setting} {name:<13} seed {seed}: val_bpb {result.val_bpb:.4f} "
                      f"({result.total_seconds:.1f} s, {time.perf_counter() - started:.0f} s in all)", flush=True)


def fisher_interval(r: float, n: int, level: float = 0.90) -> tuple[float, float]:
    """Interval for a correlation from n pairs (Fisher's z, normal approximation)."""
    from scipy import stats as sps

    z, half = math.atanh(max(min(r, 0.999999), -0.999999)), sps.norm.ppf(0.5 + level / 2) / math.sqrt(n - 3)
    return math.tanh(z - half), math.tanh(z + half)


def pairs(entry: dict, change: str) -> tuple[list[int], np.ndarray, np.ndarray]:
    """Seeds both the reference and ``change`` finished on, with their val_bpb in seed order."""
    ref, other = entry["configs"]["reference"]["val_bpb"], entry["configs"][change]["val_bpb"]
    seeds = sorted(int(s) for s in set(ref) & set(other))
    return seeds, np.array([ref[str(s)] for s in seeds]), np.array([other[str(s)] for s in seeds])


def summarise(data: dict) -> dict[str, dict[str, float]]:
    """Print and return, per setting and change, ρ and the quantities that decide the paired test's power."""
    out: dict[str, dict[str, float]] = {}
    for setting, entry in data.items():
        print(f"\n{setting}: {' '.join(entry['base_overrides'])}")
        header = (f"{'change':<14}{'seeds':>6}{'ρ':>7}{'ρ 90 % CI':>17}{'σ ref':>9}{'σ chg':>9}"
                  f"{'effect/σ':>10}{'wins':>7}{'sd(d)/σ':>9}{'ρ eff':>7}")
        print(header)
        print("-" * len(header))
        zs, ns = [], []
        for change in entry["configs"]:
            if change == "reference":
                continue
            seeds, a, b = pairs(entry, change)
            if len(seeds) < 4:
                continue
            r = float(np.corrcoef(a, b)[0, 1])
            lo, hi = fisher_interval(r, len(seeds))
            sa, sb = float(a.std(ddof=1)), float(b.std(ddof=1))
            d = a - b  # positive: the change is better on that seed
            out.setdefault(setting, {})[change] = r
            zs.append(math.atanh(r))
            ns.append(len(seeds))
            print(f"{change:<14}{len(seeds):>6}{r:>7.2f}{f'[{lo:+.2f}, {hi:+.2f}]':>17}{sa:>9.4f}{sb:>9.4f}"
                  f"{d.mean() / sa:>+10.1f}{f'{int((d > 0).sum())}/{len(d)}':>7}{d.std(ddof=1) / sa:>9.2f}"
                  f"{1 - (d.std(ddof=1) / sa) ** 2 / 2:>7.2f}")
        if zs:
            pooled = math.tanh(float(np.mean(zs)))
            out[setting]["pooled"] = pooled
            lo, hi = fisher_interval(pooled, sum(n - 3 for n in ns) + 3)
            print(f"{'pooled':<14}{'':>6}{pooled:>7.2f}{f'[{lo:+.2f}, {hi:+.2f}]':>17}")
        print(f"recorded in {entry.get('seconds', 0.0) / 60:.1f} minutes of run wall time (on a shared machine)")
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--setting", choices=sorted(SETTINGS), action="append", default=[])
    ap.add_argument("--seeds", type=int, nargs="+", default=list(range(1337, 1344)))
    ap.add_argument("--changes", nargs="+", default=None, help="record only these changes (default: all)")
    ap.add_argument("--summary", action="store_true", help="only print the figures from the JSON")
    args = ap.parse_args(argv)
    if not args.summary:
        for setting in args.setting:
            record(setting, args.seeds, args.changes)
    summarise(_load())


if __name__ == "__main__":
    main()
