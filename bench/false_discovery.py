"""False-discovery benchmark: how often does the critic validate nothing, and find what is there?

    python bench/false_discovery.py                      # simulated campaigns, critic defaults
    python bench/false_discovery.py --grid               # the same over K = 2..8 seeds and both tests
    python bench/false_discovery.py --real --pool 12     # noise from real tiny-model runs

Each simulated campaign has a baseline measured over ``noise_seeds`` seeds and a family of
hypotheses: A/A ones (no effect at all — only the seed differs) and planted ones that improve
val_bpb by 1, 2 or 3 noise σ. Every hypothesis is re-run with K validation seeds and judged by
``autoresearch.critic.assess`` — the very function the campaign calls (noise floor, Welch or
bootstrap, Benjamini–Hochberg across the family, verdict). Printed:

* FDR — the mean over campaigns of (validated A/A) / (validated), the quantity BH controls
  (goal <= 5 %), and the share of A/A hypotheses validated;
* power — the share of planted hypotheses validated, per effect size and for effects >= 2σ
  (goal >= 80 %).

Run-to-run noise is Normal with std σ by default; ``--rho`` gives runs that share a seed a common
component (same initialisation and data order), which ``--paired`` exploits. With ``--real`` the
noise is drawn instead from the final val_bpb of ``--pool`` real runs of a tiny model that differ
only in their seed (``autoresearch.experiment.run_experiment``); planted effects are then added to
those real values, in units of their measured σ.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from autoresearch.config import CriticConfig  # noqa: E402
from autoresearch.critic import VALIDATED, assess  # noqa: E402

EFFECTS = (1.0, 2.0, 3.0)


def simulate(
    cfg: CriticConfig,
    *,
    campaigns: int,
    null: int,
    per_effect: int,
    rho: float,
    paired: bool,
    seed: int,
    pool: np.ndarray | None = None,
) -> dict:
    """Run ``campaigns`` simulated campaigns; return FDR, A/A validation rate and power per effect."""
    rng = np.random.default_rng(seed)
    sigma = float(np.std(pool, ddof=1)) if pool is not None else 1.0
    nb, k = cfg.noise_seeds, cfg.validation_seeds
    fdps, aa_validated, aa_total = [], 0, 0
    hits = {e: 0 for e in EFFECTS}
    totals = {e: 0 for e in EFFECTS}
    for c in range(campaigns):
        if pool is not None:
            # Real runs: the baseline's runs are set aside, each candidate draws distinct other runs.
            order = rng.permutation(pool.size)
            baseline, rest = pool[order[:nb]], pool[order[nb:]]
            runs = lambda n: rng.choice(rest, size=n, replace=False)  # noqa: E731
        else:
            shared = rng.normal(size=max(nb, k)) * np.sqrt(rho)  # what a seed does to any config
            baseline = shared[:nb] + rng.normal(size=nb) * np.sqrt(1 - rho)
            runs = lambda n: shared[:n] + rng.normal(size=n) * np.sqrt(1 - rho)  # noqa: E731
        truth: dict[str, float] = {}
        candidates: dict[str, list[float]] = {}
        for h in range(null):
            truth[f"aa{h}"] = 0.0
            candidates[f"aa{h}"] = list(runs(k))
        for e in EFFECTS:
            for h in range(per_effect):
                truth[f"e{e:g}_{h}"] = e
                candidates[f"e{e:g}_{h}"] = list(runs(k) - e * sigma)  # lower bpb = better
        verdicts = assess(candidates, list(baseline), cfg, paired=paired, seed=seed + c)
        validated = [a for a in verdicts if a.verdict == VALIDATED]
        false = sum(truth[a.hypothesis] == 0.0 for a in validated)
        fdps.append(false / len(validated) if validated else 0.0)
        aa_validated += false
        aa_total += null
        for a in validated:
            if truth[a.hypothesis] > 0:
                hits[truth[a.hypothesis]] += 1
        for e in EFFECTS:
            totals[e] += per_effect
    strong = [e for e in EFFECTS if e >= 2.0]
    return {
        "fdr": float(np.mean(fdps)),
        "aa_rate": aa_validated / max(aa_total, 1),
        "power": {e: hits[e] / max(totals[e], 1) for e in EFFECTS},
        "power_2sigma": sum(hits[e] for e in strong) / max(sum(totals[e] for e in strong), 1),
    }


def real_pool(n: int, overrides: list[str]) -> np.ndarray:
    """Final val_bpb of ``n`` runs of a tiny model that differ only in their seed."""
    from autoresearch.config import compose, to_experiment_config
    from autoresearch.experiment import run_experiment

    values = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="false_discovery_") as tmp:
        for i in range(n):
            extra = [*overrides, f"seed={1000 + i}"]
            cfg = to_experiment_config(compose(extra))
            result = run_experiment(cfg, Path(tmp) / f"run{i}", overrides=extra, bundle=False)
            if result.status == "completed":
                values.append(result.val_bpb)
            print(f"  real run {i + 1}/{n}: {result.status} val_bpb={result.val_bpb:.4f} "
                  f"({time.perf_counter() - started:.0f} s)", flush=True)
    if len(values) < 4:
        sys.exit(f"only {len(values)} real runs completed; need at least 4 for a noise pool")
    return np.asarray(values)


def _row(label: str, r: dict) -> str:
    p = r["power"]
    ok = "yes" if r["fdr"] <= 0.05 and r["power_2sigma"] >= 0.8 else "no"
    return (f"{label:<28}{100 * r['fdr']:>7.1f}{100 * r['aa_rate']:>8.1f}{100 * p[1.0]:>8.1f}"
            f"{100 * p[2.0]:>8.1f}{100 * p[3.0]:>8.1f}{100 * r['power_2sigma']:>9.1f}{ok:>7}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults = CriticConfig()
    ap.add_argument("--campaigns", type=int, default=400)
    ap.add_argument("--null", type=int, default=10, help="A/A hypotheses per campaign")
    ap.add_argument("--per-effect", type=int, default=3, help="planted hypotheses per effect size per campaign")
    ap.add_argument("--noise-seeds", type=int, default=defaults.noise_seeds)
    ap.add_argument("--validation-seeds", type=int, default=defaults.validation_seeds)
    ap.add_argument("--test", default=defaults.test, choices=["welch", "bootstrap"])
    ap.add_argument("--alpha", type=float, default=defaults.alpha)
    ap.add_argument("--fdr", type=float, default=defaults.fdr)
    ap.add_argument("--paired", action="store_true", help="pair candidate and baseline runs by seed")
    ap.add_argument("--rho", type=float, default=0.0, help="share of run variance that comes from the seed")
    ap.add_argument("--grid", action="store_true", help="sweep K (= noise seeds) and the test")
    ap.add_argument("--real", action="store_true", help="draw noise from real tiny-model runs")
    ap.add_argument("--pool", type=int, default=12, help="--real: number of real runs")
    ap.add_argument("--override", action="append", default=None,
                    help="--real: Hydra overrides of the tiny run (default: model=tiny trainer=smoke logger=none)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    cfg = replace(defaults, noise_seeds=args.noise_seeds, validation_seeds=args.validation_seeds,
                  test=args.test, alpha=args.alpha, fdr=args.fdr)
    pool = None
    if args.real:
        overrides = args.override or ["model=tiny", "trainer=smoke", "logger=none"]
        print(f"recording {args.pool} real runs ({' '.join(overrides)}), seeds only differ")
        pool = real_pool(args.pool, overrides)
        print(f"real noise: mean {pool.mean():.4f}, σ {pool.std(ddof=1):.4f} over {pool.size} runs")
    common = dict(campaigns=args.campaigns, null=args.null, per_effect=args.per_effect,
                  rho=args.rho, paired=args.paired, seed=args.seed, pool=pool)
    print(f"{args.campaigns} campaigns × ({args.null} A/A + {3 * args.per_effect} planted) hypotheses; "
          f"alpha={cfg.alpha} fdr={cfg.fdr} paired={args.paired} rho={args.rho}"
          f"{' real noise' if pool is not None else ' Normal noise'}")
    header = f"{'setting':<28}{'FDR %':>7}{'A/A %':>8}{'pow 1σ':>8}{'pow 2σ':>8}{'pow 3σ':>8}{'pow≥2σ':>9}{'goals':>7}"
    print(header)
    print("-" * len(header))
    if args.grid:
        for test in ("welch", "bootstrap"):
            for k in (2, 3, 5, 8):
                if pool is not None and args.null + 3 * args.per_effect > 0 and k > pool.size // 2:
                    continue
                grid_cfg = replace(cfg, test=test, noise_seeds=k, validation_seeds=k)
                name = f"paired-{'t' if test == 'welch' else test}" if args.paired else test
                print(_row(f"{name} K={k} baseline={k}", simulate(grid_cfg, **common)), flush=True)
    else:
        test = f"paired-{'t' if cfg.test == 'welch' else cfg.test}" if args.paired else cfg.test
        label = f"{test} K={cfg.validation_seeds} baseline={cfg.noise_seeds}"
        print(_row(label, simulate(cfg, **common)))
    print("goals: FDR <= 5 % and power >= 80 % for effects >= 2σ")


if __name__ == "__main__":
    main()
