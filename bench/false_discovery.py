"""False-discovery benchmark: how often does the critic validate nothing, and find what is there?

    python bench/false_discovery.py                      # simulated campaigns, critic defaults
    python bench/false_discovery.py --rho 0 0.3 --screen # at two seed correlations, with the screening gate
    python bench/false_discovery.py --grid               # K, noise seeds and test at ρ = 0 and 0.5
    python bench/false_discovery.py --grid --real        # ... and at ρ measured from real paired runs

Each simulated campaign does what the campaign loop does (``autoresearch/campaign/loop.py``):
the baseline is run on the first ``noise_seeds`` campaign seeds (its spread is the noise floor);
each hypothesis is screened on the first seed and, with ``--screen``, goes on only if it beats
the baseline there by more than that floor (``--screen-floors 0``: by anything); it is then re-run
on the K = ``validation_seeds`` next seeds and compared with the baseline on those same seeds by
``autoresearch.critic.assess`` — the very function the campaign calls (``--test``: Welch, the
default, or the bootstrap, unpaired; ``paired-t`` or ``paired-bootstrap``, which pair the runs by
seed; then Benjamini–Hochberg across the family, and the verdict). Hypotheses: A/A ones (no effect at all) and planted ones that improve
val_bpb by 1, 2 or 3 σ, where σ is one run's standard deviation over seeds.

Runs that share a seed share its initial weights and batch order: a run is
``√ρ·s_seed + √(1−ρ)·e_run`` (unit variance), with ``s`` common to every configuration run on that
seed; a negative ρ (a seed that suits the baseline suits the change less) makes each change
``ρ·b_seed + √(1−ρ²)·e_run`` of the baseline's run ``b``. ρ is the correlation of two configurations' val_bpb over seeds; the paired test's power rests
on it. ``--real`` reads ρ from real paired runs, ``bench/seed_correlation.json``, recorded by
``bench/seed_correlation.py`` (the reference configuration and single-key changes of it on the
same seeds, step budgets), prints it per change, and simulates at the pooled and at the smallest
measured ρ. Printed:

* FDR — the mean over campaigns of (validated A/A) / (validated), the quantity BH controls
  (goal <= 5 %), and the share of A/A hypotheses validated;
* power — the share of planted hypotheses validated, per effect size and for effects >= 2σ
  (goal >= 80 %); with ``--screen`` it includes the hypotheses the screening gate dropped.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from autoresearch.config import CriticConfig, StatTestConfig  # noqa: E402
from autoresearch.critic import VALIDATED, assess  # noqa: E402

EFFECTS = (1.0, 2.0, 3.0)
# How each test is asked of ``assess`` (critic.test.kind, and whether the runs it gets are paired by seed:
# in the campaign they always are, and critic.test.kind decides whether the test uses the pairing).
TESTS = {"paired-t": ("paired-t", True), "welch": ("welch", True), "paired-bootstrap": ("paired-bootstrap", True),
         "bootstrap": ("bootstrap", True)}
SEED_CORRELATION = Path(__file__).resolve().parent / "seed_correlation.json"


def simulate(
    cfg: CriticConfig,
    *,
    campaigns: int,
    null: int,
    per_effect: int,
    rho: float,
    paired: bool,
    seed: int,
    screen: bool = False,
    screen_floors: float = 1.0,
) -> dict:
    """Run ``campaigns`` simulated campaigns; return FDR, A/A validation rate and power per effect."""
    rng = np.random.default_rng(seed)
    nb, k = cfg.noise_seeds, cfg.validation_seeds
    n_seeds = max(nb, 1 + k)  # seed 0 screens; seeds 1..k validate
    fdps, aa_validated, aa_total, screened_in = [], 0, 0, 0
    hits = {e: 0 for e in EFFECTS}
    totals = {e: 0 for e in EFFECTS}
    for c in range(campaigns):
        z = rng.normal(size=n_seeds)
        if rho >= 0:
            shared = z * math.sqrt(rho)  # what each seed does to any configuration

            def runs(effect: float) -> np.ndarray:
                """One configuration's val_bpb on every campaign seed (lower = better)."""
                return shared + rng.normal(size=n_seeds) * math.sqrt(1.0 - rho) - effect

            baseline = runs(0.0)
        else:  # a seed good for the baseline is bad for a change: each change correlates ρ with it
            baseline = z

            def runs(effect: float) -> np.ndarray:
                return rho * z + rng.normal(size=n_seeds) * math.sqrt(1.0 - rho * rho) - effect

        floor = float(np.std(baseline[:nb], ddof=1)) if nb >= 2 else 0.0  # the loop's `_noise() or 0.0`
        truth: dict[str, float] = {}
        candidates: dict[str, list[float]] = {}
        planted = [(f"aa{h}", 0.0) for h in range(null)]
        planted += [(f"e{e:g}_{h}", e) for e in EFFECTS for h in range(per_effect)]
        for name, effect in planted:
            values = runs(effect)
            truth[name] = effect
            if screen and baseline[0] - values[0] <= screen_floors * floor:
                continue  # the screening run did not beat the noise floor: never validated
            candidates[name] = list(values[1 : 1 + k])
        screened_in += len(candidates)
        verdicts = assess(candidates, list(baseline[1 : 1 + k]), cfg, paired=paired, seed=seed + c) if candidates else []
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
        "validated_share": screened_in / max(campaigns * (null + len(EFFECTS) * per_effect), 1),
    }


def measured_rho(path: Path) -> dict[str, dict[str, float]]:
    """ρ per setting and change (and pooled) from real paired runs; prints the table."""
    import importlib.util

    if not path.is_file():
        sys.exit(f"{path} is missing: record it with `python bench/seed_correlation.py --setting quickstart`")
    spec = importlib.util.spec_from_file_location("seed_correlation", Path(__file__).with_name("seed_correlation.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.summarise(json.loads(path.read_text()))


def _row(label: str, r: dict) -> str:
    p = r["power"]
    ok = "yes" if r["fdr"] <= 0.05 and r["power_2sigma"] >= 0.8 else "no"
    return (f"{label:<40}{100 * r['fdr']:>7.1f}{100 * r['aa_rate']:>8.1f}{100 * p[1.0]:>8.1f}"
            f"{100 * p[2.0]:>8.1f}{100 * p[3.0]:>8.1f}{100 * r['power_2sigma']:>9.1f}{ok:>7}")


def _header() -> str:
    header = f"{'setting':<40}{'FDR %':>7}{'A/A %':>8}{'pow 1σ':>8}{'pow 2σ':>8}{'pow 3σ':>8}{'pow≥2σ':>9}{'goals':>7}"
    return header + "\n" + "-" * len(header)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults = CriticConfig()
    ap.add_argument("--campaigns", type=int, default=400)
    ap.add_argument("--null", type=int, default=10, help="A/A hypotheses per campaign")
    ap.add_argument("--per-effect", type=int, default=3, help="planted hypotheses per effect size per campaign")
    ap.add_argument("--noise-seeds", type=int, default=defaults.noise_seeds)
    ap.add_argument("--validation-seeds", type=int, default=defaults.validation_seeds)
    ap.add_argument("--test", default=defaults.test.kind, choices=sorted(TESTS),
                    help="critic.test.kind; the campaign's runs are paired by seed, and paired-t / paired-bootstrap use it")
    ap.add_argument("--alpha", type=float, default=defaults.test.alpha)
    ap.add_argument("--fdr", type=float, default=defaults.fdr)
    ap.add_argument("--rho", type=float, nargs="*", default=None,
                    help="correlation(s) of two configurations' runs on one seed (default 0; --grid: 0 and 0.5)")
    ap.add_argument("--screen", action="store_true",
                    help="screen each hypothesis on one seed against the noise floor first, as the campaign does")
    ap.add_argument("--screen-floors", type=float, nargs="+", default=[1.0],
                    help="--screen: the gain the screening run needs, in noise floors (the loop uses 1)")
    ap.add_argument("--grid", action="store_true", help="sweep ρ, K, noise seeds and the test")
    ap.add_argument("--tests", nargs="+", default=["paired-t", "welch", "paired-bootstrap"], choices=sorted(TESTS),
                    help="--grid: tests of the validation-alone table (all but paired-t at K=5 only)")
    ap.add_argument("--ks", type=int, nargs="+", default=[2, 3, 4, 5, 6, 8], help="--grid: validation seeds")
    ap.add_argument("--real", action="store_true", help="ρ from real paired runs (bench/seed_correlation.json)")
    ap.add_argument("--data", type=Path, default=SEED_CORRELATION, help="--real: the paired runs")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    cfg = replace(defaults, noise_seeds=args.noise_seeds, validation_seeds=args.validation_seeds,
                  test=StatTestConfig(kind=defaults.test.kind, alpha=args.alpha), fdr=args.fdr)
    given = args.rho if args.rho is not None else ([0.0, 0.5] if args.grid else [0.0])
    rhos = {f"ρ={rho:g}": rho for rho in given}
    if args.real:
        print(f"seed correlation measured on real paired runs ({args.data}):")
        measured = measured_rho(args.data)
        pooled = {name: r["pooled"] for name, r in measured.items() if "pooled" in r}
        lowest = {name: min(v for c, v in r.items() if c != "pooled") for name, r in measured.items() if r}
        for name in pooled:
            rhos[f"ρ={pooled[name]:.2f} ({name} pooled)"] = pooled[name]
            rhos[f"ρ={lowest[name]:.2f} ({name} lowest)"] = lowest[name]
    common = dict(campaigns=args.campaigns, null=args.null, per_effect=args.per_effect, seed=args.seed)
    print(f"\n{args.campaigns} campaigns × ({args.null} A/A + {3 * args.per_effect} planted) hypotheses; "
          f"alpha={cfg.test.alpha} fdr={cfg.fdr}; effects in units of one run's σ over seeds")
    if not args.grid:
        test, paired = TESTS[args.test]
        run_cfg = replace(cfg, test=replace(cfg.test, kind=test))
        print(_header())
        for label, rho in rhos.items():
            for floors in args.screen_floors if args.screen else [1.0]:
                name = f"{'screen>' + format(floors, 'g') + 'σ+' if args.screen else ''}{args.test} " \
                       f"K={cfg.validation_seeds} noise={cfg.noise_seeds} {label}"
                r = simulate(run_cfg, rho=rho, paired=paired, screen=args.screen, screen_floors=floors, **common)
                print(_row(name, r), flush=True)
    else:
        for label, rho in rhos.items():
            print(f"\n{label}: validation alone (every hypothesis re-run on K seeds, paired with the baseline's)")
            print(_header())
            for test_name in args.tests:
                test, paired = TESTS[test_name]
                for k in args.ks if test_name == "paired-t" else [5]:
                    grid_cfg = replace(cfg, test=replace(cfg.test, kind=test), noise_seeds=k + 1, validation_seeds=k)
                    print(_row(f"{test_name} K={k}", simulate(grid_cfg, rho=rho, paired=paired, **common)), flush=True)
            print(f"{label}: the whole gate (screened on one seed: gain > floors × noise floor σ; then paired-t)")
            print(_header())
            for k in [k for k in args.ks if k >= 4]:
                for floors in args.screen_floors:
                    grid_cfg = replace(cfg, test=replace(cfg.test, kind="paired-t"), noise_seeds=k + 1, validation_seeds=k)
                    r = simulate(grid_cfg, rho=rho, paired=True, screen=True, screen_floors=floors, **common)
                    print(_row(f"screen>{floors:g}σ+paired-t K={k} noise={k + 1}", r), flush=True)
    print("goals: FDR <= 5 % and power >= 80 % for effects >= 2σ")


if __name__ == "__main__":
    main()
